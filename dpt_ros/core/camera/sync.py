"""Pairing each camera image with its camera_info by stamp (message_filters semantics).

image_transport's CameraPublisher, which most drivers use, publishes the image first and its
camera_info right after, both with the same stamp; bags interleave them either way. So an
image may have to wait for its camera_info, but only briefly and never behind a newer image:

- `exact` (default): the camera_info whose stamp equals the image's (TimeSynchronizer).
- `approximate`: the camera_info nearest in stamp within `slop` seconds.
- `latest`: the newest camera_info received for the image's frame_id, whatever its stamp
  (what the node did before; only for drivers whose stamps never agree).

An image with no partner yet waits at most `timeout` seconds (by the caller's clock: the bag
tool's time); `expire` hands back those that ran out. The node waits for the camera_info
*stream* instead (`wait_for_stream`, message_filters' TimeSynchronizer has no timeout
either): an image is given up once a camera_info stamped after it (beyond the slop) was taken
— a camera publishes in stamp order and a reliable reader delivers in order, so its own can
no longer come — or once it has waited `timeout` and a camera_info taken after its arrival
did not match it (the stream is alive and its stamps differ: a driver's stamp bug) — never
because the node, or its middleware, was late. A camera_info can also be lost for good (a
reliable keep-last writer drops unacknowledged samples when a starved reader falls behind):
when the camera_infos just before and just after the image's stamp are equal but for their
stamps (`same`: a calibration that did not change), the image is paired with the one before
(`SyncResult.bracketed`) instead of being given up. Under a saturated CPU
the camera_info stream was seen to stall for up to 2 s while images kept coming (issue 19);
a wall-clock timeout rejected those images although their camera_info came. `overdue` /
`take_overdue` still tell the caller which images waited longer than `timeout` (the node's
fallback to parameter intrinsics when nobody publishes camera_info). Once an
image is paired, every older image still waiting is superseded (the newest-frame rule: the
node only ever wants the newest frame; `newest_only=False` keeps them waiting instead, for
the bag tool, where every frame counts). Everything is bounded: `infos` camera_infos and
`pending` images are kept per camera.

`ReferenceSync` pairs an image with its metric references (alignment) the same way, by
nearest stamp, without ever holding an image back for long or dropping it for want of one.

Plain Python, no ROS, not thread-safe (the node calls it from its executor thread only).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dpt_ros.config.vocabulary import SYNC_MODES

T = TypeVar("T")


@dataclass
class Waiting(Generic[T]):
    """An image with no camera_info yet."""

    stamp: int  # nanoseconds
    frame_id: str
    item: T
    since: float  # caller's clock, seconds


@dataclass
class SyncResult(Generic[T]):
    """What one call released: paired (item, info), and items given up on."""

    paired: list[tuple[T, Any]]
    superseded: list[T]  # older than a paired image: dropped by the newest-frame rule
    expired: list[Waiting[T]]  # waited longer than the timeout
    # paired with the equal camera_info before their stamp, their own lost (wait_for_stream)
    bracketed: list[tuple[T, Any]] = field(default_factory=list)


class CameraSync(Generic[T]):
    """Image ↔ camera_info pairing of one camera (see the module docstring)."""

    def __init__(self, mode: str = "exact", slop: float = 0.01, timeout: float = 0.2,
                 infos: int = 32, pending: int = 8, newest_only: bool = True,
                 wait_for_stream: bool = False,
                 same: Callable[[Any, Any], bool] | None = None) -> None:
        if mode not in SYNC_MODES:
            raise ValueError(f"sync mode '{mode}' is not one of {', '.join(SYNC_MODES)}")
        self.mode = mode
        self.slop_ns = round(slop * 1e9)
        self.timeout = timeout
        self._infos: deque[tuple[int, str, Any]] = deque(maxlen=infos)  # (stamp, frame, info)
        self._latest: OrderedDict[str, Any] = OrderedDict()  # frame_id -> newest info
        self._max_frames = infos
        self._pending: deque[Waiting[T]] = deque()
        self._max_pending = pending if newest_only else None
        self._newest_only = newest_only
        self._wait_for_stream = wait_for_stream
        self._same = same
        self._newest_info: int | None = None  # stamp of the newest camera_info taken
        self._info_at: float | None = None  # caller's clock when the last one was taken

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def overdue(self, now: float) -> bool:
        """Whether an image has waited longer than the timeout (the oldest one)."""
        return bool(self._pending) and now - self._pending[0].since > self.timeout

    def take_overdue(self, now: float) -> list[Waiting[T]]:
        """Images that waited longer than the timeout, removed (oldest first)."""
        overdue = []
        while self._pending and now - self._pending[0].since > self.timeout:
            overdue.append(self._pending.popleft())
        return overdue

    def add_info(self, stamp: int, frame_id: str, info: Any, now: float | None = None
                 ) -> SyncResult[T]:
        """Store a camera_info (taken at `now`, caller's clock); pair the newest waiting
        image it completes (every waiting image it completes, with `newest_only=False`)."""
        self._info_at = now
        self._infos.append((stamp, frame_id, info))
        self._newest_info = stamp if self._newest_info is None else max(self._newest_info,
                                                                        stamp)
        self._latest[frame_id] = info
        self._latest.move_to_end(frame_id)
        while len(self._latest) > self._max_frames:
            self._latest.popitem(last=False)
        if not self._newest_only:
            return self._release_all()
        for i in range(len(self._pending) - 1, -1, -1):  # newest first
            waiting = self._pending[i]
            match = self._match(waiting.stamp, waiting.frame_id)
            if match is not None:
                return self._release(i, match)
        return SyncResult([], [], [])

    def add_image(self, stamp: int, frame_id: str, item: T, now: float) -> SyncResult[T]:
        """Pair `item` now if its camera_info is here, else let it wait."""
        info = self._match(stamp, frame_id)
        if info is not None and not self._newest_only:
            return SyncResult([(item, info)], [], [])
        self._pending.append(Waiting(stamp, frame_id, item, now))
        if info is not None:
            return self._release(len(self._pending) - 1, info)
        superseded = []
        while self._max_pending is not None and len(self._pending) > self._max_pending:
            superseded.append(self._pending.popleft().item)
        return SyncResult([], superseded, [])

    def expire(self, now: float) -> SyncResult[T]:
        """Give up on images that waited longer than the timeout, or (`wait_for_stream`)
        on those whose camera_info can no longer come: the stream has passed their stamp."""
        if not self._wait_for_stream:
            return SyncResult([], [], self.take_overdue(now))
        expired, bracketed = [], []
        while self._pending and (self._passed(self._pending[0].stamp)
                                 or self._unmatched(self._pending[0], now)):
            waiting = self._pending.popleft()
            info = self._bracket(waiting)
            if info is None:
                expired.append(waiting)
            else:
                bracketed.append((waiting.item, info))
        if bracketed and self._newest_only:  # the newest frame rule: only the last one
            superseded = [item for item, _ in bracketed[:-1]]
            return SyncResult([], superseded, expired, bracketed[-1:])
        return SyncResult([], [], expired, bracketed)

    def _bracket(self, waiting: Waiting[T]) -> Any | None:
        """The camera_info just before the image's stamp when the one just after it is
        equal to it but for the stamp (`same`), both of the image's frame; else None."""
        if self._same is None or self.mode == "latest":
            return None
        before = after = None
        for stamp, frame_id, info in self._infos:
            if frame_id != waiting.frame_id:
                continue
            if stamp < waiting.stamp and (before is None or stamp > before[0]):
                before = (stamp, info)
            elif stamp > waiting.stamp and (after is None or stamp < after[0]):
                after = (stamp, info)
        if before is None or after is None or not self._same(before[1], after[1]):
            return None
        return before[1]

    def _unmatched(self, waiting: Waiting[T], now: float) -> bool:
        """Waited `timeout`, and a camera_info taken after the image came did not match."""
        return (now - waiting.since > self.timeout and self._info_at is not None
                and self._info_at > waiting.since)

    def _passed(self, stamp: int) -> bool:
        """A camera_info stamped after `stamp` (beyond the slop in approximate mode) was
        taken; in latest mode any camera_info of the frame would have paired it."""
        if self.mode == "latest" or self._newest_info is None:
            return False
        return self._newest_info > stamp + (self.slop_ns if self.mode == "approximate" else 0)

    def _release_all(self) -> SyncResult[T]:
        """Every waiting image that has its camera_info now, in arrival order."""
        paired, left = [], deque()
        for waiting in self._pending:
            match = self._match(waiting.stamp, waiting.frame_id)
            if match is None:
                left.append(waiting)
            else:
                paired.append((waiting.item, match))
        self._pending = left
        return SyncResult(paired, [], [])

    def _release(self, index: int, info: Any) -> SyncResult[T]:
        superseded = [self._pending.popleft().item for _ in range(index)]
        paired = self._pending.popleft()
        return SyncResult([(paired.item, info)], superseded, [])

    def _match(self, stamp: int, frame_id: str) -> Any | None:
        if self.mode == "latest":
            return self._latest.get(frame_id)
        best, best_gap = None, None
        for info_stamp, _, info in reversed(self._infos):
            gap = abs(info_stamp - stamp)
            if gap == 0:
                return info
            if self.mode == "approximate" and gap <= self.slop_ns and (
                best_gap is None or gap < best_gap
            ):
                best, best_gap = info, gap
        return best


@dataclass
class _Held(Generic[T]):
    """An image waiting for its metric reference(s)."""

    stamp: int
    item: T
    since: float
    matched: dict[str, Any] | None = None  # set once resolved


class ReferenceSync(Generic[T]):
    """Each image's metric references (depth image, point cloud: one stream per `kind`),
    the one nearest in stamp within `slop` seconds, as message_filters' ApproximateTime
    would pair them, but never at the image's expense: a reference is an aid, so an image
    without one is released, not dropped.

    References arrive in stamp order per stream, so an image is resolved as soon as every
    live stream has delivered a reference stamped at or after it (none later can be
    nearer), or after waiting `wait` seconds (caller's clock), or at once when no stream is
    live (none delivered within the last `live` seconds: no reference sensor, or it
    stopped; `expected` streams count as live throughout: the bag tool knows which
    reference topics its bag holds). With `newest_only` (the node) a newer image resolves
    the one waiting (the worker wants the newest frame anyway); without (the bag tool)
    images wait in order and are released in order. Bounded: `references` per stream,
    `pending` waiting images.
    Plain Python, not thread-safe (the node calls it from its executor thread only).
    """

    def __init__(self, slop: float, wait: float, references: int = 16, pending: int = 64,
                 newest_only: bool = True, live: float = 1.0,
                 expected: tuple[str, ...] = ()) -> None:
        self.slop_ns = round(slop * 1e9)
        self.wait = wait
        self.live = live
        self._size = references
        self._refs: dict[str, deque[tuple[int, Any]]] = {}
        self._last_seen: dict[str, float] = {}
        self._held: deque[_Held[T]] = deque()
        self._expected = expected
        self._pending = pending
        self._newest_only = newest_only

    @property
    def waiting(self) -> int:
        return len(self._held)

    def add_reference(self, kind: str, stamp: int, ref: Any, now: float
                      ) -> list[tuple[T, dict[str, Any]]]:
        refs = self._refs.setdefault(kind, deque(maxlen=self._size))
        refs.append((stamp, ref))
        self._last_seen[kind] = now
        return self._release(now)

    def add_image(self, stamp: int, item: T, now: float) -> list[tuple[T, dict[str, Any]]]:
        """(item, {kind: reference}) pairs released now (this image's when resolved)."""
        if self._newest_only:
            for held in self._held:
                if held.matched is None:
                    held.matched = self._match(held.stamp)
        self._held.append(_Held(stamp, item, now))
        if len(self._held) > self._pending:  # bounded: the oldest goes out as it is
            oldest = self._held[0]
            if oldest.matched is None:
                oldest.matched = self._match(oldest.stamp)
        return self._release(now)

    def expire(self, now: float) -> list[tuple[T, dict[str, Any]]]:
        """Images that waited `wait` seconds go out with what is there."""
        return self._release(now)

    def flush(self) -> list[tuple[T, dict[str, Any]]]:
        """Every waiting image, with what is there (the input ended)."""
        for held in self._held:
            if held.matched is None:
                held.matched = self._match(held.stamp)
        return self._release(float("-inf"))

    def _live(self, now: float) -> list[str]:
        live = {k for k, seen in self._last_seen.items() if now - seen <= self.live}
        return sorted(live | set(self._expected))

    def _release(self, now: float) -> list[tuple[T, dict[str, Any]]]:
        live = self._live(now)
        for held in self._held:
            if held.matched is not None:
                continue
            done = now - held.since >= self.wait or all(
                self._refs.get(k) and self._refs[k][-1][0] >= held.stamp for k in live)
            if done:
                held.matched = self._match(held.stamp)
        out = []
        while self._held and self._held[0].matched is not None:
            held = self._held.popleft()
            out.append((held.item, held.matched))
        return out

    def _match(self, stamp: int) -> dict[str, Any]:
        """{kind: the reference nearest to `stamp` within slop} over every stream."""
        matched = {}
        for kind, refs in self._refs.items():
            best, gap = None, None
            for ref_stamp, ref in refs:
                d = abs(ref_stamp - stamp)
                if d <= self.slop_ns and (gap is None or d < gap):
                    best, gap = ref, d
            if best is not None:
                matched[kind] = best
        return matched
