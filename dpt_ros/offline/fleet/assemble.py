"""A bag's committed units → one rosbag2 directory `OUTPUT_ROOT/<bag>`.

Each unit is a complete rosbag2 bag of its log-time range; the output bag lists their
storage files in `metadata.yaml` in range order (as rosbag2 lists the files of a split
recording), so rosbags and `ros2 bag` read it as one bag, in log-time order: the ranges do
not overlap and each file is in log-time order. Files are hard-linked, not copied, and the
directory is built in staging and renamed into place, so the bag appears complete or not at
all; the units are removed only afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from dpt_ros.offline.fleet.commit import BAG_MARKER, STAGING, UNITS, remove, write_json
from dpt_ros.offline.fleet.units import Unit

INFO = "rosbag2_bagfile_information"


def merge_metadata(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One `rosbag2_bagfile_information` from the units' (in range order): files listed in
    order, topics with their counts summed, the span from the first to the last message.
    Units without a message contribute nothing (their files are left out)."""
    infos = [p[INFO] for p in parts]
    full = [i for i in infos if i.get("message_count")] or infos[:1]
    out = dict(full[0])
    out["relative_file_paths"] = [f for i in full for f in i["relative_file_paths"]]
    out["files"] = [f for i in full for f in i.get("files", [])]
    out["message_count"] = sum(i["message_count"] for i in full)
    starts = [i["starting_time"]["nanoseconds_since_epoch"] for i in full]
    ends = [i["starting_time"]["nanoseconds_since_epoch"] + i["duration"]["nanoseconds"]
            for i in full]
    out["starting_time"] = {"nanoseconds_since_epoch": min(starts)}
    out["duration"] = {"nanoseconds": max(ends) - min(starts)}
    topics: dict[tuple[str, str], dict[str, Any]] = {}
    for info in full:
        for entry in info.get("topics_with_message_count", []):
            meta = entry["topic_metadata"]
            key = (meta["name"], meta["type"])
            if key not in topics:
                topics[key] = {"topic_metadata": meta, "message_count": 0}
            topics[key]["message_count"] += entry["message_count"]
    out["topics_with_message_count"] = list(topics.values())
    return {INFO: out}


class IncompleteBag(ValueError):
    """The units together hold fewer input messages than the input's index lists."""


def check_counts(merged: dict[str, Any], expected: dict[str, int]) -> None:
    """Every input topic the output copies must hold all of the input's messages.

    A damaged storage file does not always raise: rosbags' mcap reader stops at a corrupt
    chunk without an error, so a truncated output would pass for a complete one. The input
    index's counts catch that before the bag is published."""
    got = {e["topic_metadata"]["name"]: e["message_count"]
           for e in merged[INFO]["topics_with_message_count"]}
    short = [f"{topic}: {got[topic]} of {n}" for topic, n in sorted(expected.items())
             if topic in got and got[topic] != n]
    if short:
        raise IncompleteBag("the storage is damaged or truncated; messages read / indexed: "
                            + ", ".join(short))


def assemble_bag(root: Path, units: list[Unit], marker: dict[str, Any],
                 expected: dict[str, int] | None = None) -> Path:
    """Link the units' storage files into `root/<bag>` with one metadata.yaml; returns it.
    `expected`: the input's messages per topic (IncompleteBag when the copies fall short)."""
    bag = units[0].bag
    parts = []
    for unit in units:
        d = root / UNITS / bag / unit.dir_name
        parts.append((d, yaml.safe_load((d / "metadata.yaml").read_text())))
    merged = merge_metadata([m for _, m in parts])
    if expected:
        check_counts(merged, expected)
    keep = set(merged[INFO]["relative_file_paths"])
    staging = root / STAGING / f"{bag}.assemble-{os.getpid()}"
    remove(staging)
    tmp = staging / bag
    tmp.mkdir(parents=True)
    for d, meta in parts:
        for name in meta[INFO]["relative_file_paths"]:
            if name in keep:
                os.link(d / name, tmp / name)
    (tmp / "metadata.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    write_json(tmp / BAG_MARKER, marker)
    final = root / bag
    old = None
    if final.exists():  # made with another fingerprint (--force was given)
        old = root / STAGING / f"{bag}.old-{os.getpid()}"
        os.rename(final, old)
    os.rename(tmp, final)
    remove(staging)
    if old is not None:
        remove(old)
    remove(root / UNITS / bag)
    return final
