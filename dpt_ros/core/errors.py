"""The one exception for unusable input frames, tagged so the node can count drops by cause."""

from __future__ import annotations

KINDS = ("encoding", "size", "step", "data", "compressed", "camera_info", "reference",
         "distortion")


class BadInput(ValueError):
    """An input message that cannot be processed; `kind` is one of `KINDS`."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown BadInput kind {kind!r}; expected one of {KINDS}")
        super().__init__(message)
        self.kind = kind
