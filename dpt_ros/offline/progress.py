"""A tiny progress line on stderr (frames, frames/s, ETA); no tqdm dependency."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    """H:MM:SS, or '?' while the rate is unknown."""
    if seconds != seconds or seconds == float("inf") or seconds < 0:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    """Counts units and redraws one status line at most every `interval` seconds.

    On a terminal the line is rewritten in place; when stderr is a file or a pipe (CI logs,
    tests) each update is a new line, throttled harder so logs stay short.
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        unit: str = "frames",
        stream: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.2 if self.tty else 2.0)
        self.clock = clock
        self.start = clock()
        self.done = 0
        self._last_draw: float | None = None
        self._drawn = -1  # `done` at the last draw

    @property
    def rate(self) -> float:
        """Units per second since the start (0 before any time has passed)."""
        elapsed = self.clock() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float:
        """Seconds left at the current rate (NaN when unknown)."""
        if self.total is None or self.rate <= 0:
            return float("nan")
        return max(0, self.total - self.done) / self.rate

    def line(self) -> str:
        """The status text, e.g. 'bag 120/500 frames | 24.1 frames/s | ETA 0:00:15'."""
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        parts = [f"{self.label} {count} {self.unit}", f"{self.rate:.1f} {self.unit}/s"]
        if self.total is not None:
            parts.append(f"ETA {format_duration(self.eta)}")
        return " | ".join(parts)

    def update(self, n: int = 1) -> None:
        """Add `n` finished units; redraw when the first units land or the interval passed."""
        self.done += n
        now = self.clock()
        if self._last_draw is None or now - self._last_draw >= self.interval:
            self._draw()
            self._last_draw = now

    def close(self) -> None:
        """Draw the final state (unless that line is already out) and end the line."""
        if self.tty or self._drawn != self.done:
            self._draw()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        self._drawn = self.done
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
