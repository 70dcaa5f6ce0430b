"""Ctrl-C as a request: the first SIGINT lets the current batch finish and the run clean up."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class StopFlag:
    """Context manager that turns the first SIGINT into `stop_requested`.

    A second SIGINT raises KeyboardInterrupt as usual (the caller's `finally` still cleans
    up), so a stuck run can always be killed from the keyboard.
    """

    def __init__(self) -> None:
        self.stop_requested = False
        self._previous: object = None
        self._installed = False

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
            self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
