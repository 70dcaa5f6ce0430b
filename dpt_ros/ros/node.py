"""dpt_node: camera images in; depth, segmentation and point clouds out.

Thin by design: parameters come from `config.params` (declared by `parameters`), each camera's
subscriptions and image ↔ camera_info pairing from `camera_input`, its metric references
(alignment) from `reference_input`, QoS from `qos`, counters and alarms from `diagnostics`,
the queues of one from `worker`, message conversion from `dpt_ros.messages` (and
`serialized`), and all the maths from `core.pipeline.pipeline.Pipeline`.

The node's life has four steps, shared by both executables:
- configure: check the parameters, load the model(s), create the publishers;
- activate: start the worker (warm-up on its thread), subscribe, start the timers;
- deactivate: stop input and output (subscriptions, timers, worker);
- cleanup: destroy the publishers and release the models (and their device memory).
`dpt_node` (`DptNode`) runs configure + activate at start-up; `dpt_lifecycle_node`
(`lifecycle_node.DptLifecycleNode`) is a managed node whose lifecycle services drive them.
Configure builds the one object that owns the runtime (`Runtime`: models, publishers,
inputs, counters); parameters are read through a typed record (`config.params.NodeParams`,
rebuilt on every accepted change; what the pipeline reads is `PipelineSettings`).

Threads. Two threads touch the node. The **executor** (the main thread, `run`'s spin loop)
runs every callback: the lifecycle transitions (`_configure`, `_activate`, `_deactivate`,
`_cleanup`), `_on_set_parameters`, the input subscriptions (`CameraInput`,
`ReferenceInput`: pairing, then `_deliver` into the queue of one), the publisher matched
events (`_update_demand`: lazy inputs), the timers (`_on_sync_timer`, `_on_timer`:
diagnostics and QoS re-checks). The **worker** (`worker.Worker`, one thread) runs
`_process` and what it calls — `_wanted`, `_frame` (decoding), `Pipeline.process` (every
model call, the warm-up), `_publish`, `_reject` — and nothing else. They share only the
queue of one (`LatestSlots`, locked), the counters (`Stats`, locked), the pipeline's
settings (replaced whole by the executor, read once per batch by the worker) and the
publishers (rclpy's publish is thread-safe); the worker is stopped before anything it uses
is destroyed (`_deactivate` before `_cleanup`, `close`).

Why one module of ~630 lines: `DptCore` is one object whose methods are the node's
callbacks, read top-down in the order they run (life cycle, set-up, lazy inputs,
parameters, input, worker, diagnostics), like the ROS 2 demos; its parts with a life of
their own already live beside it (camera_input, reference_input, worker, diagnostics, qos,
serialized, parameters), and `run` keeps the signal handling next to the node it stops.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String

from dpt_ros import messages
from dpt_ros.config.params import (
    BY_NAME,
    NodeParams,
    check_update,
    decode_options,
    forced_outputs,
    image_transport,
    pipeline_kwargs,
    pipeline_settings,
)
from dpt_ros.core.errors import BadInput
from dpt_ros.core.pipeline.outputs import (
    DIAGNOSTICS_TOPIC,
    INFO_TOPICS,
    LABELS_TOPIC,
    OUTPUT_TOPICS,
    available_outputs,
    camera_topic,
    image_encoding,
    wanted_outputs,
)
from dpt_ros.core.pipeline.pipeline import Frame, FrameResult, Pipeline
from dpt_ros.ros.camera_input import CameraInput
from dpt_ros.ros.diagnostics import Limits, Stats, Throttle, WorkerState, diagnostic_array
from dpt_ros.ros.parameters import StartupError, checked, declare_all, plain
from dpt_ros.ros.qos import latched_qos, output_overrides, output_qos
from dpt_ros.ros.reference_input import AlignmentWatch, ReferenceInput, alignment_values
from dpt_ros.ros.serialized import FastPath, rclpy_version, send_cloud, send_image, silent
from dpt_ros.ros.worker import LatestSlots, Worker

NODE_NAME = "dpt_node"


class _Outputs(NamedTuple):
    """One camera's publishers (~/<name>/...; ~/... for the unnamed camera)."""

    pubs: dict[str, Publisher]
    infos: dict[str, Publisher]  # image output -> its sibling camera_info publisher


class _Job(NamedTuple):
    """One camera's frame in a batch."""

    camera: str
    want: set[str]
    header: Any
    frame: Frame
    received: float
    info: CameraInfo | None  # the input's camera_info (None: parameter intrinsics)


@dataclass
class Runtime:
    """Everything `configure` builds and `cleanup` releases, in one place: the models
    (`pipeline`), each camera's output publishers and inputs, the counters and alarms.
    The node holds one while it is configured (`DptCore.rt`), None otherwise."""

    pipeline: Pipeline
    available: list[str]  # outputs the models can produce (each has a publisher)
    outputs: dict[str, _Outputs]  # camera -> its publishers
    inputs: dict[str, CameraInput]  # camera -> image + camera_info inputs
    refs: dict[str, ReferenceInput]  # camera -> metric references (alignment, prompt)
    stats: Stats
    throttle: Throttle
    watch: AlignmentWatch
    diag_pub: Publisher
    labels_pub: Publisher | None


class DptCore:
    """What dpt_node does, for either base class (`Node` or rclpy's `LifecycleNode`)."""

    rt: Runtime | None

    def _declare(self) -> None:
        """Parameters are declared once, before anything else (settable in every state)."""
        self._values = declare_all(self)
        self.params = NodeParams.from_values(self._values)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.rt = None
        self._slots: LatestSlots | None = None
        self._worker: Worker | None = None
        self._timers: list = []
        self._subscribed: set[str] = set()  # cameras whose inputs are subscribed (lazy)
        self._active = False

    @property
    def pipeline(self) -> Pipeline | None:
        """The loaded models (None while unconfigured)."""
        return None if self.rt is None else self.rt.pipeline

    @property
    def stats(self) -> Stats | None:
        return None if self.rt is None else self.rt.stats

    # ------------------------------------------------------------- life cycle
    def _configure(self) -> None:
        """Check the parameters, load the model(s), create publishers and camera inputs
        (the `Runtime`); StartupError / PipelineConfigError say what to change."""
        v = checked(dict(self._values))
        self.params = prm = NodeParams.from_values(v)
        _, deprecated = image_transport(v)
        if deprecated:
            self.get_logger().warning(deprecated)
        if prm.num_threads:
            torch.set_num_threads(prm.num_threads)
        p = Pipeline(**pipeline_kwargs(v))
        self._forced = forced_outputs(v)
        self._decode = decode_options(v)
        self._warned_empty_frame = False
        stats, throttle = Stats(cameras=list(prm.cameras)), Throttle(period=5.0)
        # references only where they are used: alignment on, or a prompt model
        refs = ({name: ReferenceInput(self, name, self._values, self._deliver)
                 for name in prm.cameras} if p.alignment.enabled or p.takes_prompt else {})
        inputs = {name: CameraInput(self, name, self._values, stats, throttle,
                                    refs[name].on_image if name in refs else self._deliver)
                  for name in prm.cameras}
        self._check_fast_path()
        self.rt = Runtime(
            pipeline=p,
            available=available_outputs(p.has_depth, p.has_segmentation, p.model_is_metric,
                                        p.has_sky),
            outputs={}, inputs=inputs, refs=refs, stats=stats, throttle=throttle,
            watch=AlignmentWatch(p.model_is_metric, lambda: p.settings.depth_scale > 0.0),
            diag_pub=self._output_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10,
                                            qos_overriding_options=output_overrides()),
            # latched; sent on activation (nothing goes out before)
            labels_pub=self._output_publisher(String, LABELS_TOPIC, latched_qos(),
                                              qos_overriding_options=output_overrides())
            if p.has_segmentation else None,
        )
        self.rt.outputs.update({name: self._make_outputs(name) for name in prm.cameras})

    def _activate(self) -> None:
        """Worker first (its warm-up runs on its own thread), then input, then timers; when it
        raises, `_deactivate` stops whatever had started."""
        prm, p = self.params, self.rt.pipeline
        self._slots = LatestSlots(list(self.rt.inputs), prm.batch_wait_s)
        # warm-up at the camera's real size: each new frame size before its first frame (on
        # the worker, in Pipeline.process); at start-up too when input_size fixes the size
        p.warm_new_sizes = prm.warmup
        fixed = prm.input_size
        first = (lambda: p.warmup(*fixed)) if prm.warmup and all(fixed) else None
        self._worker = Worker(self._slots, self._process, self._on_worker_crash, first=first)
        self._worker.start()
        self._update_demand()  # inputs only for cameras whose outputs have subscribers
        self._timers = []  # one at a time: a failed activation destroys those made
        for period, callback in ((sync_timer_period(prm.sync_timeout_ms), self._on_sync_timer),
                                 (prm.diagnostics_period, self._on_timer)):
            self._timers.append(self.create_timer(period, callback))
        self._active = True
        if self.rt.labels_pub is not None:  # latched: late subscribers get it too
            labels = {str(k): name for k, name in sorted(p.labels.items())}
            self.rt.labels_pub.publish(String(data=json.dumps(labels)))
        self.get_logger().info(self._summary())

    def _deactivate(self) -> None:
        """No input, no output: subscriptions and timers gone, the worker stopped."""
        self._active = False
        for timer in self._timers:
            self.destroy_timer(timer)
        self._timers = []
        for name in list(self._subscribed):
            self._set_input(name, False)
        if self._worker is not None:
            self._worker.stop()
        self._worker = self._slots = None

    def _cleanup(self) -> None:
        """Publishers destroyed and the models released, with their device memory."""
        for out in self.rt.outputs.values():
            for pub in (*out.pubs.values(), *out.infos.values()):
                self._drop_publisher(pub)
        for pub in (self.rt.diag_pub, self.rt.labels_pub):
            if pub is not None:
                self._drop_publisher(pub)
        device = self.rt.pipeline.device
        self.rt = None  # models, inputs, publishers: all of it goes with the runtime
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    def close(self) -> None:
        """Stop the worker before the node goes away (it publishes through this node)."""
        if self._active:
            self._deactivate()

    # ----------------------------------------------------------------- set-up
    def _output_publisher(self, msg_type: type, topic: str, qos: Any, **kwargs: Any
                          ) -> Publisher:
        """A publisher of an output: a plain one here; the managed node makes lifecycle
        publishers (nothing goes out while it is inactive)."""
        return self.create_publisher(msg_type, topic, qos, **kwargs)

    def _drop_publisher(self, pub: Publisher) -> None:
        self.destroy_publisher(pub)

    def _check_fast_path(self) -> None:
        """`serialized_publish`: prove the rcl fast path on this rclpy once, or say why it
        is not used (`serialized.FastPath`)."""
        if not self.params.serialized_publish or FastPath.enabled:
            return
        reason = FastPath.check(self)
        if reason:
            self.get_logger().warning(f"serialized_publish: publishing through rclpy's "
                                      f"publish(bytes), not rcl directly: {reason}")
        else:
            self.get_logger().info(f"serialized_publish: rcl fast path checked on rclpy "
                                   f"{rclpy_version()} (one message round-tripped)")

    def _make_outputs(self, name: str) -> _Outputs:
        """One camera's output publishers; each (un)matched subscriber re-decides whether
        its inputs are subscribed (`_update_demand`)."""
        qos = output_qos()

        def publisher(msg_type: type, topic: str) -> Publisher:
            events = PublisherEventCallbacks(matched=lambda _status: self._update_demand())
            return self._output_publisher(msg_type, camera_topic(topic, name), qos,
                                          event_callbacks=events,
                                          qos_overriding_options=output_overrides())

        pubs = {output: publisher(PointCloud2 if output == "points" else Image,
                                  OUTPUT_TOPICS[output])
                for output in self.rt.available}
        infos = {output: publisher(CameraInfo, INFO_TOPICS[output])
                 for output in self.rt.available if output in INFO_TOPICS}
        return _Outputs(pubs, infos)

    # --------------------------------------------------------- lazy inputs
    def _demanded(self, name: str) -> bool:
        """Camera `name`'s frames are wanted: an output is forced, or one of its output
        topics has a subscriber."""
        out = self.rt.outputs[name]
        return bool(self._forced) or any(
            pub.get_subscription_count() > 0
            for pub in (*out.pubs.values(), *out.infos.values()))

    def _update_demand(self) -> None:
        """Subscribe a camera's inputs (image, camera_info, references) when the first
        subscriber of its outputs matches, unsubscribe when the last one leaves, as
        image_pipeline's nodes do: no subscriber, no cost (and the camera sees no reader).
        Runs on the executor (publisher matched events, parameter changes, activation)."""
        if not self._active and self._worker is None:
            return
        for name in self.rt.outputs:
            want = self._demanded(name)
            if want != (name in self._subscribed):
                self._set_input(name, want)

    def _set_input(self, name: str, on: bool) -> None:
        cams = [self.rt.inputs[name], *([self.rt.refs[name]] if name in self.rt.refs else [])]
        for cam in cams:
            cam.subscribe() if on else cam.unsubscribe()
        if on:
            self._subscribed.add(name)
        else:
            self._subscribed.discard(name)
        if self._active:  # not at activation / deactivation (they log for themselves)
            what = "a subscriber" if on else "no subscriber left"
            self.get_logger().info(
                f"{what} on the outputs of {self.rt.inputs[name].image_topic}: input "
                f"{'subscribed' if on else 'unsubscribed'}")

    def _summary(self) -> str:
        p = self.rt.pipeline
        models = ", ".join(  # which directory / Hub commit each model came from
            f"{task}_model={origin.describe()}" for task, origin in p.model_sources.items()
        )
        kind = "metric" if p.model_is_metric else "relative"
        if p.takes_prompt:
            kind = "metric with a prompt (depth_reference / points_reference)"
        if p.uses_focal:
            kind += " from each frame's focal length"
        if p.has_fov:
            kind += (" (its own ESTIMATED field of view for a camera without camera_info: "
                     "camera.estimate_intrinsics)")
        if p.alignment.enabled:
            kind += (f", aligned ({p.alignment.mode}) to depth_reference / points_reference"
                     + ("" if p.model_is_metric or p.depth_is_metric
                        else ": no ~/depth/image, ~/points until a reference fits"))
        depth = f"; depth is {kind}" if p.has_depth else ""
        inputs = ", ".join(f"{c.image_topic} ({c.reliability})" for c in self.rt.inputs.values())
        if self.rt.refs:
            inputs += "; references " + ", ".join(
                topic for ref in self.rt.refs.values() for topic in ref.topics.values())
        return (
            f"ready: {models} on {p.device} ({self.params.dtype}){depth}; input "
            f"{inputs}; outputs {sorted(self.rt.available)}"
        )

    # ------------------------------------------------------------- parameters
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        updates = {p.name: plain(p.value, p.name) for p in params if p.name in BY_NAME}
        reason = check_update(updates, self._values)
        settings = None
        if not reason and self.rt is not None:  # configured: judged against its models
            settings = pipeline_settings({**self._values, **updates})
            reason = self.rt.pipeline.check_settings(settings)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        self._values.update(updates)
        self.params = NodeParams.from_values(self._values)
        if settings is not None:  # configured: apply what can change at run time
            self.rt.pipeline.settings = settings
            self._forced = forced_outputs(self._values)
            self._decode = decode_options(self._values)
        if self._slots is not None:
            self._slots.batch_wait = self.params.batch_wait_s
        if any(name.startswith("publish.") for name in updates):
            self._update_demand()  # a forced output makes frames flow without subscribers
        if updates.get("serialized_publish") and self.rt is not None:
            self._check_fast_path()  # turned on at run time: proven before it is used
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ input
    def _deliver(self, camera: str, msg: Any, info: CameraInfo | None, received: float,
                 refs: dict | None = None) -> None:
        """A paired image (with its reference messages, when aligning) into its camera's
        queue of one (the one it replaces is dropped)."""
        if self._slots is not None and self._slots.put(camera, (msg, info, received, refs)):
            self.rt.stats.on_dropped(camera=camera)

    def _on_sync_timer(self) -> None:
        now = time.monotonic()
        for cam in (*self.rt.inputs.values(), *self.rt.refs.values()):
            cam.expire(now)

    # ----------------------------------------------------------------- worker
    def _wanted(self, camera: str) -> set[str]:
        pubs = self.rt.outputs[camera].pubs
        subscribed = [n for n, pub in pubs.items() if pub.get_subscription_count() > 0]
        return wanted_outputs(
            self.rt.available, subscribed, self._forced, self.rt.pipeline.depth_may_be_metric
        )

    def _frame(self, cam: CameraInput, msg: Image | CompressedImage, info: CameraInfo | None,
               refs: dict | None) -> Frame | None:
        """The decoded frame with its camera model; None (counted, logged) when it is bad."""
        if not msg.header.frame_id and not self._warned_empty_frame:
            self._warned_empty_frame = True
            self.get_logger().warning(
                "input images have an empty frame_id: outputs (and ~/points) cannot be "
                "placed in TF; fix the camera driver's frame_id"
            )
        try:
            frame = messages.decode_frame(
                msg, self._decode, lambda width, height: cam.camera_model(info, width, height))
        except BadInput as exc:
            self._reject(exc.kind, str(exc), camera=cam.name)
            return None
        except Exception as exc:  # any other failure costs this camera's frame, not the batch
            self._reject("internal", f"{type(exc).__name__}: {exc}", error=True,
                         camera=cam.name)
            return None
        frame.camera = cam.name
        if refs:
            try:
                frame.reference = self.rt.refs[cam.name].reference(
                    refs, msg.header.frame_id, self._decode.max_pixels)
            except BadInput as exc:  # the frame goes on without its reference
                self._reject(exc.kind, str(exc), camera=cam.name, what="ignored a reference")
        lens = messages.unsupported_lens(frame.intrinsics, cam.info_topic)
        if lens:  # counted (errors.distortion) and logged, but the frame goes on
            self._reject("distortion", f"{lens}; depth is published, ~/points is not",
                         error=True, camera=cam.name, what="no ~/points")
        return frame

    def _process(self, items: dict[str, tuple[Any, CameraInfo | None, float, dict | None]]
                 ) -> None:
        """One `Pipeline.process` call for the newest frame of every camera that has one and
        whose outputs somebody wants; each result goes out under its camera's topics."""
        jobs = []
        for name, (msg, info, received, refs) in items.items():
            want = self._wanted(name)
            frame = self._frame(self.rt.inputs[name], msg, info, refs) if want else None
            if frame is not None:
                jobs.append(_Job(name, want, msg.header, frame, received, info))
        if not jobs:
            return
        try:
            results = self.rt.pipeline.process(
                [job.frame for job in jobs], set().union(*(job.want for job in jobs))
            )
        except Exception as exc:  # a failing batch (e.g. out of memory) must not stop the node
            for job in jobs:
                self._reject("processing", f"{type(exc).__name__}: {exc}", error=True,
                             camera=job.camera)
            return
        self.rt.stats.on_batch(len(jobs))
        for job, result in zip(jobs, results):
            self._publish(job, result)
            self.rt.stats.on_processed(time.monotonic() - job.received, job.camera)

    def _publish(self, job: _Job, result: FrameResult) -> None:
        if not self._active:  # deactivating or shutting down: output has stopped
            return
        said = self.rt.watch.update(job.camera, result.alignment)
        if said:
            self.get_logger().info(said)
        out, header = self.rt.outputs[job.camera], job.header
        serialized = self.params.serialized_publish
        info = None  # the CameraInfo of this frame's output images, built once
        for name, pub in out.pubs.items():
            value = getattr(result, name)
            if value is None or name not in job.want:  # another camera of the batch wanted it
                continue
            if name == "points":
                send_cloud(pub, value, header, serialized)
                continue
            send_image(pub, value, image_encoding(name, value), header, serialized)
            if result.intrinsics is None or silent(out.infos[name]):
                continue
            if info is None:  # every image's sibling camera_info: same header, same camera
                height, width = job.frame.size
                info = messages.depth_camera_info(job.info, result.intrinsics, header,
                                                  (width, height))
            out.infos[name].publish(info)

    def _reject(self, kind: str, why: str, error: bool = False, camera: str | None = None,
                what: str = "skipped a frame") -> None:
        self.rt.stats.on_error(kind, camera=camera)
        if not self.rt.throttle.ready(kind):
            return
        # two call sites on purpose: rclpy fixes a logging call site's severity on its first
        # call and raises ValueError when the same line logs at another one
        if error:
            self.get_logger().error(f"{what} ({kind}): {why}")
        else:
            self.get_logger().warning(f"{what} ({kind}): {why}")

    def _on_worker_crash(self, exc: BaseException) -> None:
        self._reject("internal", f"{type(exc).__name__}: {exc}", error=True)

    # ------------------------------------------------------------ diagnostics
    def _on_timer(self) -> None:
        p, v = self.rt.pipeline, self.params
        info = {
            "depth_model": v.depth_model,
            "segmentation_model": v.segmentation_model,
            "device": str(p.device),
            "dtype": v.dtype,
            "compile": p.compile_status,
            "nonfinite_frames": str(p.nonfinite_frames),  # recomputed in fp32 (half dtypes)
            "publish_path": (("rcl fast path" if FastPath.enabled else
                              f"rclpy publish(bytes): {FastPath.reason}")
                             if v.serialized_publish else "message objects"),
            "depth_metric": depth_metric_text(p),
            **{f"{task}_model_source": o.describe() for task, o in p.model_sources.items()},
        }
        for name in self._subscribed:
            for cam in (self.rt.inputs[name], *([self.rt.refs[name]] if name in self.rt.refs
                                               else [])):
                cam.update_qos()
        for cam in self.rt.inputs.values():
            info.update(cam.diagnostics())
        states = p.alignment_states
        values = {name: {**ref.diagnostics(), **alignment_values(states.get(name))}
                  for name, ref in self.rt.refs.items()} if p.alignment.enabled else {}
        problems = {name: self.rt.watch.problem(states.get(name))
                    for name in values}
        worker = WorkerState(self._worker.alive, self._worker.busy_s, self._slots.waiting())
        limits = Limits(v.stale_s, v.drop_ratio, v.stuck_s)
        inputs = {cam.name: cam.image_topic for cam in self.rt.inputs.values()}
        self.rt.diag_pub.publish(
            diagnostic_array(
                self.rt.stats.snapshot(), f"{self.get_name()}: processing", str(p.device), info,
                self.get_clock().now().to_msg(), worker, limits, inputs, values, problems,
                idle=[name for name in self.rt.inputs if name not in self._subscribed],
            )
        )


def sync_timer_period(timeout_ms: float) -> float:
    """Seconds between checks for images whose camera_info / references are overdue: a
    quarter of `sync.timeout_ms`, at most 50 ms, and at least 5 ms (a tiny timeout must not
    make the executor spin on the timer)."""
    return max(0.005, min(0.05, timeout_ms / 4000.0))


def failure_reason(exc: BaseException) -> str:
    """An exception as one log line: its message with whitespace collapsed, or its type."""
    return " ".join(str(exc).split()) or type(exc).__name__


def depth_metric_text(p: Pipeline) -> str:
    """`depth_metric` in /diagnostics: true (every frame in metres), aligned / prompt (only
    frames with a valid alignment / a prompt: see alignment.valid per camera), false."""
    if p.depth_is_metric:
        return "true"
    if p.takes_prompt:
        return "prompt"
    return "aligned" if p.depth_may_be_metric else "false"


class DptNode(DptCore, Node):
    """dpt_node as a plain node: configured and active from start-up; see
    docs/ros_node.md for topics, parameters, QoS and diagnostics."""

    def __init__(self, **kwargs: Any) -> None:
        Node.__init__(self, NODE_NAME, **kwargs)
        self._declare()
        self._configure()
        self._activate()


class StopRequest:
    """SIGINT / SIGTERM as a flag that the spin loop reads between two `spin_once` calls.

    Why not rclpy's handlers (and Python's KeyboardInterrupt): they interrupt the main
    thread wherever it is, and under load that is often inside the executor, while rclpy
    converts an incoming message (`RuntimeError: Unable to convert call argument '0'`, exit
    code 1) or finishes a task (`'Task' object has no attribute '_exception'`). Setting a
    flag cannot land anywhere: the loop sees it within one spin timeout and the node stops
    in order (worker, subscriptions, node, context), exit code 0. A second signal restores
    the default handlers, so a third ends a stop that hangs (a stuck model call)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> StopRequest:
        for sig in self.SIGNALS:
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # asked twice: the next one acts at once
            for sig in self.SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
        self.received = signum


def run(make: type[DptCore], args: list[str] | None) -> int:
    """Spin one node until SIGINT / SIGTERM (`StopRequest`) or the lifecycle's shutdown
    transition; 0 after an orderly stop, 1 when the node cannot start."""
    stop = StopRequest().install()
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        node = make()
    except Exception as exc:  # one clear line, not a traceback, for any start-up failure
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {failure_reason(exc)}")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while stop.received is None and rclpy.ok() and not getattr(node, "finished", False):
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:  # the context was shut down from elsewhere
        pass
    finally:
        node.close()
        executor.remove_node(node)
        node.destroy_node()
        executor.shutdown(timeout_sec=1.0)
        rclpy.try_shutdown()
    return 0


def main(args: list[str] | None = None) -> int:
    """Entry point of the `dpt_node` console script and `python -m dpt_ros.ros.node`."""
    return run(DptNode, args)


__all__ = ["NODE_NAME", "DptCore", "DptNode", "StartupError", "StopRequest", "failure_reason",
           "main", "run", "sync_timer_period"]

if __name__ == "__main__":
    sys.exit(main())
