"""Lazy subscriptions (issue 19), black box over real DDS: with no subscriber on any output
the camera's publishers see no subscription from the node and /diagnostics says "idle: no
subscribers"; one output subscriber makes frames flow; its departure stops them; a forced
output (`publish.depth`) subscribes without a subscriber."""

from __future__ import annotations

import time

import pytest
from _node_util import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    SHARED_PARAMS,
    NodeProcess,
    Peer,
    camera_info_msg,
    camera_rgb,
    domain_id,
    image_msg,
    node_command,
    ros_env,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

H, W = 48, 64


def _camera_status(msg) -> tuple[int, str]:
    for status in msg.status:
        if ": input " in status.name:
            return status.level[0], status.message
    return -1, ""


def test_inputs_follow_output_subscribers(checkpoints, tmp_path):
    peer = Peer(domain_id("lazy-inputs"))
    params = {**SHARED_PARAMS, "depth_model": checkpoints["metric"]}
    proc = NodeProcess(node_command(params), ros_env(peer.domain), tmp_path / "node.log")
    diags = peer.collect(DiagnosticArray, "/diagnostics")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = peer.publisher(Image, IMAGE_TOPIC, qos)
    info_pub = peer.publisher(CameraInfo, INFO_TOPIC, qos)
    rgb = camera_rgb(H, W)

    def send(sec: int) -> None:
        info_pub.publish(camera_info_msg(60.0, 60.0, 32.0, 24.0, W, H, (sec, 0), "cam"))
        image_pub.publish(image_msg(rgb, "rgb8", (sec, 0), "cam"))

    try:
        peer.wait_until(lambda: "ready:" in proc.log() or not proc.alive(), 60, "ready")
        assert proc.alive(), proc.log()
        # no output subscriber: the camera sees no reader, diagnostics say idle
        time.sleep(1.5)
        assert image_pub.get_subscription_count() == 0
        assert info_pub.get_subscription_count() == 0
        idle = diags.wait_for(lambda m: _camera_status(m) == (0, "idle: no subscribers"), 10)
        assert idle is not None, [_camera_status(m) for m in diags.msgs[-3:]]
        # one subscriber: the node subscribes and frames flow
        depth = peer.collect(Image, "/dpt_node/depth/image")
        peer.wait_until(lambda: image_pub.get_subscription_count() == 1
                        and info_pub.get_subscription_count() == 1, 20, "the node's inputs")
        sec = 100
        deadline = time.monotonic() + 30
        while not depth.msgs and time.monotonic() < deadline:
            send(sec)
            sec += 1
            time.sleep(0.2)
        assert depth.msgs, proc.log()
        # it leaves: the node unsubscribes, frames stop
        peer.node.destroy_subscription(depth.sub)
        peer.wait_until(lambda: image_pub.get_subscription_count() == 0
                        and info_pub.get_subscription_count() == 0, 20, "inputs released")
        assert "input unsubscribed" in proc.log()
        # a forced output: inputs without any subscriber
        assert all(r.successful for r in peer.set_parameters({"publish.depth": True}))
        peer.wait_until(lambda: image_pub.get_subscription_count() == 1, 20, "forced input")
        assert all(r.successful for r in peer.set_parameters({"publish.depth": False}))
        peer.wait_until(lambda: image_pub.get_subscription_count() == 0, 20, "released again")
    finally:
        code = proc.stop()
        peer.close()
    assert code == 0, proc.log()
