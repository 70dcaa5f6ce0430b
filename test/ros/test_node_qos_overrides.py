"""The standard QoS override parameters (issue 19), black box over real DDS: a parameter
file with `qos_overrides.<topic>.publisher.*` / `.subscription.*` changes the QoS that the
graph shows for the node's output publisher and input subscription; without them, today's
defaults (outputs reliable, the input matching a reliable camera)."""

from __future__ import annotations

import pytest
import yaml
from _node_util import (
    IMAGE_TOPIC,
    SHARED_PARAMS,
    NodeProcess,
    Peer,
    domain_id,
    node_command,
    ros_env,
    wait_ready,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402


@pytest.mark.parametrize("overridden", [True, False], ids=["overrides", "defaults"])
def test_qos_overrides_from_a_yaml_change_what_the_graph_shows(checkpoints, tmp_path,
                                                                overridden):
    overrides = {"/dpt_node/depth/image": {"publisher": {"reliability": "best_effort", "depth": 3}},
                 IMAGE_TOPIC: {"subscription": {"reliability": "best_effort", "depth": 2}}}
    params = {"qos_overrides": overrides} if overridden else {"diagnostics_period": 0.2}
    path = tmp_path / "qos.yaml"
    path.write_text(yaml.safe_dump({"/**/dpt_node": {"ros__parameters": params}}))
    peer = Peer(domain_id(f"qos-overrides-{overridden}"))
    camera = peer.publisher(Image, IMAGE_TOPIC,
                            QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    depth = peer.collect(Image, "/dpt_node/depth/image",
                         QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    cmd = node_command({**SHARED_PARAMS, "depth_model": checkpoints["metric"]},
                       params_file=path)
    proc = NodeProcess(cmd, ros_env(peer.domain), tmp_path / "node.log")
    try:
        wait_ready(peer, proc)
        peer.wait_until(lambda: camera.get_subscription_count() == 1, 20, "the input")
        (pub,) = peer.node.get_publishers_info_by_topic("/dpt_node/depth/image")
        (sub,) = peer.node.get_subscriptions_info_by_topic(IMAGE_TOPIC)
        if overridden:
            assert pub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
            # (history depth is not carried by DDS discovery: not visible in the graph)
            assert sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        else:
            assert pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
            peer.wait_until(lambda: peer.node.get_subscriptions_info_by_topic(IMAGE_TOPIC)[0]
                            .qos_profile.reliability == ReliabilityPolicy.RELIABLE, 10,
                            "the input to match the reliable camera")
        assert depth.sub is not None
    finally:
        code = proc.stop()
        peer.close()
    assert code == 0, proc.log()
