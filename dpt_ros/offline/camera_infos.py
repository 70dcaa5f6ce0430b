"""Which intrinsics go with an image read from a bag: the node's rule, plus a look-ahead.

The node uses the latest camera_info received for the image's frame_id, and intrinsics
from camera.focal_length / camera.hfov until one arrives. Offline we also know the future:
images recorded before the first camera_info of their frame get that first camera_info
(found by a short pre-scan) instead of the fallback.
"""

from __future__ import annotations

from typing import Any

from dpt_ros import messages
from dpt_ros.core.geometry import Intrinsics, validate_intrinsics
from dpt_ros.core.outputs import fallback_intrinsics


class CameraInfos:
    """Latest CameraInfo message per frame_id, converted and checked when an image uses it."""

    def __init__(
        self, first: dict[str, Any], focal_length: float = 0.0, hfov: float = 60.0
    ) -> None:
        self.first = dict(first)
        self.latest: dict[str, Any] = {}
        self.focal_length = focal_length
        self.hfov = hfov

    def add(self, msg: Any) -> None:
        self.latest[msg.header.frame_id] = msg

    def for_image(self, frame_id: str, width: int, height: int) -> Intrinsics:
        """Intrinsics for a width x height image; BadInput('camera_info') when they don't fit."""
        info = self.latest.get(frame_id) or self.first.get(frame_id)
        if info is None:
            return fallback_intrinsics(self.focal_length, self.hfov, width, height)
        return validate_intrinsics(messages.intrinsics_from_camera_info(info), width, height)
