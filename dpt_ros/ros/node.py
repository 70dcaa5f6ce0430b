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
from dpt_ros.core.camera_info import camera_for_image, stamp_ns, stamp_text
from dpt_ros.core.errors import BadInput
from dpt_ros.core.geometry import Intrinsics
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
    decode_options,
    forced_outputs,
    pipeline_kwargs,
    pipeline_settings,
)
from dpt_ros.core.pipeline import Frame, FrameResult, Pipeline
from dpt_ros.core.sync import CameraSync, SyncResult
from dpt_ros.ros.diagnostics import Limits, Stats, Throttle, WorkerState, diagnostic_array
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
    """One input camera: its topics, subscriptions, publishers and image ↔ camera_info
    pairing. `name` is "" for the single-camera node (plain topic names)."""

    name: str
    image_topic: str
    info_topic: str
    pubs: dict[str, Publisher]
    info_pub: Publisher | None
    sync: CameraSync[tuple[Any, float]]
    image_sub: Subscription | None = None
    info_sub: Subscription | None = None
    reliability: str | None = None
    # True while intrinsics come from parameters (camera.use_parameters, or no publisher on
    # the camera_info topic); diagnostics show it
    parameter_intrinsics: bool = False
    logged: set[str] = field(default_factory=set)  # one-time log lines already written


class _Job(NamedTuple):
    """One camera's frame in a batch."""

    camera: _Camera
    want: set[str]
    header: Any
    frame: Frame
    received: float
    info: CameraInfo | None  # the input's camera_info (None: parameter intrinsics)


class DptNode(Node):
    """The ROS face of `Pipeline`; see docs/ros_node.md for topics, parameters and QoS."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._values = self._declare_parameters()
        names = self._values["cameras"] or [""]
        self._slots: LatestSlots[tuple[Any, CameraInfo | None, float]] = LatestSlots(
            names, self._values["batch_wait_ms"] / 1000.0
        )
        self.pipeline = self._load_pipeline()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._forced = forced_outputs(self._values)
        self._compressed = self._values["input_transport"] == "compressed"
        self._decode = decode_options(self._values)

        self.stats = Stats(cameras=names)
        self._throttle = Throttle(period=5.0)
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
                cam.info_topic,
                partial(self._on_camera_info, cam),
                input_qos(BEST_EFFORT, self._values["qos.depth"]),
            )
        timeout = self._values["sync.timeout_ms"] / 1000.0
        self._sync_timer = self.create_timer(min(0.05, timeout / 4), self._on_sync_timer)
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
        v = self._values
        sync: CameraSync[tuple[Any, float]] = CameraSync(
            v["sync.mode"], v["sync.slop_ms"] / 1000.0, v["sync.timeout_ms"] / 1000.0,
            pending=max(2, v["qos.depth"]),
        )
        return _Camera(
            name,
            base + "/compressed" if self._compressed else base,
            self.resolve_topic_name(camera_topic(INFO_INPUT, name)),
            pubs,
            info_pub,
            sync,
            parameter_intrinsics=v["camera.use_parameters"],
        )

    def _publish_labels(self) -> None:
        if not self.pipeline.has_segmentation:
            self._labels_pub = None
            return
        self._labels_pub = self.create_publisher(String, LABELS_TOPIC, latched_qos())
        labels = {str(k): v for k, v in sorted(self.pipeline.labels.items())}
        self._labels_pub.publish(String(data=json.dumps(labels)))

    def _summary(self) -> str:
        p = self.pipeline
        models = ", ".join(  # which directory / Hub commit each model came from
            f"{task}_model={origin.describe()}" for task, origin in p.model_sources.items()
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
        self._decode = decode_options(self._values)
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
            partial(self._on_image, cam),
            input_qos(want, self._values["qos.depth"]),
        )
        if cam.reliability is not None:
            self.get_logger().info(f"input QoS of {cam.image_topic} is now {want}")
        cam.reliability = want

    def _on_image(self, cam: _Camera, msg: Image | CompressedImage) -> None:
        """Never blocks: pair the image with its camera_info (or let it wait for it), and
        hand the newest paired frame to the worker."""
        self.stats.on_received(cam.name)
        now = time.monotonic()
        if cam.parameter_intrinsics and not self._info_publisher_appeared(cam):
            self._queue(cam, msg, None, now)
            return
        result = cam.sync.add_image(stamp_ns(msg.header), msg.header.frame_id, (msg, now), now)
        self._on_sync(cam, result)

    def _on_camera_info(self, cam: _Camera, msg: CameraInfo) -> None:
        self._on_sync(cam, cam.sync.add_info(stamp_ns(msg.header), msg.header.frame_id, msg))

    def _on_sync(self, cam: _Camera, result: SyncResult[tuple[Any, float]]) -> None:
        for _ in result.superseded:
            self.stats.on_dropped(camera=cam.name)
        for (msg, received), info in result.paired:
            self._queue(cam, msg, info, received)

    def _queue(self, cam: _Camera, msg: Any, info: CameraInfo | None, received: float) -> None:
        if self._slots.put(cam.name, (msg, info, received)):
            self.stats.on_dropped(camera=cam.name)

    def _on_sync_timer(self) -> None:
        """Images whose camera_info did not come in time: dropped and counted, or — when the
        camera_info topic has no publisher at all — served with parameter intrinsics."""
        now = time.monotonic()
        for cam in self._cameras.values():
            expired = cam.sync.expire(now).expired
            if not expired:
                continue
            if self.count_publishers(cam.info_topic) == 0 and not cam.parameter_intrinsics:
                self._use_parameter_intrinsics(cam)
            if cam.parameter_intrinsics:
                newest = expired[-1].item
                for _ in expired[:-1]:
                    self.stats.on_dropped(camera=cam.name)
                self._queue(cam, newest[0], None, newest[1])
                continue
            for _ in expired:
                self.stats.on_error("no_camera_info")
            if self._throttle.ready(f"no_camera_info/{cam.name}"):
                stamps = ", ".join(stamp_text(w.stamp) for w in expired[-3:])
                self.get_logger().warning(
                    f"skipped {len(expired)} image(s) of {cam.image_topic} (stamps {stamps}): "
                    f"no camera_info on {cam.info_topic} with "
                    + ("the same stamp" if cam.sync.mode == "exact" else
                       f"a stamp within {self._values['sync.slop_ms']:g} ms"
                       if cam.sync.mode == "approximate" else "their frame_id")
                    + f" within {self._values['sync.timeout_ms']:g} ms (sync.mode "
                    f"{cam.sync.mode}); check the driver's stamps, or raise sync.timeout_ms / "
                    "use sync.mode approximate"
                )

    def _use_parameter_intrinsics(self, cam: _Camera) -> None:
        cam.parameter_intrinsics = True
        self.get_logger().warning(
            f"no publisher on {cam.info_topic}: images of {cam.image_topic} are processed "
            "with intrinsics from camera.focal_length / camera.hfov (~/depth/camera_info "
            "carries them); remap camera_info to the camera's topic for real intrinsics"
        )

    def _info_publisher_appeared(self, cam: _Camera) -> bool:
        """In parameter mode because nobody published camera_info: leave it once somebody
        does (never when camera.use_parameters asks for it)."""
        if self._values["camera.use_parameters"] or self.count_publishers(cam.info_topic) == 0:
            return False
        cam.parameter_intrinsics = False
        self.get_logger().info(f"{cam.info_topic} now has a publisher: using its camera_info")
        return True

    def _camera_model(self, cam: _Camera, info: CameraInfo | None, width: int, height: int
                      ) -> Intrinsics:
        """The camera model of one image: from its own camera_info, or from parameters."""
        if info is None:
            return fallback_intrinsics(
                self._values["camera.focal_length"], self._values["camera.hfov"], width, height
            )
        return camera_for_image(info, width, height, self._values["camera.rectified"],
                                cam.image_topic)

    # ----------------------------------------------------------------- worker
    def _wanted(self, cam: _Camera) -> set[str]:
        subscribed = [n for n, pub in cam.pubs.items() if pub.get_subscription_count() > 0]
        return wanted_outputs(
            self._available, subscribed, self._forced, self.pipeline.depth_is_metric
        )

    def _frame(self, cam: _Camera, msg: Image | CompressedImage, info: CameraInfo | None
               ) -> Frame | None:
        """The decoded frame with its camera model; None (counted, logged) when it is bad."""
        if not msg.header.frame_id and not self._warned_empty_frame:
            self._warned_empty_frame = True
            self.get_logger().warning(
                "input images have an empty frame_id: outputs (and ~/points) cannot be "
                "placed in TF; fix the camera driver's frame_id"
            )
        try:
            if self._compressed:
                frame = messages.frame_from_compressed_msg(msg, self._decode)
            else:  # YUV / Bayer stay sensor bytes here: converted on the model's device
                frame = messages.frame_from_image_msg(msg, self._decode)
            height, width = frame.size
            frame.intrinsics = self._camera_model(cam, info, width, height)
        except BadInput as exc:
            self._reject(exc.kind, str(exc))
            return None
        except Exception as exc:  # any other failure costs this camera's frame, not the batch
            self._reject("internal", f"{type(exc).__name__}: {exc}", error=True)
            return None
        intr = frame.intrinsics
        if not intr.supported:
            self._reject(
                "distortion",
                f"{cam.info_topic}: distortion_model '{intr.distortion_model}' with D = "
                f"{list(intr.d)} cannot be inverted (supported: plumb_bob, "
                "rational_polynomial, equidistant); depth is published, ~/points is not",
                error=True,
            )
        return frame

    def _process(self, items: dict[str, tuple[Any, float]]) -> None:
        """One `Pipeline.process` call for the newest frame of every camera that has one and
        whose outputs somebody wants; each result goes out under its camera's topics."""
        jobs = []
        for name, (msg, info, received) in items.items():
            cam = self._cameras[name]
            want = self._wanted(cam)
            frame = self._frame(cam, msg, info) if want else None
            if frame is not None:
                jobs.append(_Job(cam, want, msg.header, frame, received, info))
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
            self._publish(job, result)
            self.stats.on_processed(time.monotonic() - job.received, job.camera.name)

    def _publish(self, job: _Job, result: FrameResult) -> None:
        if self._slots.closed:  # shutting down: the context may already be gone
            return
        cam, header = job.camera, job.header
        sent_depth_image = False
        serialized = self._values["serialized_publish"]
        for name, pub in cam.pubs.items():
            value = getattr(result, name)
            if value is None or name not in job.want:  # another camera of the batch wanted it
                continue
            if name == "points":
                send_cloud(pub, value, header, serialized)
                continue
            send_image(pub, value, image_encoding(name, value), header, serialized)
            sent_depth_image |= name in DEPTH_IMAGES
        if cam.info_pub is None or result.intrinsics is None or not sent_depth_image:
            return
        height, width = job.frame.size
        cam.info_pub.publish(
            messages.depth_camera_info(job.info, result.intrinsics, header, (width, height))
        )

    def _reject(self, kind: str, why: str, error: bool = False) -> None:
        self.stats.on_error(kind)
        if not self._throttle.ready(kind):
            return
        # two call sites on purpose: rclpy fixes a logging call site's severity on its first
        # call and raises ValueError when the same line logs at another one
        if error:
            self.get_logger().error(f"skipped a frame ({kind}): {why}")
        else:
            self.get_logger().warning(f"skipped a frame ({kind}): {why}")

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
            **{f"{task}_model_source": o.describe() for task, o in p.model_sources.items()},
        }
        for cam in self._cameras.values():
            prefix = f"{cam.name}." if cam.name else ""
            info[prefix + "input_topic"] = cam.image_topic
            info[prefix + "input_reliability"] = str(cam.reliability)
            info[prefix + "camera_info_topic"] = cam.info_topic
            info[prefix + "intrinsics"] = (
                "parameters (camera.focal_length / camera.hfov)" if cam.parameter_intrinsics
                else f"camera_info (sync {cam.sync.mode})"
            )
        snap = self.stats.snapshot()
        worker = WorkerState(self._worker.alive, self._worker.busy_s, self._slots.waiting())
        limits = Limits(self._values["diagnostics.stale_s"],
                        self._values["diagnostics.drop_ratio"],
                        self._values["diagnostics.stuck_s"])
        inputs = {cam.name: cam.image_topic for cam in self._cameras.values()}
        self._diag_pub.publish(
            diagnostic_array(
                snap, f"{self.get_name()}: processing", str(p.device), info,
                self.get_clock().now().to_msg(), worker, limits, inputs,
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
