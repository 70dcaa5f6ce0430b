"""Inputs → bags → units, on the driver, from bag metadata alone (no message is read).

rosbag2 keeps each storage file's start time and duration in `metadata.yaml` (bare
`.db3` / `.mcap` files: their own index), so a run can be planned over thousands of bags
before any worker starts, and a bag whose metadata cannot be read is reported on its own
without stopping the others.
"""

from __future__ import annotations

import glob
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from dpt_ros.offline.exitcodes import CliError, ExitCode
from dpt_ros.offline.fleet.remote import (
    file_sizes,
    find_remote_bags,
    is_url,
    read_metadata,
    storage_names,
)
from dpt_ros.offline.fleet.units import NS, Unit, make_units, shard_ranges

STORAGE_SUFFIXES = (".db3", ".mcap")
RESERVED = {"fleet_manifest.json", "fleet_runs"}  # names of the fleet's own files in the root


@dataclass
class BagPlan:
    """One input bag: its units, or why it cannot be planned."""

    name: str
    input: Path | str  # a local path, or a URL (remote.py)
    units: list[Unit] = field(default_factory=list)
    images: int = 0  # image messages (from the index), for progress and ETA
    bytes: int = 0  # storage file sizes
    error: str | None = None
    topic_counts: dict[str, int] = field(default_factory=dict)  # messages per topic (index)
    start: int = 0
    end: int = 0


def find_bags(inputs: list[str]) -> list[Path | str]:
    """Bag directories and bare storage files named by `inputs`: a bag, a directory holding
    bags (searched recursively, a bag's own files not counted twice), or a glob pattern;
    URLs (`s3://bucket/runs/`, …) name remote bag directories or folders holding them."""
    found: list[Path | str] = []
    for text in inputs:
        if is_url(text):
            found += find_remote_bags(text)
            continue
        paths = [Path(p) for p in sorted(glob.glob(text))] if glob.has_magic(text) \
            else [Path(text)]
        if not paths or not all(p.exists() for p in paths):
            raise CliError(ExitCode.INPUT, f"input {text} does not exist")
        for path in paths:
            found += _bags_under(path)
    unique = list(dict.fromkeys(p if isinstance(p, str) else p.absolute() for p in found))
    if not unique:
        raise CliError(ExitCode.INPUT, f"no rosbag2 bag found in {inputs}")
    return unique


def _bags_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix in STORAGE_SUFFIXES else []
    if (path / "metadata.yaml").exists():
        return [path]
    out: list[Path] = []
    for child in sorted(path.iterdir()):
        if child.is_dir() or child.suffix in STORAGE_SUFFIXES:
            out += _bags_under(child)
    return out


def bag_name(path: Path | str) -> str:
    """OUTPUT_ROOT/<name>: a directory's name, a bare file's stem (a URL's last part)."""
    if isinstance(path, str):
        return path.rstrip("/").rsplit("/", 1)[-1]
    return path.stem if path.is_file() else path.name


def check_names(bags: list[Path | str]) -> dict[str, Path | str]:
    """Output names, refused when two bags would share one or one is the fleet's own."""
    names: dict[str, Path | str] = {}
    for bag in bags:
        name = bag_name(bag)
        if name in names:
            raise CliError(ExitCode.USAGE, f"two input bags would both write OUTPUT_ROOT/{name}:"
                           f" {names[name]} and {bag}")
        if name in RESERVED or name.startswith("."):
            raise CliError(ExitCode.USAGE, f"bag name {name} ({bag}) is reserved in the output "
                           "root; rename the bag")
        names[name] = bag
    return names


def plan_bag(
    name: str, path: Path | str, image_topic: str, shard_s: float | None,
    margin_before_s: float, margin_after_s: float,
) -> BagPlan:
    """The units of one bag; `error` (not an exception) when its metadata is unusable."""
    from rosbags.rosbag2 import Reader  # rosbags (the offline extra)
    from rosbags.rosbag2.errors import ReaderError

    plan = BagPlan(name, path)
    if isinstance(path, str):
        return _plan_remote(plan, image_topic, shard_s, margin_before_s, margin_after_s)
    try:
        files = [path] if path.is_file() else [p for p in path.iterdir() if p.is_file()]
        plan.bytes = sum(p.stat().st_size for p in files)
        with Reader(path) as reader:
            conns = [c for c in reader.connections if c.topic == image_topic]
            if not conns:
                plan.error = f"topic {image_topic} is not in the bag"
                return plan
            plan.images = sum(c.msgcount for c in conns)
            for c in reader.connections:
                plan.topic_counts[c.topic] = plan.topic_counts.get(c.topic, 0) + c.msgcount
            start, end = reader.start_time, reader.end_time
            meta_files = getattr(reader.storage, "files", None) or []
            file_starts = [int(f["starting_time"]["nanoseconds_since_epoch"])
                           for f in meta_files if "starting_time" in f]
    except (ReaderError, OSError, sqlite3.DatabaseError, KeyError, ValueError, TypeError) \
            as err:
        plan.error = f"cannot open the bag (whole bag): {type(err).__name__}: {err}"
        return plan
    return _units(plan, start, end, file_starts, shard_s, margin_before_s, margin_after_s)


def _units(plan: BagPlan, start: int, end: int, file_starts: list[int],
           shard_s: float | None, margin_before_s: float, margin_after_s: float) -> BagPlan:
    if reader_empty(start, end):
        start, end = 0, 1
    plan.start, plan.end = start, end
    shard = int(shard_s * NS) if shard_s else None
    ranges = shard_ranges(start, end, file_starts, shard)
    plan.units = make_units(plan.name, str(plan.input), ranges, start, end,
                            int(margin_before_s * NS), int(margin_after_s * NS))
    return plan


def _plan_remote(plan: BagPlan, image_topic: str, shard_s: float | None,
                 margin_before_s: float, margin_after_s: float) -> BagPlan:
    """The same plan from a remote bag's metadata.yaml (rosbags' reading of it: a bag with
    messages spans [start, start + duration + 1))."""
    url = str(plan.input)
    try:
        info = read_metadata(url)
        plan.bytes = file_sizes(url, storage_names(info))
        for entry in info.get("topics_with_message_count", []):
            topic = entry["topic_metadata"]["name"]
            plan.topic_counts[topic] = plan.topic_counts.get(topic, 0) + entry["message_count"]
        if image_topic not in plan.topic_counts:
            plan.error = f"topic {image_topic} is not in the bag"
            return plan
        plan.images = plan.topic_counts[image_topic]
        count = int(info["message_count"])
        start = int(info["starting_time"]["nanoseconds_since_epoch"])
        end = start + int(info["duration"]["nanoseconds"]) + 1
        if not count:
            start, end = 2**63 - 1, 0
        file_starts = [int(f["starting_time"]["nanoseconds_since_epoch"])
                       for f in info.get("files") or []]
    except (OSError, ValueError, KeyError, TypeError, CliError) as err:
        plan.error = f"cannot read bag metadata: {type(err).__name__}: {err}"
        return plan
    return _units(plan, start, end, file_starts, shard_s, margin_before_s, margin_after_s)


def reader_empty(start: int, end: int) -> bool:
    """rosbags reports an empty bag as start 2**63 - 1, end 0."""
    return end <= start
