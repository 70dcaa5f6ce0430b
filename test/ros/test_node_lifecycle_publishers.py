"""dpt_lifecycle_node's outputs are lifecycle publishers (issue 19): nothing goes out while
inactive — not even through the serialized fast path, which bypasses rclpy's publish — and
the latched labels message is sent on activation, not during configure."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _node_util import domain_id

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from rclpy.lifecycle import LifecyclePublisher, TransitionCallbackReturn  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402


def _spin_until(executor, cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return cond()


def test_lifecycle_publishers_silent_while_inactive_labels_on_activation(checkpoints):
    from dpt_ros.ros import serialized
    from dpt_ros.ros.lifecycle_node import DptLifecycleNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id(__name__), args=[
        "--ros-args", "-p", f"depth_model:={checkpoints['metric']}",
        "-p", f"segmentation_model:={checkpoints['segmentation']}", "-p", "device:=cpu"])
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    try:
        node = DptLifecycleNode(context=context)
        peer = rclpy.create_node("lifecycle_pub_peer", context=context)
        executor.add_node(node)
        executor.add_node(peer)
        labels, depth = [], []
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        peer.create_subscription(String, "/dpt_node/segmentation/labels", labels.append,
                                 latched)
        peer.create_subscription(Image, "/dpt_node/depth/image", depth.append,
                                 QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        pubs = node.rt.outputs[""].pubs
        assert all(isinstance(p, LifecyclePublisher) for p in pubs.values())
        assert isinstance(node.rt.labels_pub, LifecyclePublisher)
        assert _spin_until(executor, lambda: pubs["depth"].get_subscription_count() > 0, 10)
        # inactive: no labels (latched, so a late arrival would still show), and a depth
        # image sent through either publish path does not go out
        header = Header(frame_id="cam")
        image = np.zeros((4, 5), np.float32)
        for fast in (True, False):
            serialized.send_image(pubs["depth"], image, "32FC1", header, fast)
        assert not _spin_until(executor, lambda: labels or depth, 1.0)
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert _spin_until(executor, lambda: labels, 10.0), "no labels on activation"
        serialized.send_image(pubs["depth"], image, "32FC1", header, True)
        assert _spin_until(executor, lambda: depth, 10.0)  # active: it goes out
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        depth.clear()
        serialized.send_image(pubs["depth"], image, "32FC1", header, True)
        assert not _spin_until(executor, lambda: depth, 1.0)
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        node.destroy_node()
        peer.destroy_node()
    finally:
        executor.shutdown()
        context.try_shutdown()
