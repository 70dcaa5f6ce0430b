"""One camera's metric references for alignment: its `depth_reference` (sensor_msgs/Image,
32FC1 metres / 16UC1 millimetres, registered to the camera) and `points_reference`
(sensor_msgs/PointCloud2 x/y/z, camera optical frame or `alignment.extrinsic`) inputs,
remappable, `<cam>/...` with `cameras`; each image paired with the references nearest in
stamp within `alignment.slop_ms` (`core.camera.sync.ReferenceSync`: an image waits at most
`alignment.wait_ms`, and only while references come in).

Callbacks never block; the worker decodes the paired messages (`reference`). Also here:
`AlignmentWatch`, which says once when a camera's metric output stops for want of a valid
alignment and once when it resumes.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from dpt_ros import messages
from dpt_ros.core.alignment import AlignmentState, Extrinsic, FrameReference
from dpt_ros.core.camera.camera_info import stamp_ns
from dpt_ros.core.camera.sync import ReferenceSync
from dpt_ros.core.pipeline.outputs import camera_topic
from dpt_ros.ros.qos import MatchedSubscription

DEPTH_INPUT = "depth_reference"  # remap these; <camera>/depth_reference with `cameras`
POINTS_INPUT = "points_reference"
KINDS = {"depth": (DEPTH_INPUT, Image), "points": (POINTS_INPUT, PointCloud2)}

# camera, msg, info, received, {kind: reference msg}
Deliver = Callable[[str, Any, "CameraInfo | None", float, dict], None]


class ReferenceInput:
    """Reference inputs of camera `name` ("" for the single-camera node)."""

    def __init__(self, node: Node, name: str, values: Mapping[str, Any], deliver: Deliver
                 ) -> None:
        self.node, self.name, self.values, self.deliver = node, name, values, deliver
        self.topics = {kind: node.resolve_topic_name(camera_topic(topic, name))
                       for kind, (topic, _) in KINDS.items()}
        self.types = {kind: msg_type for kind, (_, msg_type) in KINDS.items()}
        if values.get("depth_reference_transport") == "compressedDepth":  # image_transport's
            self.topics["depth"] += "/compressedDepth"
            self.types["depth"] = CompressedImage
        self.sync: ReferenceSync[tuple[Any, Any, float]] = ReferenceSync(
            values["alignment.slop_ms"] / 1000.0, values["alignment.wait_ms"] / 1000.0,
            references=16, pending=max(2, values["qos.depth"]))
        ext = Extrinsic.from_list(values["alignment.extrinsic"])
        self.extrinsic = None if ext.is_identity else ext
        self.received: Counter[str] = Counter()
        self.paired: Counter[str] = Counter()  # images released with a reference of a kind
        self._subs: dict[str, MatchedSubscription] = {}

    def subscribe(self) -> None:
        self._subs = {
            kind: MatchedSubscription(
                self.node, self.types[kind], self.topics[kind],
                lambda msg, kind=kind: self._on_reference(kind, msg), self.values)
            for kind in KINDS
        }
        self.update_qos()

    def unsubscribe(self) -> None:
        for sub in self._subs.values():
            sub.destroy()
        self._subs = {}

    def update_qos(self) -> None:
        for sub in self._subs.values():
            sub.update()

    # ---------------------------------------------------------------- pairing
    def on_image(self, camera: str, msg: Any, info: CameraInfo | None, received: float
                 ) -> None:
        """An image paired with its camera_info: on to the worker once its references are
        known (now, when they are here or none are coming)."""
        self._released(self.sync.add_image(stamp_ns(msg.header), (msg, info, received),
                                           time.monotonic()))

    def _on_reference(self, kind: str, msg: Any) -> None:
        self.received[kind] += 1
        self._released(self.sync.add_reference(kind, stamp_ns(msg.header), msg,
                                               time.monotonic()))

    def expire(self, now: float) -> None:
        self._released(self.sync.expire(now))

    def _released(self, released: list) -> None:
        for (msg, info, received), refs in released:
            for kind in refs:
                self.paired[kind] += 1
            self.deliver(self.name, msg, info, received, refs)

    # ------------------------------------------------------------ the worker's
    def reference(self, refs: Mapping[str, Any], image_frame: str, max_pixels: int
                  ) -> FrameReference | None:
        """The paired messages as the frame's `FrameReference`; raises BadInput('reference')
        (the frame is then processed without one)."""
        return messages.frame_reference(refs.get("depth"), refs.get("points"), self.extrinsic,
                                        max_pixels, image_frame, self.topics["depth"])

    def diagnostics(self) -> dict[str, str]:
        return {
            "alignment.depth_reference_topic": self.topics["depth"],
            "alignment.points_reference_topic": self.topics["points"],
            "alignment.references_received": ", ".join(
                f"{kind} {self.received[kind]}" for kind in KINDS),
            "alignment.frames_with_reference": ", ".join(
                f"{kind} {self.paired[kind]}" for kind in KINDS),
        }


class AlignmentWatch:
    """What the node says about a camera's alignment: once when its metric output stops
    (no valid alignment: a relative model publishes no ~/depth/image / ~/points, a metric one
    goes uncorrected) and once when it is valid again. Plain logic (tested without ROS)."""

    def __init__(self, model_is_metric: bool, scale_fallback: Callable[[], bool]) -> None:
        self.model_is_metric = model_is_metric
        self.scale_fallback = scale_fallback  # depth.scale set: relative frames stay metric
        self._valid: dict[str, bool] = {}
        self._ever: set[str] = set()  # cameras that have had a valid alignment

    def update(self, camera: str, state: AlignmentState | None) -> str | None:
        """The line to log for this frame's state, or None (nothing changed)."""
        if state is None:
            return None
        before = self._valid.get(camera, False)
        self._valid[camera] = state.valid
        if before == state.valid:
            return None
        who = f"camera '{camera}'" if camera else "camera"
        if state.valid:
            fit = (f"scale {state.scale:.6g}, shift {state.shift:.6g}, {state.inliers} "
                   f"inliers, residual {state.residual:.3f}")
            now = ("metric depth corrected" if self.model_is_metric
                   else "~/depth/image and ~/points published")
            again = " again" if camera in self._ever else ""
            self._ever.add(camera)
            return f"{who}: valid alignment{again} ({fit}): {now}"
        if self.model_is_metric:
            stops = "~/depth/image is the model's own metres, uncorrected"
        elif self.scale_fallback():
            stops = "~/depth/image and ~/points fall back to depth.scale / depth.shift"
        else:
            stops = "~/depth/image and ~/points stop until a reference fits again"
        return f"{who}: {state.status}: {stops}"

    def problem(self, state: AlignmentState | None) -> str | None:
        """A WARN line for the camera's /diagnostics status while a relative model has no
        metres to publish for want of an alignment."""
        if self.model_is_metric or self.scale_fallback():
            return None
        if state is None:
            return "alignment: no frame aligned yet: no ~/depth/image, no ~/points"
        if state.valid:
            return None
        return f"alignment: {state.status}: no ~/depth/image, no ~/points"


def alignment_values(state: AlignmentState | None) -> dict[str, str]:
    """A camera's `alignment.*` key-values (before its first frame: no reference yet)."""
    return (state or AlignmentState(False, age_s=math.inf)).diagnostics()
