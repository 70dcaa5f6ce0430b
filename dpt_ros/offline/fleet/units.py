"""Work units: a bag's log-time slices, planned on the driver from metadata alone.

A unit is the unit of scheduling, retry and commit. Its range `[start, stop)` is what it
writes; it reads a margin around it (`read_start`, `read_stop`) because the pipeline keeps
state in log time (camera_info and reference waits, the alignment filter), so a frame near
a boundary is paired and aligned as in the single-machine pass.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from dpt_ros.offline.bag import Window

NS = 1_000_000_000


@dataclass(frozen=True)
class Unit:
    """One slice of one input bag; `id` names it in the manifest, `dir_name` on disk."""

    bag: str  # the bag's output name (OUTPUT_ROOT/<bag>)
    input: str  # the input bag path (directory or bare storage file)
    index: int
    count: int  # how many units the bag has
    start: int  # log time, ns, inclusive
    stop: int  # log time, ns, exclusive
    read_start: int
    read_stop: int

    @property
    def id(self) -> str:
        return f"{self.bag}#{self.index}"

    @property
    def dir_name(self) -> str:
        """The unit's bag directory name, which rosbags also gives its storage file: a bag of
        one unit ends up as `<bag>/<bag>.mcap` like `dpt-ros bag` writes, a split one as
        `<bag>/<bag>_<k>.mcap` like a split rosbag2 recording."""
        return self.bag if self.count == 1 else f"{self.bag}_{self.index}"

    @property
    def window(self) -> Window:
        return Window(self.start, self.stop, self.read_start, self.read_stop)

    def describe(self) -> str:
        """Which bag and which log-time range, for error messages and logs."""
        return f"bag {self.bag} ({self.input}) log time [{self.start / NS:.3f}, " \
               f"{self.stop / NS:.3f}) s"


def shard_ranges(
    bag_start: int, bag_end: int, file_starts: list[int], shard_ns: int | None
) -> list[tuple[int, int]]:
    """Ranges that tile `[bag_start, bag_end)` with no gap or overlap.

    Boundaries are the storage files' start times (rosbag2 already split the recording
    there), each piece cut further into `shard_ns` slices when given. Tiling the whole span,
    not the files, means a message between two files still belongs to exactly one range.
    """
    if bag_end <= bag_start:
        return [(bag_start, max(bag_end, bag_start + 1))]
    cuts = sorted({bag_start, *(t for t in file_starts if bag_start < t < bag_end), bag_end})
    ranges: list[tuple[int, int]] = []
    for lo, hi in itertools.pairwise(cuts):
        pieces = 1 if not shard_ns else max(1, math.ceil((hi - lo) / shard_ns))
        edges = [lo + (hi - lo) * k // pieces for k in range(pieces)] + [hi]
        ranges += list(itertools.pairwise(edges))
    return ranges


def make_units(
    bag: str, input: str, ranges: list[tuple[int, int]], bag_start: int, bag_end: int,
    margin_before_ns: int, margin_after_ns: int,
) -> list[Unit]:
    """Units for `ranges`, each reading its margins (clipped to the bag)."""
    return [
        Unit(bag, input, k, len(ranges), lo, hi,
             max(bag_start, lo - margin_before_ns), min(bag_end, hi + margin_after_ns))
        for k, (lo, hi) in enumerate(ranges)
    ]
