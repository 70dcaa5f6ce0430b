"""Counters behind dpt_node's /diagnostics: rates, drops, latency percentiles, errors by kind,
per-camera counts and model passes (batches).

`Stats` is plain Python and thread-safe (the subscription callbacks and the worker thread
both write to it); `diagnostic_array` turns one snapshot into the ROS message.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


@dataclass
class Snapshot:
    """Counters at one instant, plus the rates over the interval since the previous one."""

    received: int
    processed: int
    dropped: int
    errors: dict[str, int]
    input_rate: float
    processed_rate: float
    latency_p50_ms: float
    latency_p95_ms: float
    new_errors: int
    extra: dict[str, str] = field(default_factory=dict)
    cameras: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> counters
    batches: int = 0  # model passes (Pipeline.process calls that produced results)
    batch_size_max: int = 0  # most frames in one pass


CAMERA_COUNTERS = ("frames_received", "frames_processed", "frames_dropped")


class Stats:
    """Event counters, in total and per named camera (`camera=""`: totals only); latency
    percentiles over the last `window` processed frames; batch counts."""

    def __init__(self, window: int = 200, clock=time.monotonic,
                 cameras: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.errors: Counter[str] = Counter()
        self.cameras: dict[str, Counter[str]] = {c: Counter() for c in cameras if c}
        self.batches = 0
        self.batch_size_max = 0
        self._latencies: deque[float] = deque(maxlen=window)
        self._last = (clock(), 0, 0, 0)  # time, received, processed, total errors

    def _count(self, camera: str, key: str, n: int = 1) -> None:
        if camera:
            self.cameras.setdefault(camera, Counter())[key] += n

    def on_received(self, camera: str = "") -> None:
        with self._lock:
            self.received += 1
            self._count(camera, "frames_received")

    def on_dropped(self, n: int = 1, camera: str = "") -> None:
        with self._lock:
            self.dropped += n
            self._count(camera, "frames_dropped", n)

    def on_processed(self, latency_s: float, camera: str = "") -> None:
        with self._lock:
            self.processed += 1
            self._latencies.append(latency_s)
            self._count(camera, "frames_processed")

    def on_batch(self, size: int) -> None:
        """One model pass over `size` frames."""
        with self._lock:
            self.batches += 1
            self.batch_size_max = max(self.batch_size_max, size)

    def on_error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def snapshot(self) -> Snapshot:
        """Totals now, and rates since the previous snapshot (which this one replaces)."""
        with self._lock:
            now = self._clock()
            t0, r0, p0, e0 = self._last
            dt = max(now - t0, 1e-9)
            n_err = sum(self.errors.values())
            lat = np.asarray(self._latencies, dtype=np.float64) * 1000.0
            p50, p95 = (np.percentile(lat, [50, 95]) if lat.size else (float("nan"),) * 2)
            snap = Snapshot(
                received=self.received,
                processed=self.processed,
                dropped=self.dropped,
                errors=dict(self.errors),
                input_rate=(self.received - r0) / dt,
                processed_rate=(self.processed - p0) / dt,
                latency_p50_ms=float(p50),
                latency_p95_ms=float(p95),
                new_errors=n_err - e0,
                cameras={c: {k: n[k] for k in CAMERA_COUNTERS} for c, n in self.cameras.items()},
                batches=self.batches,
                batch_size_max=self.batch_size_max,
            )
            self._last = (now, self.received, self.processed, n_err)
            return snap


class Throttle:
    """At most one message per key per `period` seconds (per-kind bad-input warnings)."""

    def __init__(self, period: float = 5.0, clock=time.monotonic) -> None:
        self._period = period
        self._clock = clock
        self._last: dict[str, float] = {}

    def ready(self, key: str) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._period:
            return False
        self._last[key] = now
        return True


def diagnostic_array(
    snap: Snapshot, name: str, hardware_id: str, info: Mapping[str, str], stamp
) -> DiagnosticArray:
    """One DiagnosticStatus: OK, WARN when frames were rejected in the last interval."""
    status = DiagnosticStatus()
    status.name = name
    status.hardware_id = hardware_id
    if snap.new_errors:
        status.level = DiagnosticStatus.WARN
        status.message = f"{snap.new_errors} frame(s) rejected in the last interval"
    elif snap.received == 0:
        status.level = DiagnosticStatus.OK
        status.message = "waiting for images"
    else:
        status.level = DiagnosticStatus.OK
        status.message = "running"
    values = {
        "input_rate_hz": f"{snap.input_rate:.2f}",
        "processed_rate_hz": f"{snap.processed_rate:.2f}",
        "frames_received": str(snap.received),
        "frames_processed": str(snap.processed),
        "frames_dropped": str(snap.dropped),
        **{f"{c}.{k}": str(v) for c, counts in snap.cameras.items() for k, v in counts.items()},
        "batches": str(snap.batches),
        "batch_size_max": str(snap.batch_size_max),
        "latency_p50_ms": f"{snap.latency_p50_ms:.1f}",
        "latency_p95_ms": f"{snap.latency_p95_ms:.1f}",
        "errors_total": str(sum(snap.errors.values())),
        **{f"errors.{k}": str(v) for k, v in sorted(snap.errors.items())},
        **info,
    }
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status]
    return msg
