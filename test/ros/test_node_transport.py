"""Transport: input QoS matching and the Fast DDS settings of docs/ros_node.md with 1.2 MB
frames, and a 30 Hz camera into a slow model (bounded latency, flat memory, counted drops).

Two nodes: `relative_node` in the default set-up (reliable camera; its 448 x 448 model
input makes it the slow model of the load test) and one with
FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA on both sides and a best-effort camera."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _node_util import (
    IMAGE_TOPIC,
    SHARED_PARAMS,
    Peer,
    camera_rgb,
    diagnostics_values,
    domain_id,
    image_msg,
    send_until,
    start_nodes,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

BIG = 640  # 640 x 640 rgb8 = 1.2 MB
BEST_EFFORT = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
COUNTERS = ("frames_received", "frames_processed", "frames_dropped")


class Setup:
    def __init__(self, peer: Peer, proc, qos: QoSProfile) -> None:
        self.peer, self.proc = peer, proc
        self.image = peer.publisher(Image, IMAGE_TOPIC, qos)
        self.relative = peer.collect(Image, "/dpt_node/depth_relative/image")
        self.diag = peer.collect(DiagnosticArray, "/diagnostics")

    def close(self) -> None:
        self.peer.node.destroy_publisher(self.image)
        for c in (self.relative, self.diag):
            self.peer.node.destroy_subscription(c.sub)

    def values(self, timeout: float = 5.0) -> dict[str, str]:
        """The newest /diagnostics values (waiting for a first one)."""
        self.diag.wait_for(lambda m: bool(diagnostics_values(m)), timeout)
        return diagnostics_values(self.diag.msgs[-1])

    def fresh_values(self, skip: int = 2, timeout: float = 5.0) -> dict[str, str]:
        """Values from a /diagnostics message published `skip` periods from now (so every
        message already received by the node is counted in it)."""
        n = len(self.diag.msgs) + skip
        found = self.diag.wait_for(lambda m: len(self.diag.msgs) >= n, timeout)
        assert found is not None, "no /diagnostics"
        return diagnostics_values(self.diag.msgs[n - 1])

    def wait_value(self, key: str, ok, timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while not ok(self.values().get(key)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{key}={self.values().get(key)}:\n{self.proc.log()}")
            time.sleep(0.05)
        return self.values()

    def burst(self, n: int, rate: float, size: tuple[int, int], first: int) -> list[float]:
        """Publish n frames at `rate` Hz stamped first..first+n-1; returns the send times."""
        frames = [image_msg(camera_rgb(*size, seed=i % 3), "rgb8", (first + i, 0), "cam")
                  for i in range(n)]
        sent = []
        start = time.monotonic()
        for i, msg in enumerate(frames):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            sent.append(time.monotonic())
            self.image.publish(msg)
        return sent


@pytest.fixture(scope="module")
def setups(relative_node, checkpoints, tmp_path_factory):
    env = {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
    peer = Peer(domain_id(__name__), env=env)
    params = {**SHARED_PARAMS, "depth_model": checkpoints["relative"], "warmup": False}
    (proc,) = start_nodes([(params, env)], [peer], tmp_path_factory.mktemp("large_data"))
    setups = {"default": Setup(*relative_node, RELIABLE),
              "large_data": Setup(peer, proc, BEST_EFFORT)}
    yield setups
    setups["default"].close()
    code = proc.stop()
    peer.close()
    assert code == 0, proc.log()


def received_after_burst(s: Setup, n: int, first: int) -> int:
    """Frames of a burst of n at 10 Hz that reach the node's image callback. Nothing is
    subscribed to an output meanwhile, so the node does no work but receiving (lazy)."""
    send_until(  # matched and processing
        [(s.image, image_msg(camera_rgb(BIG, BIG), "rgb8", (first - 1, 0), "cam"))],
        [s.relative], (first - 1, 0), timeout=30.0)
    s.peer.node.destroy_subscription(s.relative.sub)
    time.sleep(0.3)  # let resent copies of the warm-up frame arrive
    before = int(s.fresh_values()["frames_received"])
    s.burst(n, 10.0, (BIG, BIG), first)
    time.sleep(0.3)
    received = int(s.fresh_values()["frames_received"]) - before
    s.relative.sub = s.peer.node.create_subscription(
        Image, "/dpt_node/depth_relative/image", s.relative, RELIABLE)
    return received


def test_auto_qos_follows_a_reliable_camera_and_delivers_every_large_frame(setups):
    s = setups["default"]
    s.wait_value("input_reliability", lambda v: v == "reliable")
    assert received_after_burst(s, 20, 100) == 20


def test_qos_override_at_run_time(setups):
    s = setups["default"]
    assert all(r.successful for r in s.peer.set_parameters({"qos.reliability": "best_effort"}))
    s.wait_value("input_reliability", lambda v: v == "best_effort")
    assert all(r.successful for r in s.peer.set_parameters({"qos.reliability": "auto"}))
    s.wait_value("input_reliability", lambda v: v == "reliable")
    bad = s.peer.set_parameters({"qos.reliability": "sometimes"})
    assert not bad[0].successful and "qos.reliability" in bad[0].reason


def test_large_data_transport_with_a_best_effort_camera(setups):
    """LARGE_DATA on both sides: the node matches the best-effort camera, and a 1.2 MB frame
    (re-sent until it arrives) is received and processed: send_until inside
    received_after_burst fails the test otherwise. How many frames of a plain burst survive
    varies from 0 to a few of 20 on this machine (docs/ros_node.md, Troubleshooting), so that
    count is only printed."""
    s = setups["large_data"]
    s.wait_value("input_reliability", lambda v: v == "best_effort")
    received = received_after_burst(s, 20, 200)
    print(f"LARGE_DATA, best-effort 1.2 MB frames at 10 Hz: {received}/20 received")


def test_30hz_into_a_slow_model_keeps_latency_and_memory_bounded(setups):
    s = setups["default"]
    send_until([(s.image, image_msg(camera_rgb(240, 320), "rgb8", (999, 0), "cam"))],
               [s.relative], (999, 0), timeout=30.0)
    time.sleep(0.3)
    start = {k: int(v) for k, v in s.fresh_values().items() if k in COUNTERS}
    s.relative.clear()
    rss = [s.proc.rss_mb()]
    sent = s.burst(45, 30.0, (240, 320), 1000)  # 1.5 s of warm-up at full rate
    rss.append(s.proc.rss_mb())
    sent += s.burst(75, 30.0, (240, 320), 1045)
    rss.append(s.proc.rss_mb())
    time.sleep(1.0)
    end = {k: int(v) for k, v in s.fresh_values().items() if k in COUNTERS}
    delta = {k: end[k] - start[k] for k in start}

    latency = [t - sent[m.header.stamp.sec - 1000] for m, t in zip(s.relative.msgs,
                                                                  s.relative.times)]
    print(f"30 Hz into a slow model: {delta}, latency ms p50 "
          f"{1e3 * np.median(latency):.0f} max {1e3 * max(latency):.0f}, RSS MB {rss}")
    assert delta["frames_received"] == 120
    assert delta["frames_dropped"] > 0 and 5 <= len(latency) < 120
    # every frame is processed or dropped (one may still be in the worker)
    assert abs(delta["frames_received"] - delta["frames_processed"]
               - delta["frames_dropped"]) <= 1
    # queue of one: latency stays about one inference; a queue would grow it for 4 s
    assert max(latency) < 1.5
    half = len(latency) // 2
    assert np.median(latency[half:]) < 2 * np.median(latency[:half]) + 0.2
    # memory flat under sustained overload: 300 more frames; RSS swings by up to ~55 MB
    # from one sample to the next as the allocators take and give back (measured), so the
    # bound is on the last two samples together: a leak raises both
    for first in (1200, 1300, 1400):
        s.burst(75, 30.0, (240, 320), first)
        rss.append(s.proc.rss_mb())
    print(f"RSS MB after each burst: {[round(r) for r in rss]}")
    assert min(rss[-2:]) - rss[1] < 60.0
