"""Queues of one and the thread that drains them: the newest frame of each camera wins, so
latency never grows with load and the subscription callbacks never wait for inference."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class LatestSlots(Generic[T]):
    """One queue of one per key (camera). `put` replaces (and reports) an item nobody took
    yet; `take` hands over the newest item of every key that has one, in one batch."""

    def __init__(self, keys: Iterable[str], batch_wait: float = 0.0) -> None:
        self._cond = threading.Condition()
        self._keys = frozenset(keys)
        self._items: dict[str, T] = {}
        self._first = 0.0  # time.monotonic() of the oldest waiting item
        self._since: dict[str, float] = {}  # key -> arrival of its first untaken item
        self._closed = False
        self.batch_wait = batch_wait  # seconds to wait after the first item for the others

    def put(self, key: str, item: T) -> bool:
        """Store `item` for `key`; True when it replaced an unprocessed one (a dropped frame)."""
        with self._cond:
            replaced = key in self._items
            now = time.monotonic()
            if not self._items:
                self._first = now
            self._since.setdefault(key, now)
            self._items[key] = item
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> dict[str, T] | None:
        """The newest item of each key, waiting up to `timeout` for a first one and then until
        every key has one or `batch_wait` has passed since the first arrived; None on timeout
        or once closed."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items and self.batch_wait > 0:
                left = self._first + self.batch_wait - time.monotonic()
                self._cond.wait_for(lambda: self._closed or self._keys <= self._items.keys(),
                                    max(left, 0.0))
            items, self._items = self._items, {}
            self._since.clear()
            return None if self._closed or not items else items

    def waiting(self) -> dict[str, float]:
        """Seconds each key's frame has waited untaken (counted from the first frame since
        the last take, so a stuck worker shows although newer frames keep replacing it)."""
        with self._cond:
            now = time.monotonic()
            return {key: now - since for key, since in self._since.items()}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class Source(Protocol[T_co]):
    """What `Worker` drains (`LatestSlots`: batches of the newest item per camera)."""

    def take(self, timeout: float | None = None) -> T_co | None: ...

    def close(self) -> None: ...

    @property
    def closed(self) -> bool: ...


class Worker(Generic[T]):
    """Runs `handle(item)` on a daemon thread for each item taken from `slot`.

    `handle` must catch its own errors; anything escaping goes to `on_crash` and the loop
    continues, so one bad frame never stops the node. `first` (e.g. the model warm-up) runs
    on the same thread before the loop, and `start()` waits for it and re-raises its error:
    torch.compile's CUDA graphs belong to the thread that recorded them, so every model call,
    warm-up included, happens on this one thread.
    """

    def __init__(
        self,
        slot: Source[T],
        handle: Callable[[T], None],
        on_crash: Callable[[BaseException], None],
        name: str = "dpt_worker",
        first: Callable[[], None] | None = None,
    ) -> None:
        self._slot = slot
        self._handle = handle
        self._on_crash = on_crash
        self._first = first
        self._first_done = threading.Event()
        self._first_error: BaseException | None = None
        self._busy_since: float | None = None  # heartbeat: when the current item was taken
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._first_done.wait()
        if self._first_error is not None:
            self._slot.close()
            raise self._first_error

    def _run(self) -> None:
        try:
            if self._first is not None:
                self._first()
        except BaseException as exc:  # handed to start(), which raises it in the caller
            self._first_error = exc
            return
        finally:
            self._first_done.set()
        while not self._slot.closed:
            item = self._slot.take(timeout=0.5)
            if item is None:
                continue
            self._busy_since = time.monotonic()
            try:
                self._handle(item)
            except Exception as exc:  # the worker must outlive any single frame
                self._report(exc)
            finally:
                self._busy_since = None

    def _report(self, exc: Exception) -> None:
        try:
            self._on_crash(exc)
        except Exception as inner:  # a failing reporter must not end the loop either
            print(f"{self._thread.name}: {type(exc).__name__}: {exc} (and reporting it "
                  f"failed: {type(inner).__name__}: {inner})", file=sys.stderr, flush=True)

    @property
    def alive(self) -> bool:
        """The thread runs (False before start, after stop, or if it died)."""
        return self._thread.is_alive()

    @property
    def busy_s(self) -> float | None:
        """Seconds spent on the current item; None while idle (the heartbeat diagnostics
        read to tell a slow model from a stuck one)."""
        since = self._busy_since
        return None if since is None else time.monotonic() - since

    def stop(self, timeout: float = 5.0) -> None:
        self._slot.close()
        if self._thread.is_alive():
            self._thread.join(timeout)
