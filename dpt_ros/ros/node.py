"""dpt_node: camera images in; depth, segmentation and point clouds out.

Thin by design: parameters come from `params`, QoS from `qos`, counters from `diagnostics`,
the queues of one from `worker`, message conversion from `messages`, and all the maths from
`dpt_ros.core.pipeline.Pipeline`. This file wires them to rclpy, once per camera (one unnamed
camera by default; `cameras` names several, whose newest frames share one model pass).
"""

from __future__ import annotations

import json
import sys
import time
from array import array
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String

from dpt_ros import messages
from dpt_ros.core.errors import BadInput
from dpt_ros.core.geometry import Intrinsics, validate_intrinsics
from dpt_ros.core.outputs import (
    DEPTH_IMAGES,
    DEPTH_INFO_TOPIC,
    DIAGNOSTICS_TOPIC,
    LABELS_TOPIC,
    OUTPUT_TOPICS,
    available_outputs,
    camera_topic,
    fallback_intrinsics,
    image_encoding,
    wanted_outputs,
)
from dpt_ros.core.params import (
    BY_NAME,
    SPECS,
    ParamSpec,
    check_update,
    forced_outputs,
    pipeline_kwargs,
    pipeline_settings,
)
from dpt_ros.core.pipeline import Frame, FrameResult, Pipeline
from dpt_ros.ros.diagnostics import Stats, Throttle, diagnostic_array
from dpt_ros.ros.qos import (
    BEST_EFFORT,
    choose_reliability,
    input_qos,
    latched_qos,
    output_qos,
    reliability_name,
)
from dpt_ros.ros.serialized import send_cloud, send_image
from dpt_ros.ros.worker import LatestSlots, Worker

NODE_NAME = "dpt_node"
IMAGE_INPUT = "image"  # remap these two (the launch file does); <camera>/image with `cameras`
INFO_INPUT = "camera_info"


class StartupError(RuntimeError):
    """Configuration the node cannot start with (reported as one line, exit code 1)."""


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """ROS descriptor of one parameter: description, choices, range, read-only flag."""
    desc = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.choices:
        desc.additional_constraints = "one of: " + ", ".join(spec.choices)
    if isinstance(spec.default, list):
        if spec.lo is not None:
            desc.additional_constraints = f"each value in [{spec.lo}, {spec.hi}]"
    elif spec.lo is not None and spec.hi is not None:
        if isinstance(spec.default, float):
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(spec.lo), to_value=float(spec.hi))
            ]
        else:
            desc.integer_range = [IntegerRange(from_value=int(spec.lo), to_value=int(spec.hi))]
    return desc


def _ros_default(spec: ParamSpec) -> Any:
    """rclpy infers a parameter's type from its default, and `[]` has none: the string array
    with an empty default (`cameras`) is declared by type; left unset it keeps the default."""
    return Parameter.Type.STRING_ARRAY if spec.default == [] else spec.default


def _plain(value: Any) -> Any:
    """rclpy hands array parameters over as array.array; the checks want lists."""
    return value.tolist() if isinstance(value, array) else value


@dataclass
class _Camera:
    """One input camera: its topics, subscriptions, publishers and latest camera_infos.
    `name` is "" for the single-camera node (plain topic names)."""

    name: str
    image_topic: str
    pubs: dict[str, Publisher]
    info_pub: Publisher | None
    image_sub: Subscription | None = None
    info_sub: Subscription | None = None
    reliability: str | None = None
    infos: dict[str, CameraInfo] = field(default_factory=dict)  # the latest per frame_id


class _Job(NamedTuple):
    """One camera's frame in a batch."""

    camera: _Camera
    want: set[str]
    header: Any
    frame: Frame
    received: float


class DptNode(Node):
    """The ROS face of `Pipeline`; see docs/ros_node.md for topics, parameters and QoS."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._values = self._declare_parameters()
        names = self._values["cameras"] or [""]
        self._slots: LatestSlots[tuple[Any, float]] = LatestSlots(
            names, self._values["batch_wait_ms"] / 1000.0
        )
        self.pipeline = self._load_pipeline()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._forced = forced_outputs(self._values)
        self._compressed = self._values["input_transport"] == "compressed"

        self.stats = Stats(cameras=names)
        self._throttle = Throttle(period=5.0)
        self._warned_frames: set[tuple[str, str]] = set()
        self._warned_empty_frame = False

        self._available = available_outputs(
            self.pipeline.has_depth, self.pipeline.has_segmentation, self.pipeline.model_is_metric
        )
        self._cameras = {name: self._make_camera(name) for name in names}
        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._publish_labels()

        # warm-up at the camera's real size: each new frame size before its first frame (on
        # the worker, in Pipeline.process); at start-up too when input_size fixes the size
        self.pipeline.warm_new_sizes = self._values["warmup"]
        fixed = self._values["input_size"]
        warmup = partial(self.pipeline.warmup, *fixed) if self._values["warmup"] and all(fixed) \
            else None
        self._worker = Worker(self._slots, self._process, self._on_worker_crash, first=warmup)
        self._worker.start()  # after the warm-up, which runs on the worker's thread

        self._update_input_qos()
        for cam in self._cameras.values():
            cam.info_sub = self.create_subscription(
                CameraInfo,
                camera_topic(INFO_INPUT, cam.name),
                partial(self._on_camera_info, cam),
                input_qos(BEST_EFFORT, self._values["qos.depth"]),
            )
        self._diag_timer = self.create_timer(self._values["diagnostics_period"], self._on_timer)
        self.get_logger().info(self._summary())

    # ----------------------------------------------------------------- set-up
    def _declare_parameters(self) -> dict[str, Any]:
        """Declare every parameter, then check the whole set (relations between values can
        only be judged once all of them are known)."""
        declared = self.declare_parameters(
            "", [(s.name, _ros_default(s), descriptor(s)) for s in SPECS]
        )
        values = {
            p.name: BY_NAME[p.name].default if p.value is None else _plain(p.value)
            for p in declared
        }
        reason = check_update(values, {})
        if reason:
            raise StartupError(f"invalid parameters: {reason}")
        return values

    def _load_pipeline(self) -> Pipeline:
        threads = self._values["num_threads"]
        if threads:
            import torch

            torch.set_num_threads(threads)
        return Pipeline(**pipeline_kwargs(self._values))

    def _make_camera(self, name: str) -> _Camera:
        """Publishers of one camera's outputs (~/<name>/...; ~/... for the unnamed one)."""
        out_qos = output_qos()
        pubs = {
            output: self.create_publisher(
                PointCloud2 if output == "points" else Image,
                camera_topic(OUTPUT_TOPICS[output], name),
                out_qos,
            )
            for output in self._available
        }
        info_pub = (
            self.create_publisher(CameraInfo, camera_topic(DEPTH_INFO_TOPIC, name), out_qos)
            if self.pipeline.has_depth
            else None
        )
        base = self.resolve_topic_name(camera_topic(IMAGE_INPUT, name))
        return _Camera(name, base + "/compressed" if self._compressed else base, pubs, info_pub)

    def _publish_labels(self) -> None:
        if not self.pipeline.has_segmentation:
            self._labels_pub = None
            return
        self._labels_pub = self.create_publisher(String, LABELS_TOPIC, latched_qos())
        labels = {str(k): v for k, v in sorted(self.pipeline.labels.items())}
        self._labels_pub.publish(String(data=json.dumps(labels)))

    def _summary(self) -> str:
        p = self.pipeline
        models = ", ".join(
            f"{slot}={self._values[slot]}"
            for slot in ("depth_model", "segmentation_model")
            if self._values[slot]
        )
        kind = "metric" if p.model_is_metric else "relative"
        depth = f"; depth is {kind}" if p.has_depth else ""
        inputs = ", ".join(f"{c.image_topic} ({c.reliability})" for c in self._cameras.values())
        return (
            f"ready: {models} on {p.device} ({self._values['dtype']}){depth}; input "
            f"{inputs}; outputs {sorted(self._available)}"
        )

    # ------------------------------------------------------------- parameters
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        updates = {p.name: _plain(p.value) for p in params if p.name in BY_NAME}
        reason = check_update(updates, self._values)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        self._values.update(updates)
        self.pipeline.settings = pipeline_settings(self._values)
        self._forced = forced_outputs(self._values)
        self._slots.batch_wait = self._values["batch_wait_ms"] / 1000.0
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ input
    def _update_input_qos(self) -> None:
        for cam in self._cameras.values():
            self._update_camera_qos(cam)

    def _update_camera_qos(self, cam: _Camera) -> None:
        """(Re)subscribe when the reliability we should use differs from the one we have."""
        publishers = self.get_publishers_info_by_topic(cam.image_topic)
        want = choose_reliability(
            self._values["qos.reliability"],
            [reliability_name(p.qos_profile.reliability) for p in publishers],
            cam.reliability,
        )
        if want == cam.reliability and cam.image_sub is not None:
            return
        if cam.image_sub is not None:
            self.destroy_subscription(cam.image_sub)
        msg_type = CompressedImage if self._compressed else Image
        cam.image_sub = self.create_subscription(
            msg_type,
            cam.image_topic,
            partial(self._on_image, cam.name),
            input_qos(want, self._values["qos.depth"]),
        )
        if cam.reliability is not None:
            self.get_logger().info(f"input QoS of {cam.image_topic} is now {want}")
        cam.reliability = want

    def _on_image(self, camera: str, msg: Image | CompressedImage) -> None:
        """Never blocks: hand the newest frame to the worker, count the one it replaces."""
        self.stats.on_received(camera)
        if self._slots.put(camera, (msg, time.monotonic())):
            self.stats.on_dropped(camera=camera)

    def _on_camera_info(self, cam: _Camera, msg: CameraInfo) -> None:
        cam.infos[msg.header.frame_id] = msg

    def _intrinsics_for(self, cam: _Camera, frame_id: str, width: int, height: int) -> Intrinsics:
        info = cam.infos.get(frame_id)
        if info is None:
            if (cam.name, frame_id) not in self._warned_frames:
                self._warned_frames.add((cam.name, frame_id))
                self.get_logger().warning(
                    f"no camera_info for frame '{frame_id}' yet: using intrinsics from "
                    "camera.focal_length / camera.hfov"
                )
            return fallback_intrinsics(
                self._values["camera.focal_length"], self._values["camera.hfov"], width, height
            )
        return validate_intrinsics(messages.intrinsics_from_camera_info(info), width, height)

    # ----------------------------------------------------------------- worker
    def _wanted(self, cam: _Camera) -> set[str]:
        subscribed = [n for n, pub in cam.pubs.items() if pub.get_subscription_count() > 0]
        return wanted_outputs(
            self._available, subscribed, self._forced, self.pipeline.depth_is_metric
        )

    def _frame(self, cam: _Camera, msg: Image | CompressedImage) -> Frame | None:
        """The decoded frame with its intrinsics; None (counted, logged) when it is bad."""
        if not msg.header.frame_id and not self._warned_empty_frame:
            self._warned_empty_frame = True
            self.get_logger().warning(
                "input images have an empty frame_id: outputs (and ~/points) cannot be "
                "placed in TF; fix the camera driver's frame_id"
            )
        try:
            if self._compressed:
                rgb = messages.rgb_from_compressed_msg(msg)
            else:
                rgb = messages.rgb_from_image_msg(msg)
            intr = self._intrinsics_for(cam, msg.header.frame_id, rgb.shape[1], rgb.shape[0])
        except BadInput as exc:
            self._reject(exc.kind, str(exc))
            return None
        return Frame(rgb, intr)

    def _process(self, items: dict[str, tuple[Any, float]]) -> None:
        """One `Pipeline.process` call for the newest frame of every camera that has one and
        whose outputs somebody wants; each result goes out under its camera's topics."""
        jobs = []
        for name, (msg, received) in items.items():
            cam = self._cameras[name]
            want = self._wanted(cam)
            frame = self._frame(cam, msg) if want else None
            if frame is not None:
                jobs.append(_Job(cam, want, msg.header, frame, received))
        if not jobs:
            return
        try:
            results = self.pipeline.process(
                [job.frame for job in jobs], set().union(*(job.want for job in jobs))
            )
        except Exception as exc:  # a failing batch (e.g. out of memory) must not stop the node
            for _ in jobs:
                self._reject("processing", f"{type(exc).__name__}: {exc}", error=True)
            return
        self.stats.on_batch(len(jobs))
        for job, result in zip(jobs, results):
            self._publish(job.camera, result, job.header, job.want)
            self.stats.on_processed(time.monotonic() - job.received, job.camera.name)

    def _publish(self, cam: _Camera, result: FrameResult, header, want: set[str]) -> None:
        if self._slots.closed:  # shutting down: the context may already be gone
            return
        sent_depth_image = False
        serialized = self._values["serialized_publish"]
        for name, pub in cam.pubs.items():
            value = getattr(result, name)
            if value is None or name not in want:  # another camera of the batch wanted it
                continue
            if name == "points":
                send_cloud(pub, value, header, serialized)
                continue
            send_image(pub, value, image_encoding(name, value), header, serialized)
            sent_depth_image |= name in DEPTH_IMAGES
        if cam.info_pub is not None and result.intrinsics is not None and sent_depth_image:
            cam.info_pub.publish(messages.camera_info_msg(result.intrinsics, header))

    def _reject(self, kind: str, why: str, error: bool = False) -> None:
        self.stats.on_error(kind)
        if self._throttle.ready(kind):
            log = self.get_logger().error if error else self.get_logger().warning
            log(f"skipped a frame ({kind}): {why}")

    def _on_worker_crash(self, exc: BaseException) -> None:
        self._reject("internal", f"{type(exc).__name__}: {exc}", error=True)

    # ------------------------------------------------------------ diagnostics
    def _on_timer(self) -> None:
        self._update_input_qos()
        p = self.pipeline
        info = {
            "depth_model": self._values["depth_model"],
            "segmentation_model": self._values["segmentation_model"],
            "device": str(p.device),
            "dtype": self._values["dtype"],
            "compile": p.compile_status,
            "nonfinite_frames": str(p.nonfinite_frames),  # recomputed in fp32 (half dtypes)
            "depth_metric": str(p.depth_is_metric).lower(),
        }
        for cam in self._cameras.values():
            prefix = f"{cam.name}." if cam.name else ""
            info[prefix + "input_topic"] = cam.image_topic
            info[prefix + "input_reliability"] = str(cam.reliability)
        snap = self.stats.snapshot()
        self._diag_pub.publish(
            diagnostic_array(
                snap, f"{self.get_name()}: processing", str(p.device), info,
                self.get_clock().now().to_msg(),
            )
        )

    def close(self) -> None:
        """Stop the worker before the node goes away (it publishes through this node)."""
        self._worker.stop()


def main(args: list[str] | None = None) -> int:
    """Entry point of the `dpt_node` console script and `python -m dpt_ros.ros.node`."""
    try:
        rclpy.init(args=args)
        node = DptNode()
    except Exception as exc:  # one clear line, not a traceback, for any start-up failure
        reason = " ".join(str(exc).split()) or type(exc).__name__
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {reason}")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
