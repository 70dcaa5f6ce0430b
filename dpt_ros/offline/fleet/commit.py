"""Atomic unit commits with a done-marker inside, and the staging sweep.

Layout under OUTPUT_ROOT:
- `.staging/<unit dir>.<token>/<unit dir>/`: where an attempt writes (one per attempt, so a
  killed attempt never collides with its retry);
- `.units/<bag>/<unit dir>/`: a committed unit, a rosbag2 directory plus `MARKER`;
- `<bag>/`: the assembled bag (`assemble.py`), with `BAG_MARKER`.

A unit is committed by writing its marker into the finished directory and renaming that
directory into `.units` (one rename on one file system: all or nothing). The marker, not the
manifest, says what is done; it names the fingerprint, so outputs of another model never
count as done.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from dpt_ros.offline.exitcodes import CliError, ExitCode
from dpt_ros.offline.fleet.units import Unit

STAGING = ".staging"
UNITS = ".units"
MARKER = "dpt_fleet_unit.json"
BAG_MARKER = "dpt_fleet_bag.json"
LOCK = ".fleet.lock"


def unit_dir(root: Path, unit: Unit) -> Path:
    return root / UNITS / unit.bag / unit.dir_name


class UnitTarget:
    """Stands in for `AtomicDir` in `run_bag`: the bag is written into a private staging
    directory; `commit()` (called by the bag tool when the writer closed) only records that
    it is complete, and `publish()` writes the marker and renames it into `.units`."""

    def __init__(self, root: Path, unit: Unit) -> None:
        self.final = unit_dir(root, unit)
        self.staging = root / STAGING / f"{unit.dir_name}.{uuid.uuid4().hex[:12]}"
        self.tmp = self.staging / unit.dir_name
        self.complete = False

    def start(self) -> Path:
        self.staging.mkdir(parents=True)
        return self.tmp

    def commit(self) -> None:
        self.complete = True

    def publish(self, marker: dict[str, Any]) -> None:
        """Marker in, then one rename: the unit exists complete or not at all."""
        if not self.complete:
            raise RuntimeError("publish before the bag was complete")
        write_json(self.tmp / MARKER, marker)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        if self.final.exists():  # a unit of another fingerprint (--force) or a lost race
            remove(self.final)
        os.rename(self.tmp, self.final)
        remove(self.staging)

    def abort(self) -> None:
        remove(self.staging)


def read_marker(path: Path) -> dict[str, Any] | None:
    """A done-marker's content, or None when absent or unreadable (then it is not done)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def unit_done(root: Path, unit: Unit, digest: str) -> dict[str, Any] | None:
    """The marker of a committed unit made with this fingerprint and this exact range."""
    marker = read_marker(unit_dir(root, unit) / MARKER)
    if marker and marker.get("fingerprint") == digest and \
            (marker.get("start"), marker.get("stop")) == (unit.start, unit.stop):
        return marker
    return None


def bag_done(root: Path, bag: str, digest: str) -> dict[str, Any] | None:
    """The marker of an assembled bag made with this fingerprint."""
    marker = read_marker(root / bag / BAG_MARKER)
    return marker if marker and marker.get("fingerprint") == digest else None


def sweep_staging(root: Path) -> int:
    """Remove what killed attempts left in `.staging` (only while this run holds the lock,
    so no live attempt is writing there); returns how many entries went."""
    staging = root / STAGING
    if not staging.is_dir():
        return 0
    entries = list(staging.iterdir())
    for entry in entries:
        remove(entry)
    return len(entries)


class RootLock:
    """One fleet run per output root at a time (flock on `.fleet.lock`): the staging sweep
    and the manifest assume nobody else writes there."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK
        self.fd: int | None = None

    def __enter__(self) -> RootLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise CliError(ExitCode.OUTPUT_EXISTS, f"another dpt-ros fleet run is writing "
                           f"{self.path.parent}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Written and fsynced: a marker must be on disk before the rename that publishes it."""
    with path.open("w") as f:
        json.dump(data, f, indent=1, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())


def remove(path: Path) -> None:
    """A directory tree, file or link, if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()

