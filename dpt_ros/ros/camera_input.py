"""One camera's inputs for dpt_node: its image and camera_info subscriptions (image QoS
matched to the camera), the pairing of each image with its camera_info by stamp
(`core.camera.sync`), and which camera model its frames get.

Everything here runs in the executor's callbacks and never waits: a paired image is handed
to `deliver` (the worker's queue of one), images still waiting for their camera_info are
given up by `expire` (the node's sync timer) only once the camera_info stream has passed
their stamp (`CameraSync(wait_for_stream=True)`), after the camera_info messages that the
middleware has already delivered were taken: on a busy machine the executor runs the timer
late and before the subscriptions of the same wait, and the camera_info stream itself stalls
for up to 2 s; a deadline on wall time rejected images whose camera_info came (issue 19: 3
of 5 frames per second). An image that waits longer is replaced by the next one (counted as
dropped), as in the worker's queue of one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from dpt_ros.config.params import image_transport
from dpt_ros.core.camera.camera_info import camera_for_image, stamp_ns, stamp_text
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.camera.sync import CameraSync, SyncResult
from dpt_ros.core.pipeline.outputs import camera_topic, camera_without_info
from dpt_ros.ros.diagnostics import Stats, Throttle
from dpt_ros.ros.qos import MatchedSubscription

IMAGE_INPUT = "image"  # remap these two (the launch file does); <camera>/image with `cameras`
INFO_INPUT = "camera_info"

Deliver = Callable[[str, Any, "CameraInfo | None", float], None]  # camera, msg, info, received


def same_calibration(a: CameraInfo, b: CameraInfo) -> bool:
    """Two camera_infos equal in everything but their stamps (frame_id, size, model, D, K,
    R, P, binning, ROI): a calibration that did not change between them."""
    return (a.header.frame_id == b.header.frame_id and a.width == b.width
            and a.height == b.height and a.distortion_model == b.distortion_model
            and list(a.d) == list(b.d) and list(a.k) == list(b.k) and list(a.r) == list(b.r)
            and list(a.p) == list(b.p) and a.binning_x == b.binning_x
            and a.binning_y == b.binning_y and a.roi == b.roi)


class CameraInput:
    """Inputs of camera `name` ("" for the single-camera node: plain topic names)."""

    def __init__(self, node: Node, name: str, values: Mapping[str, Any], stats: Stats,
                 throttle: Throttle, deliver: Deliver) -> None:
        self.node, self.name, self.values = node, name, values
        self.stats, self.throttle, self.deliver = stats, throttle, deliver
        self.compressed = image_transport(values)[0] == "compressed"
        base = node.resolve_topic_name(camera_topic(IMAGE_INPUT, name))
        self.image_topic = base + "/compressed" if self.compressed else base
        self.info_topic = node.resolve_topic_name(camera_topic(INFO_INPUT, name))
        self.sync: CameraSync[tuple[Any, float]] = CameraSync(
            values["sync.mode"], values["sync.slop_ms"] / 1000.0,
            values["sync.timeout_ms"] / 1000.0, pending=max(2, values["qos.depth"]),
            wait_for_stream=True, same=same_calibration,
        )
        self.bracketed = 0  # images paired with the equal camera_info around their stamp
        self._image = MatchedSubscription(
            node, CompressedImage if self.compressed else Image, self.image_topic,
            self._on_image, values)
        # True while intrinsics come from parameters (camera.use_parameters, or nobody
        # publishes on the camera_info topic); diagnostics show it
        self.parameter_intrinsics = bool(values["camera.use_parameters"])
        # camera_info follows its publishers' QoS like the image (a reliable camera's
        # camera_info read best-effort is dropped whenever the node is late)
        self._info = MatchedSubscription(node, CameraInfo, self.info_topic, self._on_info,
                                         values)

    @property
    def reliability(self) -> str | None:
        """The image subscription's reliability (None while not subscribed)."""
        return self._image.reliability

    # -------------------------------------------------------------- subscriptions
    def subscribe(self) -> None:
        self.update_qos()

    def unsubscribe(self) -> None:
        self._image.destroy()
        self._info.destroy()

    def update_qos(self) -> None:
        """(Re)subscribe image and camera_info when the reliability they should use differs
        from theirs (each follows its own publishers)."""
        self._info.update()
        self._image.update()

    # ------------------------------------------------------------------ pairing
    def _on_image(self, msg: Image | CompressedImage) -> None:
        """Never blocks: pair the image with its camera_info, or let it wait for it."""
        self.stats.on_received(self.name)
        now = time.monotonic()
        if self.parameter_intrinsics and not self._info_publisher_appeared():
            self.deliver(self.name, msg, None, now)
            return
        self._released(self.sync.add_image(stamp_ns(msg.header), msg.header.frame_id,
                                           (msg, now), now))

    def _on_info(self, msg: CameraInfo) -> None:
        self._released(self.sync.add_info(stamp_ns(msg.header), msg.header.frame_id, msg,
                                          time.monotonic()))

    def _released(self, result: SyncResult[tuple[Any, float]]) -> None:
        for _ in result.superseded:
            self.stats.on_dropped(camera=self.name)
        for (msg, received), info in result.paired:
            self.deliver(self.name, msg, info, received)

    def expire(self, now: float) -> None:
        """Images whose camera_info can no longer come (the stream passed their stamp):
        dropped and counted (`no_camera_info`). Images that waited `sync.timeout_ms` while
        nobody publishes on the camera_info topic: served with parameter intrinsics.

        First the camera_info messages already delivered but not taken yet (a late
        executor) are taken and paired."""
        if not self.sync.waiting:
            return
        for info in self._info.take_pending():
            self._on_info(info)
        result = self.sync.expire(now)
        expired = result.expired
        for _ in result.superseded:
            self.stats.on_dropped(camera=self.name)
        for (msg, received), info in result.bracketed:
            self.bracketed += 1
            self.deliver(self.name, msg, info, received)
        if expired:
            for _ in expired:
                self.stats.on_error("no_camera_info", camera=self.name)
            if self.throttle.ready(f"no_camera_info/{self.name}"):
                self.node.get_logger().warning(self._no_info_reason(expired))
        if not self.sync.overdue(now):
            return
        if not self.parameter_intrinsics and self.node.count_publishers(self.info_topic) == 0:
            self.parameter_intrinsics = True
            source = ("the depth model's ESTIMATED focal length (its field of view, smoothed "
                      "over frames; not a calibration)" if self.estimating
                      else "intrinsics from camera.focal_length / camera.hfov")
            self.node.get_logger().warning(
                f"no publisher on {self.info_topic}: images of {self.image_topic} are "
                f"processed with {source} (~/depth/camera_info carries them); remap "
                "camera_info to the camera's topic for real intrinsics"
            )
        if self.parameter_intrinsics:
            overdue = self.sync.take_overdue(now)
            for _ in overdue[:-1]:
                self.stats.on_dropped(camera=self.name)
            msg, received = overdue[-1].item
            self.deliver(self.name, msg, None, received)

    def _no_info_reason(self, expired: list) -> str:
        mode, v = self.sync.mode, self.values
        partner = {"exact": "the same stamp",
                   "approximate": f"a stamp within {v['sync.slop_ms']:g} ms",
                   "latest": "their frame_id"}[mode]
        stamps = ", ".join(stamp_text(w.stamp) for w in expired[-3:])
        return (f"skipped {len(expired)} image(s) of {self.image_topic} (stamps {stamps}): "
                f"no camera_info on {self.info_topic} with {partner}, and a later one came "
                f"(sync.mode {mode}); check the driver's stamps, or use sync.mode "
                "approximate")

    def _info_publisher_appeared(self) -> bool:
        """In parameter mode because nobody published camera_info: leave it once somebody
        does (never when camera.use_parameters asks for it)."""
        if self.values["camera.use_parameters"] or self.node.count_publishers(
                self.info_topic) == 0:
            return False
        self.parameter_intrinsics = False
        self.node.get_logger().info(
            f"{self.info_topic} now has a publisher: using its camera_info")
        return True

    # ---------------------------------------------------------------- the camera
    @property
    def estimating(self) -> bool:
        """Images without camera_info get the depth model's estimated focal length."""
        pipeline = getattr(self.node, "pipeline", None)
        return bool(self.parameter_intrinsics and pipeline is not None and pipeline.has_fov
                    and camera_without_info(self.values, 1, 1, True) is None)

    def camera_model(self, info: CameraInfo | None, width: int, height: int
                     ) -> Intrinsics | None:
        """The camera model of one image: from its own camera_info, or from parameters, or
        None: the depth model estimates it (Depth Pro's field of view)."""
        if info is None:
            pipeline = getattr(self.node, "pipeline", None)
            return camera_without_info(self.values, width, height,
                                       bool(pipeline is not None and pipeline.has_fov))
        return camera_for_image(info, width, height, self.values["camera.rectified"],
                                self.image_topic)

    def diagnostics(self) -> dict[str, str]:
        prefix = f"{self.name}." if self.name else ""
        return {
            prefix + "input_topic": self.image_topic,
            prefix + "input_reliability": str(self.reliability),
            prefix + "camera_info_topic": self.info_topic,
            # its own camera_info lost, the equal ones around its stamp used (sync.py)
            prefix + "camera_info_bracketed": str(self.bracketed),
            prefix + "intrinsics": (
                self._estimate_text() if self.estimating
                else "parameters (camera.focal_length / camera.hfov)"
                if self.parameter_intrinsics else f"camera_info (sync {self.sync.mode})"
            ),
        }

    def _estimate_text(self) -> str:
        ratio = self.node.pipeline.estimated_focal(self.name)
        now = f", f = {ratio:.4f} x image width" if ratio is not None else ""
        return f"ESTIMATED by the depth model (field of view, smoothed{now})"

