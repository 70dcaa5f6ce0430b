"""The offline tools' per-frame alignment report: what the node's /diagnostics carries per
camera (`AlignmentState.diagnostics()`), one CSV row per frame, and a summary.

Columns: frame (bag: image stamp; predict: the image's stem), valid, scale, shift,
inliers, residual, age_s, accepted, rejected, gated, reference (the kinds paired with the
frame: depth, points, or none), status.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from typing import TextIO

from dpt_ros.core.alignment import AlignmentState

COLUMNS = ("frame", "valid", "scale", "shift", "inliers", "residual", "age_s", "accepted",
           "rejected", "gated", "reference", "status")


class AlignmentReport:
    """Collects each frame's alignment; writes the CSV as it goes (when `path` is given)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.frames = 0
        self.aligned = 0  # frames with a valid alignment
        self.with_reference = 0
        self.scales: list[float] = []
        self.fits: Counter[str] = Counter()  # outcome of the fits of frames with a reference
        self.last: AlignmentState | None = None
        self._file: TextIO | None = None
        self._csv = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "w", newline="")
            self._csv = csv.writer(self._file)
            self._csv.writerow(COLUMNS)

    def add(self, frame: str, state: AlignmentState | None, reference: list[str]) -> None:
        if state is None:
            return
        self.frames += 1
        self.aligned += state.valid
        self.with_reference += bool(reference)
        if reference:
            self.fits[state.status.split(":", 1)[0]] += 1
        if state.valid and math.isfinite(state.scale):
            self.scales.append(state.scale)
        self.last = state
        if self._csv is not None:
            d = state.diagnostics()
            self._csv.writerow([frame, *(d[f"alignment.{c}"] for c in COLUMNS[1:10]),
                                "+".join(reference) or "none", d["alignment.status"]])

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def summary(self) -> list[str]:
        if not self.frames:
            return []
        line = (f"alignment: {self.aligned}/{self.frames} frames with a valid alignment, "
                f"{self.with_reference} with a reference")
        s = self.last
        if self.fits:
            line += "; fits " + ", ".join(f"{k} {n}" for k, n in sorted(self.fits.items()))
        if self.scales:
            ordered = sorted(self.scales)
            line += (f"; scale median {ordered[len(ordered) // 2]:.6g} "
                     f"(min {ordered[0]:.6g}, max {ordered[-1]:.6g})")
        lines = [line]
        if self.aligned < self.frames and s is not None and not s.valid:
            lines.append(f"  last frame: {s.status}")
        if self.path is not None:
            lines.append(f"  per frame: {self.path}")
        return lines
