"""Which camera_info goes with an image read from a bag: the node's rule, in bag time.

The node pairs each image with its camera_info by stamp (`core.camera.sync.CameraSync`, the node's
`sync.*` parameters) and waits `sync.timeout_ms` for it; here the clock is the bag's log
time, so a bag gives the pairing the node would have made while it was recorded. Unlike the
node, no waiting image is ever dropped for a newer one (offline, every frame counts); images
whose camera_info never comes within the timeout are given back as unpaired. Without a
camera_info topic (or with `camera.use_parameters`) intrinsics come from
`camera.focal_length` / `camera.hfov`, as in the node with no camera_info publisher.
"""

from __future__ import annotations

from typing import Any

from dpt_ros.core.camera.camera_info import camera_for_image, stamp_ns
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.camera.sync import CameraSync
from dpt_ros.core.pipeline.outputs import fallback_intrinsics

NO_INFO = object()  # the info of an image served with parameter intrinsics


class BagCameras:
    """Image ↔ camera_info pairing of one bag camera."""

    def __init__(self, values: dict[str, Any], has_infos: bool, topic: str) -> None:
        self.values = values
        self.topic = topic
        self.with_parameters = not has_infos or bool(values["camera.use_parameters"])
        self.sync: CameraSync[Any] = CameraSync(
            values["sync.mode"], values["sync.slop_ms"] / 1000.0,
            values["sync.timeout_ms"] / 1000.0, newest_only=False,
        )

    @property
    def waiting(self) -> int:
        return self.sync.waiting

    def add_info(self, msg: Any) -> list[tuple[Any, Any]]:
        """(image item, info) pairs this camera_info completes."""
        return self.sync.add_info(stamp_ns(msg.header), msg.header.frame_id, msg).paired

    def add_image(self, msg: Any, item: Any, now: float) -> list[tuple[Any, Any]]:
        """(item, info) pairs ready now: this image's when its camera_info is here (or none is
        expected), else none yet."""
        if self.with_parameters:
            return [(item, NO_INFO)]
        return self.sync.add_image(stamp_ns(msg.header), msg.header.frame_id, item, now).paired

    def expire(self, now: float) -> list[Any]:
        """Items that waited longer than the timeout (bag time) for their camera_info."""
        return [w.item for w in self.sync.expire(now).expired]

    def flush(self) -> list[Any]:
        """Every item still waiting (the bag ended, or memory must be released)."""
        return self.expire(float("inf"))

    def camera(self, info: Any, width: int, height: int) -> Intrinsics:
        """The camera model of one image; BadInput('camera_info') when `info` does not fit."""
        if info is NO_INFO:
            return fallback_intrinsics(
                self.values["camera.focal_length"], self.values["camera.hfov"], width, height
            )
        return camera_for_image(info, width, height, self.values["camera.rectified"],
                                self.topic)
