"""A queue of one and the thread that drains it: the newest frame wins, so latency never
grows with load and the subscription callback never waits for inference."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; `put` replaces (and reports) an item nobody took yet."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> bool:
        """Store `item`; True when it replaced an unprocessed one (a dropped frame)."""
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to `timeout`; None on timeout or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return None if self._closed else item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class Worker(Generic[T]):
    """Runs `handle(item)` on a daemon thread for each item taken from `slot`.

    `handle` must catch its own errors; anything escaping goes to `on_crash` and the loop
    continues, so one bad frame never stops the node.
    """

    def __init__(
        self,
        slot: LatestSlot[T],
        handle: Callable[[T], None],
        on_crash: Callable[[BaseException], None],
        name: str = "dpt_worker",
    ) -> None:
        self._slot = slot
        self._handle = handle
        self._on_crash = on_crash
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._slot.closed:
            item = self._slot.take(timeout=0.5)
            if item is None:
                continue
            try:
                self._handle(item)
            except Exception as exc:  # the worker must outlive any single frame
                self._on_crash(exc)

    def stop(self, timeout: float = 5.0) -> None:
        self._slot.close()
        if self._thread.is_alive():
            self._thread.join(timeout)
