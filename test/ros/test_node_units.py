"""dpt_node's plain-Python logic, without ROS communication: parameter checks, QoS choice,
output selection, the queue of one, diagnostics counters, config files and docs."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import yaml
from _node_util import ROOT

from dpt_ros.config import params
from dpt_ros.config.params_file import load_params_file
from dpt_ros.core.pipeline.outputs import available_outputs, fallback_intrinsics, wanted_outputs
from dpt_ros.core.pipeline.pipeline import OUTPUTS, PipelineSettings
from dpt_ros.ros.diagnostics import Stats, Throttle
from dpt_ros.ros.qos import BEST_EFFORT, RELIABLE, MatchedSubscription, choose_reliability
from dpt_ros.ros.worker import LatestSlots, Worker

CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------ parameters
def test_contract_parameter_names_are_declared():
    for name in ("depth_model", "segmentation_model", "device", "dtype", "image_transport",
                 "depth.scale", "depth.shift", "pointcloud.stride", "pointcloud.min_range",
                 "pointcloud.max_range", "pointcloud.color", "output_resolution"):
        assert name in params.BY_NAME, name
    for name in ("depth_model", "segmentation_model", "device", "dtype", "image_transport",
                 "input_transport"):
        assert params.BY_NAME[name].read_only
    for spec in params.SPECS:
        assert spec.description.strip(), spec.name
        numeric = isinstance(spec.default, int | float | list) and not isinstance(
            spec.default, bool) and spec.default != []  # []: the string array `cameras`
        if numeric:
            assert spec.lo is not None and spec.hi is not None, spec.name


@pytest.mark.parametrize(
    ("updates", "fragment"),
    [
        ({"colormap": "jet"}, "one of turbo, inferno, viridis"),
        ({"pointcloud.stride": 0}, ">= 1"),
        ({"overlay_alpha": 1.5}, "<= 1.0"),
        ({"depth.scale": -1.0}, ">= 0.0"),
        ({"depth.min": 5.0, "depth.max": 2.0}, "must exceed depth.min"),
        ({"depth.min": 1.0}, "must exceed depth.min"),
        ({"percentiles": [90.0, 10.0]}, "below high"),
        ({"percentiles": [10.0]}, "list of 2 floats"),
        ({"pointcloud.min_range": 3.0, "pointcloud.max_range": 1.0}, "must exceed"),
        ({"device": "gpu"}, "auto, cpu, cuda"),
        ({"input_size": [64, 0]}, "both height and width"),
        ({"output_resolution": 3}, "must be a str"),
        ({"pointcloud.color": 1}, "must be a bool"),
        ({"depth.shift": float("nan")}, "NaN"),
    ],
)
def test_bad_updates_are_rejected_with_a_reason(updates, fragment):
    reason = params.check_update(updates, params.DEFAULTS)
    assert reason is not None and fragment in reason


def test_good_updates_pass_and_relations_use_the_merged_view():
    assert params.check_update({"depth.min": 0.5, "depth.max": 4.0}, params.DEFAULTS) is None
    current = {**params.DEFAULTS, "depth.min": 0.5, "depth.max": 4.0}
    assert params.check_update({"depth.max": 0.4}, current) is not None
    assert params.check_update({"depth.max": 6.0}, current) is None
    assert params.check_update({"device": "cuda:1", "colormap": "viridis"}, {}) is None
    assert params.check_update({"depth.shift": 3}, {}) is None  # ints are fine for doubles


def test_parameters_map_onto_pipeline_arguments():
    values = {**params.DEFAULTS, "depth_model": "/m", "depth.scale": 2.0, "depth.shift": 0.1,
              "pointcloud.stride": 4, "pointcloud.max_range": 8.0, "pointcloud.color": False,
              "colormap": "inferno", "percentiles": [5.0, 95.0], "overlay_alpha": 0.25,
              "input_size": [128, 160], "output_resolution": "model"}
    kwargs = params.pipeline_kwargs(values)
    assert kwargs["depth_model"] == "/m" and kwargs["input_size"] == (128, 160)
    s = kwargs["settings"]
    assert s == PipelineSettings(
        depth_scale=2.0, depth_shift=0.1, colormap="inferno", percentiles=(5.0, 95.0),
        output_resolution="model", overlay_alpha=0.25, pointcloud_stride=4,
        pointcloud_max_range=8.0, pointcloud_color=False,
    )
    assert params.pipeline_kwargs(params.DEFAULTS)["input_size"] is None
    assert params.pipeline_settings(values) == s


def test_forced_outputs():
    assert params.forced_outputs(params.DEFAULTS) == set()
    assert params.forced_outputs({"publish.points": True, "publish.overlay": False}) == {"points"}
    assert {f"publish.{o}" for o in OUTPUTS} <= set(params.BY_NAME)


# ---------------------------------------------------------------- config files
def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_files_hold_valid_declared_parameters(path):
    doc = yaml.safe_load(path.read_text())
    key = "/**/dpt_node"  # applies to dpt_node in any namespace
    assert list(doc) == [key] and list(doc[key]) == ["ros__parameters"]
    values = _flatten(doc[key]["ros__parameters"])
    for name, value in values.items():
        assert name in params.BY_NAME, f"{path.name}: {name} is not a dpt_node parameter"
        spec = params.BY_NAME[name]
        assert type(value) is type(spec.default), f"{path.name}: {name} has the wrong ROS type"
    assert params.check_update(values, {}) is None
    assert load_params_file(path) == values  # the offline tool reads the same names
    assert values.get("depth_model") or values.get("segmentation_model")


def test_default_config_lists_every_parameter_with_its_default():
    values = _flatten(yaml.safe_load((ROOT / "config/dpt.yaml").read_text())["/**/dpt_node"][
        "ros__parameters"])
    assert set(values) == set(params.BY_NAME)
    for name, value in values.items():
        if name != "depth_model":
            assert value == params.DEFAULTS[name], name


def test_docs_describe_every_parameter_and_topic():
    text = (ROOT / "docs/ros_node.md").read_text()
    for name in params.BY_NAME:
        assert f"`{name}`" in text, name
    for topic in ("~/depth/image", "~/depth_relative/image", "~/depth_colorized/image",
                  "~/depth/camera_info", "~/segmentation/image", "~/segmentation/camera_info",
                  "~/segmentation_colorized/image", "~/segmentation_overlay/image",
                  "~/segmentation/labels", "~/points", "/diagnostics"):
        assert f"`{topic}`" in text, topic
    assert "FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA" in text and "Troubleshooting" in text


# ---------------------------------------------------------------------- QoS
@pytest.mark.parametrize(
    ("mode", "pubs", "current", "expected"),
    [
        ("auto", [], None, BEST_EFFORT),  # nobody yet: sensor-data QoS, as image_pipeline
        ("auto", [], RELIABLE, RELIABLE),  # publisher went away: keep what matched it
        ("auto", [RELIABLE], BEST_EFFORT, RELIABLE),
        ("auto", [BEST_EFFORT], RELIABLE, BEST_EFFORT),
        ("auto", [RELIABLE, BEST_EFFORT], None, BEST_EFFORT),  # the only one matching both
        ("reliable", [BEST_EFFORT], None, RELIABLE),
        ("best_effort", [RELIABLE], None, BEST_EFFORT),
    ],
)
def test_input_reliability_choice(mode, pubs, current, expected):
    assert choose_reliability(mode, pubs, current) == expected


class _GraphNode:
    """The few rclpy.Node calls MatchedSubscription makes, with publishers set by the test."""

    def __init__(self) -> None:
        from rclpy.qos import ReliabilityPolicy

        self.policy = ReliabilityPolicy
        self.publishers: list = []
        self.subs: list = []  # live subscriptions: (topic, reliability policy, depth)
        self.logged: list[str] = []
        # the standard qos_overrides.<topic>.subscription.* parameters (qos.input_overrides)
        self.params: dict = {}

    def get_publishers_info_by_topic(self, topic: str) -> list:
        class Info:
            def __init__(self, policy) -> None:
                self.qos_profile = type("Q", (), {"reliability": policy})()

        return [Info(policy) for policy in self.publishers]

    def create_subscription(self, msg_type, topic, callback, qos):
        sub = (topic, qos.reliability, qos.depth)
        self.subs.append(sub)
        return sub

    def destroy_subscription(self, sub) -> None:
        self.subs.remove(sub)

    def get_logger(self):
        return type("L", (), {"info": lambda _, text: self.logged.append(text)})()

    def resolve_topic_name(self, name: str) -> str:
        return "/" + name

    def has_parameter(self, name: str) -> bool:
        return name in self.params

    def declare_parameter(self, name: str, value, descriptor=None):
        self.params.setdefault(name, value)

    def get_parameter(self, name: str):
        return type("P", (), {"value": self.params[name]})()


def test_matched_subscription_follows_its_publishers():
    """The image input and the alignment references share it: sensor-data QoS until a
    publisher shows up, its reliability after, one live subscription throughout, the change
    logged; a fixed qos.reliability is kept whatever the publishers use."""
    node = _GraphNode()
    values = {"qos.reliability": "auto", "qos.depth": 3}
    sub = MatchedSubscription(node, object, "/cam/image_raw", lambda msg: None, values)
    assert sub.reliability is None and sub.sub is None
    sub.update()
    assert sub.reliability == BEST_EFFORT
    assert node.subs == [("/cam/image_raw", node.policy.BEST_EFFORT, 3)] and node.logged == []
    first = sub.sub
    sub.update()  # nothing changed: the same subscription
    assert sub.sub is first and len(node.subs) == 1
    node.publishers = [node.policy.RELIABLE]
    sub.update()
    assert sub.reliability == RELIABLE and node.subs == [
        ("/cam/image_raw", node.policy.RELIABLE, 3)]
    assert node.logged == ["input QoS of /cam/image_raw is now reliable"]
    sub.destroy()
    assert node.subs == [] and sub.sub is None and sub.reliability is None
    fixed = MatchedSubscription(node, object, "/depth_reference", lambda msg: None,
                                {"qos.reliability": "best_effort", "qos.depth": 1})
    fixed.update()
    assert fixed.reliability == BEST_EFFORT and node.subs == [
        ("/depth_reference", node.policy.BEST_EFFORT, 1)]


def test_camera_and_reference_inputs_follow_their_publishers():
    """CameraInput's image and camera_info and ReferenceInput's references are such
    subscriptions (issue 19: a best-effort camera_info reader of a reliable camera lost
    camera_infos whenever the node was late)."""
    from dpt_ros.ros.camera_input import CameraInput
    from dpt_ros.ros.reference_input import ReferenceInput

    node = _GraphNode()
    values = dict(params.DEFAULTS)
    cam = CameraInput(node, "", values, Stats(), Throttle(), lambda *args: None)
    refs = ReferenceInput(node, "", values, lambda *args: None)
    cam.subscribe()
    refs.subscribe()
    assert cam.reliability == BEST_EFFORT
    topics = ("/image", "/camera_info", "/depth_reference", "/points_reference")
    assert sorted(node.subs) == sorted((t, node.policy.BEST_EFFORT, 5) for t in topics)
    node.publishers = [node.policy.RELIABLE]  # on every topic of the fake graph
    cam.update_qos()
    refs.update_qos()
    assert cam.reliability == RELIABLE
    assert sorted(node.subs) == sorted((t, node.policy.RELIABLE, 5) for t in topics)
    assert sorted(node.logged) == [f"input QoS of {t} is now reliable" for t in sorted(topics)]
    cam.unsubscribe()
    refs.unsubscribe()
    assert node.subs == [] and cam.reliability is None


def test_sync_timer_period_is_bounded():
    from dpt_ros.ros.node import sync_timer_period

    assert sync_timer_period(200.0) == 0.05  # the default sync.timeout_ms
    assert sync_timer_period(100.0) == 0.025
    assert sync_timer_period(1.0) == 0.005  # not 0.25 ms: the executor would spin on it
    assert sync_timer_period(0.0) == 0.005


def test_failure_reason_is_one_line():
    from dpt_ros.ros.node import failure_reason

    assert failure_reason(RuntimeError("CUDA out of memory.\n  Tried to allocate")) == (
        "CUDA out of memory. Tried to allocate")
    assert failure_reason(KeyError()) == "KeyError"


# ------------------------------------------------------------------ outputs
def test_metric_honesty_and_lazy_selection():
    rel = available_outputs(has_depth=True, has_segmentation=False, model_is_metric=False)
    assert set(rel) == {"depth", "relative", "depth_colorized", "points"}
    met = available_outputs(True, True, model_is_metric=True)
    assert "relative" not in met and {"segmentation", "overlay", "points"} <= set(met)
    assert available_outputs(False, True, False) == ["segmentation", "seg_colorized", "overlay"]

    subscribed = ["depth", "points", "depth_colorized"]
    assert wanted_outputs(rel, subscribed, [], metric=False) == {"depth_colorized"}
    assert wanted_outputs(rel, subscribed, [], metric=True) == set(subscribed)
    assert wanted_outputs(rel, [], ["relative", "overlay"], metric=False) == {"relative"}
    assert wanted_outputs(met, [], [], metric=True) == set()


def test_fallback_intrinsics():
    intr = fallback_intrinsics(0.0, 90.0, 640, 480)
    assert math.isclose(intr.fx, 320.0) and math.isclose(intr.fy, 320.0)
    assert (intr.cx, intr.cy, intr.width, intr.height) == (319.5, 239.5, 640, 480)
    intr = fallback_intrinsics(500.0, 90.0, 64, 48)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (500.0, 500.0, 31.5, 23.5)


# --------------------------------------------------------------- queue of one
def test_latest_slots_keep_only_the_newest_per_key():
    slots: LatestSlots[int] = LatestSlots(["a", "b"])
    assert slots.put("a", 1) is False
    assert slots.put("a", 2) is True  # 1 was never taken: dropped
    assert slots.put("b", 5) is False
    assert slots.take(0.0) == {"a": 2, "b": 5}
    assert slots.take(0.01) is None
    slots.put("a", 3)
    slots.close()
    assert slots.take(0.0) is None


def test_worker_processes_newest_and_survives_errors():
    slot: LatestSlots[int] = LatestSlots([""])
    seen: list[int] = []
    crashes: list[BaseException] = []
    gate = threading.Event()

    def handle(items: dict[str, int]) -> None:
        gate.wait(2.0)
        i = items[""]
        if i == 0:
            raise RuntimeError("boom")
        seen.append(i)

    worker = Worker(slot, handle, crashes.append)
    worker.start()
    slot.put("", 0)
    time.sleep(0.1)  # the worker holds item 0 and waits on the gate
    dropped = sum(slot.put("", i) for i in range(1, 11))
    gate.set()
    deadline = time.monotonic() + 5
    while 10 not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert seen == [10] and dropped == 9
    assert len(crashes) == 1 and str(crashes[0]) == "boom"


def test_worker_survives_a_failing_crash_reporter():
    """A reporter that raises (as rclpy's logger does when one call site logs at two
    severities) must not end the worker: the next item is still handled."""
    slot: LatestSlots[int] = LatestSlots([""])
    seen: list[int] = []

    def handle(items: dict[str, int]) -> None:
        if items[""] == 0:
            raise RuntimeError("bad frame")
        seen.append(items[""])

    def report(exc: BaseException) -> None:
        raise ValueError("Logger severity cannot be changed between calls.")

    worker = Worker(slot, handle, report)
    worker.start()
    slot.put("", 0)
    time.sleep(0.2)
    slot.put("", 1)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert seen == [1]


def test_worker_runs_first_on_its_own_thread_before_any_item():
    """The warm-up and every frame share one thread (CUDA graphs are per thread), and
    start() returns only once the warm-up is done."""
    slot: LatestSlots[int] = LatestSlots([""])
    threads: list[tuple[str, int]] = []

    def first() -> None:
        time.sleep(0.2)
        threads.append(("first", threading.get_ident()))

    def handle(items: dict[str, int]) -> None:
        threads.append(("item", threading.get_ident()))

    worker = Worker(slot, handle, lambda exc: None, first=first)
    worker.start()
    assert threads and threads[0][0] == "first"  # start() waited for it
    slot.put("", 1)
    deadline = time.monotonic() + 5
    while len(threads) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert [kind for kind, _ in threads] == ["first", "item"]
    assert threads[0][1] == threads[1][1] != threading.get_ident()


def test_worker_start_raises_what_first_raised():
    slot: LatestSlots[int] = LatestSlots([""])

    def first() -> None:
        raise RuntimeError("warm-up failed")

    worker = Worker(slot, lambda i: None, lambda exc: None, first=first)
    with pytest.raises(RuntimeError, match="warm-up failed"):
        worker.start()
    assert slot.closed


# ---------------------------------------------------------------- diagnostics
def test_stats_rates_drops_latency_and_errors():
    clock = FakeClock()
    stats = Stats(clock=clock)
    for _ in range(30):
        stats.on_received()
    stats.on_dropped(10)
    for ms in range(1, 21):
        stats.on_processed(ms / 1000.0)
    stats.on_error("step")
    stats.on_error("step")
    stats.on_error("camera_info")
    clock.t += 2.0
    s = stats.snapshot()
    assert (s.received, s.processed, s.dropped) == (30, 20, 10)
    assert math.isclose(s.input_rate, 15.0) and math.isclose(s.processed_rate, 10.0)
    # 1..20 ms: the median lies between 10 and 11; p95 is 95% of the way from 19 to 20
    # (linear interpolation at rank 0.95 * 19 = 18.05).
    assert math.isclose(s.latency_p50_ms, 10.5) and math.isclose(s.latency_p95_ms, 19.05)
    assert s.errors == {"step": 2, "camera_info": 1} and s.new_errors == 3
    clock.t += 1.0
    s2 = stats.snapshot()
    assert s2.input_rate == 0.0 and s2.new_errors == 0 and s2.received == 30


def test_stats_latency_window_forgets_old_frames():
    stats = Stats(window=10, clock=FakeClock())
    for _ in range(50):
        stats.on_processed(1.0)
    for _ in range(10):
        stats.on_processed(0.002)
    assert math.isclose(stats.snapshot().latency_p95_ms, 2.0)
    assert np.isnan(Stats().snapshot().latency_p50_ms)


def test_throttle_per_kind():
    clock = FakeClock()
    t = Throttle(period=5.0, clock=clock)
    assert t.ready("step") and not t.ready("step") and t.ready("encoding")
    clock.t += 5.0
    assert t.ready("step")


def test_ros_descriptors_carry_ranges_and_read_only_flags():
    pytest.importorskip("rclpy")
    from dpt_ros.ros.parameters import descriptor

    stride = descriptor(params.BY_NAME["pointcloud.stride"])
    assert (stride.integer_range[0].from_value, stride.integer_range[0].to_value) == (1, 64)
    alpha = descriptor(params.BY_NAME["overlay_alpha"])
    assert (alpha.floating_point_range[0].from_value, alpha.floating_point_range[0].to_value) \
        == (0.0, 1.0)
    assert "turbo" in descriptor(params.BY_NAME["colormap"]).additional_constraints
    for spec in params.SPECS:
        d = descriptor(spec)
        assert d.description == spec.description and d.read_only == spec.read_only


def test_input_transport_is_the_deprecated_name_of_image_transport():
    """Issue 19: image_transport as image_pipeline's nodes name it; the old name is read for
    one release, with a warning, unless image_transport says otherwise."""
    assert params.image_transport({}) == ("raw", None)
    assert params.image_transport({"image_transport": "compressed"}) == ("compressed", None)
    transport, warning = params.image_transport({"input_transport": "compressed"})
    assert transport == "compressed" and "deprecated" in warning and "image_transport" in warning
    transport, warning = params.image_transport({"input_transport": "raw",
                                                 "image_transport": "compressed"})
    assert transport == "compressed" and "ignored" in warning
    assert "one of" in params.check_value("image_transport", "theora")


def test_input_qos_overrides_force_reliability_and_depth():
    """`qos_overrides.<topic>.subscription.reliability` / `.depth`, the standard names:
    reliable / best_effort force the policy, unset follows the publishers."""
    from dpt_ros.ros.qos import MatchedSubscription

    node = _GraphNode()
    node.params = {"qos_overrides./image.subscription.reliability": "best_effort",
                   "qos_overrides./image.subscription.depth": 2}
    node.publishers = [node.policy.RELIABLE]
    sub = MatchedSubscription(node, object, "/image", lambda m: None, dict(params.DEFAULTS))
    sub.update()
    assert node.subs == [("/image", node.policy.BEST_EFFORT, 2)]
    other = _GraphNode()
    other.params = {}
    other.publishers = [other.policy.RELIABLE]
    sub = MatchedSubscription(other, object, "/image", lambda m: None, dict(params.DEFAULTS))
    sub.update()
    assert other.subs == [("/image", other.policy.RELIABLE, 5)]
    assert other.params["qos_overrides./image.subscription.reliability"] == ""
