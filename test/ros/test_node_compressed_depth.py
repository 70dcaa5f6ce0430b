"""`depth_reference_transport: compressedDepth` over real DDS (issue 19): the node subscribes
to `depth_reference/compressedDepth` (image_transport's name) and pairs those references
with its frames like raw ones."""

from __future__ import annotations

import io
import time

import numpy as np
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
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

H, W = 48, 64


def _compressed_depth(mm: np.ndarray, stamp: tuple[int, int]) -> CompressedImage:
    from PIL import Image as PILImage

    png = io.BytesIO()
    PILImage.fromarray(mm).save(png, format="PNG")
    msg = CompressedImage()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = "cam"
    msg.format = "16UC1; compressedDepth png"
    msg.data = bytes(12) + png.getvalue()  # ConfigHeader (unused for 16UC1), then the png
    return msg


def _camera_values(msg) -> dict[str, str]:
    for status in msg.status:
        if ": input " in status.name:
            return {kv.key: kv.value for kv in status.values}
    return {}


def test_compressed_depth_references_are_paired(checkpoints, tmp_path):
    peer = Peer(domain_id("compressed-depth"))
    params = {**SHARED_PARAMS, "depth_model": checkpoints["relative"],
              "alignment.mode": "scale", "alignment.min_inliers": 10,
              "depth_reference_transport": "compressedDepth"}
    proc = NodeProcess(node_command(params), ros_env(peer.domain), tmp_path / "node.log")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    diags = peer.collect(DiagnosticArray, "/diagnostics")
    peer.collect(Image, "/dpt_node/depth_relative/image", qos)  # inputs are lazy
    image_pub = peer.publisher(Image, IMAGE_TOPIC, qos)
    info_pub = peer.publisher(CameraInfo, INFO_TOPIC, qos)
    ref_pub = peer.publisher(CompressedImage, "/depth_reference/compressedDepth", qos)
    rgb = camera_rgb(H, W)
    mm = np.full((H, W), 1500, np.uint16)
    try:
        peer.wait_until(lambda: "ready:" in proc.log() or not proc.alive(), 60, "ready")
        assert proc.alive(), proc.log()
        peer.wait_until(lambda: ref_pub.get_subscription_count() == 1, 20, "the reference input")
        sec, deadline, paired = 10, time.monotonic() + 40, None
        while time.monotonic() < deadline and paired is None:
            stamp = (sec, 0)
            info_pub.publish(camera_info_msg(60.0, 60.0, 32.0, 24.0, W, H, stamp, "cam"))
            ref_pub.publish(_compressed_depth(mm, stamp))
            image_pub.publish(image_msg(rgb, "rgb8", stamp, "cam"))
            sec += 1
            time.sleep(0.3)
            for m in reversed(diags.msgs[-3:]):
                v = _camera_values(m)
                with_ref = v.get("alignment.frames_with_reference", "")
                if with_ref.startswith("depth ") and not with_ref.startswith("depth 0"):
                    paired = v
        assert paired is not None, (diags.msgs and _camera_values(diags.msgs[-1]), proc.log())
        assert paired["alignment.depth_reference_topic"] == "/depth_reference/compressedDepth"
        assert "errors.reference" not in proc.log()
    finally:
        code = proc.stop()
        peer.close()
    assert code == 0, proc.log()
