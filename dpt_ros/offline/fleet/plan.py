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
from dpt_ros.offline.fleet.units import NS, Unit, make_units, shard_ranges

STORAGE_SUFFIXES = (".db3", ".mcap")
RESERVED = {"fleet_manifest.json", "fleet_runs"}  # names of the fleet's own files in the root


@dataclass
class BagPlan:
    """One input bag: its units, or why it cannot be planned."""

    name: str
    input: Path
    units: list[Unit] = field(default_factory=list)
    images: int = 0  # image messages (from the index), for progress and ETA
    bytes: int = 0  # storage file sizes
    error: str | None = None
    topic_counts: dict[str, int] = field(default_factory=dict)  # messages per topic (index)
    start: int = 0
    end: int = 0


def find_bags(inputs: list[str]) -> list[Path]:
    """Bag directories and bare storage files named by `inputs`: a bag, a directory holding
    bags (searched recursively, a bag's own files not counted twice), or a glob pattern.
    Remote URLs are refused with the reason (rosbags reads local files; mount them)."""
    found: list[Path] = []
    for text in inputs:
        if "://" in text:
            raise CliError(ExitCode.USAGE, f"{text}: remote URLs are not read yet; mount the "
                           "bucket (e.g. s3fs, gcsfuse, a PVC) and pass the local path")
        paths = [Path(p) for p in sorted(glob.glob(text))] if glob.has_magic(text) \
            else [Path(text)]
        if not paths or not all(p.exists() for p in paths):
            raise CliError(ExitCode.INPUT, f"input {text} does not exist")
        for path in paths:
            found += _bags_under(path)
    unique = list(dict.fromkeys(p.absolute() for p in found))
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


def bag_name(path: Path) -> str:
    """OUTPUT_ROOT/<name>: a directory's name, a bare file's stem."""
    return path.stem if path.is_file() else path.name


def check_names(bags: list[Path]) -> dict[str, Path]:
    """Output names, refused when two bags would share one or one is the fleet's own."""
    names: dict[str, Path] = {}
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
    name: str, path: Path, image_topic: str, shard_s: float | None,
    margin_before_s: float, margin_after_s: float,
) -> BagPlan:
    """The units of one bag; `error` (not an exception) when its metadata is unusable."""
    from rosbags.rosbag2 import Reader
    from rosbags.rosbag2.errors import ReaderError

    plan = BagPlan(name, path)
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
    if reader_empty(start, end):
        start, end = 0, 1
    plan.start, plan.end = start, end
    shard = int(shard_s * NS) if shard_s else None
    ranges = shard_ranges(start, end, file_starts, shard)
    plan.units = make_units(name, str(path), ranges, start, end,
                            int(margin_before_s * NS), int(margin_after_s * NS))
    return plan


def reader_empty(start: int, end: int) -> bool:
    """rosbags reports an empty bag as start 2**63 - 1, end 0."""
    return end <= start
