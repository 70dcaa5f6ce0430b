"""Black box over real DDS, as `image_transport::CameraSubscriber` resolves topics (issue 19):
for every Image topic the node advertises, the CameraInfo topic is computed the way
image_transport does (`getCameraInfoTopic`: the sibling `camera_info` of the image topic),
and every image arrives with a CameraInfo of the same stamp there. A consumer such as
depth_image_proc therefore needs only the image remapped."""

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
    stamp_of,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

H, W = 48, 64


def camera_info_topic(image_topic: str) -> str:
    """image_transport's rule (image_transport/camera_common.cpp), written out here."""
    return image_topic[:image_topic.rfind("/")] + "/camera_info"


@pytest.mark.parametrize("model", ["metric", "relative"])
def test_every_image_has_its_camera_info_where_image_transport_looks(checkpoints, tmp_path,
                                                                     model):
    peer = Peer(domain_id(f"camera-subscriber-{model}"))
    params = {**SHARED_PARAMS, "depth_model": checkpoints[model],
              "segmentation_model": checkpoints["segmentation"]}
    if model == "relative":
        params["depth.scale"] = 1.0  # depth/image too, besides depth_relative/image
    proc = NodeProcess(node_command(params), ros_env(peer.domain), tmp_path / "node.log")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    try:
        peer.wait_until(lambda: "ready:" in proc.log() or not proc.alive(), 60, "ready")
        assert proc.alive(), proc.log()
        # the node's advertised Image topics, found in the graph as a user would
        def advertised() -> list[str]:
            return sorted(name for name, types in peer.node.get_topic_names_and_types()
                          if name.startswith("/dpt_node/")
                          and "sensor_msgs/msg/Image" in types)

        expected = 5 if model == "metric" else 6
        peer.wait_until(lambda: len(advertised()) >= expected, 20, "the node's images")
        images = advertised()
        assert len(images) == expected, images
        assert all(t.endswith("/image") for t in images), images  # nothing nested under one
        image_subs = {t: peer.collect(Image, t, qos) for t in images}
        info_subs = {t: peer.collect(CameraInfo, camera_info_topic(t), qos) for t in images}
        image_pub = peer.publisher(Image, IMAGE_TOPIC, qos)
        info_pub = peer.publisher(CameraInfo, INFO_TOPIC, qos)
        rgb = camera_rgb(H, W)
        sec, deadline = 50, time.monotonic() + 60
        while time.monotonic() < deadline:
            info_pub.publish(camera_info_msg(60.0, 60.0, 32.0, 24.0, W, H, (sec, 0), "cam"))
            image_pub.publish(image_msg(rgb, "rgb8", (sec, 0), "cam"))
            sec += 1
            time.sleep(0.3)
            if all(c.msgs for c in image_subs.values()) and all(
                    {stamp_of(m) for m in image_subs[t].msgs}
                    <= {stamp_of(m) for m in info_subs[t].msgs} for t in images):
                break
        for t in images:
            got = {stamp_of(m) for m in image_subs[t].msgs}
            infos = {stamp_of(m): m for m in info_subs[t].msgs}
            assert got, f"no image on {t}"
            assert got <= set(infos), (t, got - set(infos))
            image = image_subs[t].msgs[-1]
            info = infos[stamp_of(image)]
            assert info.header.frame_id == image.header.frame_id == "cam"
            assert (info.width, info.height) == (image.width, image.height)
    finally:
        code = proc.stop()
        peer.close()
    assert code == 0, proc.log()
