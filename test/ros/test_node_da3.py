"""Black-box dpt_node with a DA3METRIC checkpoint over DDS: ~/depth/image is the pipeline's
metres from the frame's own camera_info (focal / 300, fx != fy), sky pixels NaN there and
absent from ~/points, ~/sky/image mono8 with ~/sky/camera_info beside it."""

from __future__ import annotations

import numpy as np
import pytest
from _family_checkpoints import da3_checkpoint, gradient_image
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

from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

H, W = 240, 320
FX, FY = 300.0, 280.0


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    directory = da3_checkpoint(tmp_path_factory.mktemp("da3_node_ckpt"))
    peer = Peer(domain_id("da3_node"))
    params = {**SHARED_PARAMS, "depth_model": str(directory)}
    try:
        (proc,) = start_nodes([(params, {})], [peer], tmp_path_factory.mktemp("da3_node"))
        yield peer, proc, directory
        assert proc.stop() == 0, proc.log()
    finally:
        peer.close()


def test_metric_depth_sky_and_points(node):
    peer, proc, directory = node
    from dpt_ros.core.camera.geometry import Intrinsics
    from dpt_ros.core.pipeline.frame import Frame
    from dpt_ros.core.pipeline.pipeline import Pipeline

    rgb = gradient_image(H, W)
    stamp = (5, 0)
    image = peer.publisher(Image, "/cam/image_raw")
    info = peer.publisher(CameraInfo, INFO_TOPIC)
    outs = [peer.collect(Image, "/dpt_node/depth/image"),
            peer.collect(Image, "/dpt_node/sky/image"),
            peer.collect(CameraInfo, "/dpt_node/depth/camera_info"),
            peer.collect(PointCloud2, "/dpt_node/points")]
    k = (FX, FY, (W - 1) / 2, (H - 1) / 2)
    depth_msg, sky_msg, info_msg, cloud_msg = send_until(
        [(info, camera_info_msg(*k, W, H, stamp, "cam")),
         (image, image_msg(rgb, "rgb8", stamp, "cam"))], outs, stamp, timeout=60.0)
    assert sky_msg.encoding == "mono8" and info_msg.width == W and info_msg.k[0] == FX
    depth, sky = image_array(depth_msg), image_array(sky_msg)
    expected = Pipeline(depth_model=str(directory), device="cpu").process(
        [Frame(rgb, Intrinsics(*k, W, H))], {"depth", "sky"})[0]
    np.testing.assert_array_equal(sky, expected.sky)
    assert 0 < (sky == 255).mean() < 1
    assert np.isnan(depth[sky == 255]).all()
    np.testing.assert_allclose(depth, expected.depth, rtol=1e-5, equal_nan=True)
    cloud = cloud_array(cloud_msg)  # organised: NaN where there is no return
    assert cloud["z"].shape == (H, W)
    assert np.isnan(cloud["z"][sky == 255]).all()
    np.testing.assert_allclose(cloud["z"], depth, rtol=1e-6, equal_nan=True)
    assert proc.alive()
