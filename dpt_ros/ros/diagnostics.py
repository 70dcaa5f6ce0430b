"""dpt_node's /diagnostics: counters (rates, drops, latency percentiles, errors by kind,
per-camera counts, model passes) and the alarms raised from them, in the style of
diagnostic_updater: one DiagnosticStatus for the node, then one per camera.

Levels, per camera (the node's status is the worst of them):
- ERROR: the worker thread is gone, or a camera's frame has waited `stuck_s` without being
  taken (the worker is stuck on a batch or has stopped making progress);
- WARN: no image for `stale_s` after images were flowing (the camera stopped), more than
  `drop_ratio` of the last interval's frames dropped (processing far below the input
  rate), or frames rejected in the last interval;
- WARN also for what the node adds per camera (`camera_problems`: a relative model with
  alignment on and no valid alignment, so no metric output);
- OK otherwise ("waiting for images" before the first one, else "running"; "idle: no
  subscribers" while nobody subscribes to the camera's outputs and the node holds no input).
The message says which. `Stats` is plain Python and thread-safe (subscription callbacks and
the worker both write to it); `assess` is pure; `diagnostic_array` builds the message.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

OK, WARN, ERROR = 0, 1, 2  # DiagnosticStatus levels
IDLE = "idle: no subscribers"  # a camera whose outputs nobody subscribes to: no input held
LEVEL_NAMES = ("OK", "WARN", "ERROR")


@dataclass(frozen=True)
class Limits:
    """Alarm thresholds: node parameters diagnostics.stale_s / drop_ratio / stuck_s."""

    stale_s: float = 3.0
    drop_ratio: float = 0.5
    stuck_s: float = 10.0


@dataclass(frozen=True)
class WorkerState:
    """What the worker is doing (its heartbeat) and how long each camera's frame has waited
    for it (`LatestSlots.waiting`)."""

    alive: bool
    busy_s: float | None = None  # on the current batch; None = idle
    waiting_s: Mapping[str, float] = field(default_factory=dict)


@dataclass
class CameraActivity:
    """One camera over the last interval, and since it was last heard of."""

    received: int = 0
    processed: int = 0
    dropped: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # kind -> count
    input_rate: float = 0.0
    processed_rate: float = 0.0
    total_received: int = 0
    since_image_s: float | None = None  # None: no image yet


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
    activity: dict[str, CameraActivity] = field(default_factory=dict)  # every camera, "" too


CAMERA_COUNTERS = ("frames_received", "frames_processed", "frames_dropped")
_EVENTS = ("received", "processed", "dropped")


class Stats:
    """Event counters, in total and per camera; latency percentiles over the last `window`
    processed frames; batch counts. Named cameras (not "") also get their totals as
    `<camera>.frames_*` key-values; every camera, "" included, gets an alarm status."""

    def __init__(self, window: int = 200, clock=time.monotonic,
                 cameras: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.errors: Counter[str] = Counter()
        cameras = list(cameras)
        self.cameras: dict[str, Counter[str]] = {c: Counter() for c in cameras if c}
        self.batches = 0
        self.batch_size_max = 0
        self._latencies: deque[float] = deque(maxlen=window)
        self._last = (clock(), 0, 0, 0)  # time, received, processed, total errors
        self._per: dict[str, Counter[str]] = {c: Counter() for c in cameras}
        self._rejected: dict[str, Counter[str]] = {c: Counter() for c in cameras}
        self._seen_rejected: dict[str, Counter[str]] = {}
        self._seen: dict[str, Counter[str]] = {}  # _per at the previous snapshot
        self._last_image: dict[str, float] = {}

    def _count(self, camera: str, key: str, n: int = 1) -> None:
        if camera:
            self.cameras.setdefault(camera, Counter())[f"frames_{key}"] += n
        self._per.setdefault(camera, Counter())[key] += n

    def on_received(self, camera: str = "") -> None:
        with self._lock:
            self.received += 1
            self._count(camera, "received")
            self._last_image[camera] = self._clock()

    def on_dropped(self, n: int = 1, camera: str = "") -> None:
        with self._lock:
            self.dropped += n
            self._count(camera, "dropped", n)

    def on_processed(self, latency_s: float, camera: str = "") -> None:
        with self._lock:
            self.processed += 1
            self._latencies.append(latency_s)
            self._count(camera, "processed")

    def on_batch(self, size: int) -> None:
        """One model pass over `size` frames."""
        with self._lock:
            self.batches += 1
            self.batch_size_max = max(self.batch_size_max, size)

    def on_error(self, kind: str, camera: str | None = None) -> None:
        """A rejected frame; `camera` (when the caller knows it) also raises that camera's
        status, else only the node's."""
        with self._lock:
            self.errors[kind] += 1
            if camera is not None:
                self._rejected.setdefault(camera, Counter())[kind] += 1

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
                activity={c: self._activity(c, now, dt) for c in self._per},
            )
            self._last = (now, self.received, self.processed, n_err)
            self._seen = {c: Counter(n) for c, n in self._per.items()}
            self._seen_rejected = {c: Counter(n) for c, n in self._rejected.items()}
            return snap

    def _activity(self, camera: str, now: float, dt: float) -> CameraActivity:
        total, before = self._per[camera], self._seen.get(camera, Counter())
        new = {k: total[k] - before[k] for k in _EVENTS}
        rejected = self._rejected.get(camera, Counter()) - self._seen_rejected.get(
            camera, Counter())
        last = self._last_image.get(camera)
        return CameraActivity(
            received=new["received"],
            processed=new["processed"],
            dropped=new["dropped"],
            rejected=dict(rejected),
            input_rate=new["received"] / dt,
            processed_rate=new["processed"] / dt,
            total_received=total["received"],
            since_image_s=None if last is None else now - last,
        )


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


# ------------------------------------------------------------------------ alarms
def assess(activity: CameraActivity, waiting_s: float | None, worker: WorkerState,
           limits: Limits) -> tuple[int, str]:
    """(level, message) of one camera; every problem found is named, worst level wins."""
    problems: list[tuple[int, str]] = []
    if not worker.alive:
        problems.append((ERROR, "worker stopped: no frame is processed any more"))
    elif waiting_s is not None and waiting_s >= limits.stuck_s:
        busy = f", busy on one batch for {worker.busy_s:.1f} s" if worker.busy_s else ""
        problems.append((ERROR, f"stuck: a frame has waited {waiting_s:.1f} s for the "
                                f"worker{busy}"))
    since = activity.since_image_s
    if since is not None and since >= limits.stale_s:
        problems.append((WARN, f"stale: no image for {since:.1f} s"))
    if activity.rejected:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(activity.rejected.items()))
        total = sum(activity.rejected.values())
        problems.append((WARN, f"{total} frame(s) rejected in the last interval ({kinds})"))
    if activity.received >= 2 and activity.dropped > limits.drop_ratio * activity.received:
        problems.append((WARN, f"drops: {activity.dropped} of {activity.received} frames "
                               f"dropped, {activity.processed_rate:.1f} Hz processed of "
                               f"{activity.input_rate:.1f} Hz in"))
    if problems:
        return max(level for level, _ in problems), "; ".join(m for _, m in problems)
    if activity.total_received == 0:
        return OK, "waiting for images"
    return OK, (f"running: {activity.input_rate:.1f} Hz in, {activity.processed_rate:.1f} Hz "
                "processed")


def _status(name: str, hardware_id: str, level: int, message: str,
            values: Mapping[str, str]) -> DiagnosticStatus:
    status = DiagnosticStatus()
    status.name = name
    status.hardware_id = hardware_id
    status.level = bytes([level])
    status.message = message
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return status


def diagnostic_array(
    snap: Snapshot,
    name: str,
    hardware_id: str,
    info: Mapping[str, str],
    stamp,
    worker: WorkerState | None = None,
    limits: Limits | None = None,
    inputs: Mapping[str, str] | None = None,
    camera_values: Mapping[str, Mapping[str, str]] | None = None,
    camera_problems: Mapping[str, str] | None = None,
    idle: Collection[str] = (),
) -> DiagnosticArray:
    """The node's status (`name`: totals, every key-value, worst level of its cameras),
    then one status per camera, named `<node>: input <topic>` (`inputs`: camera -> its
    input topic), with `camera_values` added to its key-values and `camera_problems` (a
    WARN each) to its verdict. Without `worker`, the worker counts as alive and idle.
    Cameras in `idle` hold no input subscription (no subscriber on their outputs): OK, "idle:
    no subscribers", whatever their last images were."""
    worker = worker or WorkerState(alive=True)
    limits = limits or Limits()
    inputs = inputs or {}
    camera_values = camera_values or {}
    camera_problems = camera_problems or {}
    node_name = name.split(":", 1)[0]
    verdicts = {
        camera: (OK, IDLE) if camera in idle else _with_problem(
            assess(act, worker.waiting_s.get(camera), worker, limits),
            camera_problems.get(camera))
        for camera, act in snap.activity.items()
    }
    problems = [(lvl, f"{camera or 'input'}: {msg}" if len(verdicts) > 1 else msg)
                for camera, (lvl, msg) in verdicts.items() if lvl != OK]
    unattributed = snap.new_errors - sum(
        sum(a.rejected.values()) for a in snap.activity.values())
    if unattributed > 0:
        problems.append((WARN, f"{unattributed} frame(s) rejected in the last interval"))
    if problems:
        level, message = max(p[0] for p in problems), "; ".join(p[1] for p in problems)
    elif len(verdicts) == 1:
        level, message = next(iter(verdicts.values()))
    else:
        level = OK
        message = ("running" if snap.received else "waiting for images") if not all(
            c in idle for c in verdicts) else IDLE
    values = {
        "level": LEVEL_NAMES[level],
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
        "worker_alive": str(worker.alive).lower(),
        "worker_busy_s": "" if worker.busy_s is None else f"{worker.busy_s:.2f}",
        **info,
    }
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [_status(name, hardware_id, level, message, values)]
    for camera, (lvl, text) in verdicts.items():
        act = snap.activity[camera]
        waiting = worker.waiting_s.get(camera)
        msg.status.append(_status(
            f"{node_name}: input {inputs.get(camera, camera or 'image')}", hardware_id, lvl,
            text, {
                "camera": camera,
                "input_rate_hz": f"{act.input_rate:.2f}",
                "processed_rate_hz": f"{act.processed_rate:.2f}",
                "frames_received": str(act.total_received),
                "interval_received": str(act.received),
                "interval_processed": str(act.processed),
                "interval_dropped": str(act.dropped),
                "since_last_image_s": "" if act.since_image_s is None
                else f"{act.since_image_s:.2f}",
                "waiting_s": "" if waiting is None else f"{waiting:.2f}",
                **camera_values.get(camera, {}),
            }))
    return msg


def _with_problem(verdict: tuple[int, str], problem: str | None) -> tuple[int, str]:
    """`verdict` with one more WARN problem (it replaces an OK message)."""
    if not problem:
        return verdict
    level, message = verdict
    if level == OK:
        return WARN, problem
    return level, f"{message}; {problem}"
