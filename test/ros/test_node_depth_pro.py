"""Black-box dpt_node with Depth Pro over DDS. No camera_info publisher: the node uses the
model's estimated focal length (smoothed), publishes it as ~/depth/camera_info, says
ESTIMATED in /diagnostics, and its points follow that focal length (X = (u - cx) Z / f).
Then a camera_info publisher appears: its intrinsics are used from then on."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _family_checkpoints import depth_pro_checkpoint, gradient_image
from _node_util import (
    INFO_TOPIC,
    SHARED_PARAMS,
    Peer,
    camera_info_msg,
    cloud_array,
    domain_id,
    image_array,
    image_msg,
    send_until,
    start_nodes,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

H, W = 240, 320


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    directory = depth_pro_checkpoint(tmp_path_factory.mktemp("depth_pro_node_ckpt"))
    peer = Peer(domain_id("depth_pro_node"))
    params = {**SHARED_PARAMS, "depth_model": str(directory), "sync.timeout_ms": 200.0}
    try:
        (proc,) = start_nodes([(params, {})], [peer], tmp_path_factory.mktemp("dp_node"))
        yield peer, proc, directory
        assert proc.stop() == 0, proc.log()
    finally:
        peer.close()


def _intrinsics_text(diag) -> str:
    for msg in reversed(diag.msgs):
        for status in msg.status:
            for kv in status.values:
                if kv.key.endswith("intrinsics"):
                    return kv.value
    return ""


def test_estimated_focal_then_real_camera_info(node):
    peer, proc, directory = node
    from dpt_ros.core.camera.geometry import Intrinsics
    from dpt_ros.core.pipeline.frame import Frame
    from dpt_ros.core.pipeline.pipeline import Pipeline

    image = peer.publisher(Image, "/cam/image_raw")
    outs = [peer.collect(Image, "/dpt_node/depth/image"),
            peer.collect(CameraInfo, "/dpt_node/depth/camera_info"),
            peer.collect(PointCloud2, "/dpt_node/points")]
    diag = peer.collect(DiagnosticArray, "/diagnostics")
    rgb = gradient_image(H, W)
    depth_msg, info_msg, cloud_msg = send_until(
        [(image, image_msg(rgb, "rgb8", (7, 0), "cam"))], outs, (7, 0), timeout=60.0)
    fx, fy, cx, cy = info_msg.k[0], info_msg.k[4], info_msg.k[2], info_msg.k[5]
    assert fx == pytest.approx(fy) and (cx, cy) == ((W - 1) / 2, (H - 1) / 2)
    assert 0.5 * W / np.tan(np.radians(75) / 2) < fx < 0.5 * W / np.tan(np.radians(45) / 2)
    depth = image_array(depth_msg)
    cloud = cloud_array(cloud_msg)
    u = np.arange(W)[None, :]
    np.testing.assert_allclose(cloud["x"], (u - cx) * depth / fx, rtol=1e-4, atol=1e-5)
    peer.wait_until(lambda: "ESTIMATED" in _intrinsics_text(diag), 10.0, "ESTIMATED diag")
    assert "ESTIMATED" in proc.log()
    # a camera_info publisher appears: its intrinsics from the next paired frame on
    info = peer.publisher(CameraInfo, INFO_TOPIC)
    k = (400.0, 410.0, 150.0, 110.0)
    deadline = time.monotonic() + 60.0
    sec = 100
    while True:  # the node may still pair a frame or two the old way while it notices
        sec += 1
        got = send_until([(info, camera_info_msg(*k, W, H, (sec, 0), "cam")),
                          (image, image_msg(rgb, "rgb8", (sec, 0), "cam"))],
                         outs, (sec, 0), timeout=30.0)
        if list(got[1].k)[:6:2] == [400.0, 150.0, 410.0] or time.monotonic() > deadline:
            break
    depth_msg, info_msg, _ = got
    assert (info_msg.k[0], info_msg.k[4], info_msg.k[2], info_msg.k[5]) == (400.0, 410.0,
                                                                            150.0, 110.0)
    expected = Pipeline(depth_model=str(directory), device="cpu").process(
        [Frame(rgb, Intrinsics(*k, W, H))], {"depth"})[0]
    np.testing.assert_allclose(image_array(depth_msg), expected.depth, rtol=1e-5)
    peer.wait_until(lambda: "camera_info" in _intrinsics_text(diag), 10.0, "camera_info diag")
