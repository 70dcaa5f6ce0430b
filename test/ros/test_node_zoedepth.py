"""dpt_node with a ZoeDepth checkpoint (a real subprocess over real DDS): metric depth on
~/depth equals transformers' processor -> model -> post-processing (reflect padding added and
removed), ~/points back-projects it through the camera_info, and no relative output appears."""

from __future__ import annotations

import numpy as np
import pytest
from _model_util import patch_zoedepth_post_processing, randomize, tiny_zoedepth
from _node_util import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    SHARED_PARAMS,
    Peer,
    backproject,
    camera_info_msg,
    camera_rgb,
    cloud_array,
    domain_id,
    image_array,
    image_msg,
    send_until,
    start_nodes,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")
T = pytest.importorskip("transformers")

from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

H, W = 96, 128
PROCESSOR = dict(size={"height": 64, "width": 96}, ensure_multiple_of=32)


@pytest.fixture(scope="module")
def zoe_node(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoedepth") / "ckpt"
    model = randomize(T.ZoeDepthForDepthEstimation(
        T.ZoeDepthConfig(**tiny_zoedepth(router=True)))).eval()
    model.save_pretrained(str(path))
    T.ZoeDepthImageProcessorPil(**PROCESSOR).save_pretrained(str(path))
    peer = Peer(domain_id("zoedepth"))
    try:
        params = {**SHARED_PARAMS, "depth_model": str(path)}
        (proc,) = start_nodes([(params, {})], [peer], tmp_path_factory.mktemp("zoedepth_log"))
        yield peer, model
        assert proc.stop() == 0, proc.log()
    finally:
        peer.close()


def test_zoedepth_node_publishes_reference_metres_and_points(zoe_node, monkeypatch):
    peer, model = zoe_node
    torch = pytest.importorskip("torch")
    rgb = camera_rgb(H, W, seed=3)
    fx, cx, cy = 90.0, (W - 1) / 2, (H - 1) / 2
    sends = [(peer.publisher(CameraInfo, INFO_TOPIC),
              camera_info_msg(fx, fx, cx, cy, W, H, (5, 0), "cam")),
             (peer.publisher(Image, IMAGE_TOPIC), image_msg(rgb, "rgb8", (5, 0), "cam"))]
    relative = peer.collect(Image, "/dpt_node/depth_relative/image")
    depth_msg, cloud = send_until(sends, [peer.collect(Image, "/dpt_node/depth/image"),
                                          peer.collect(PointCloud2, "/dpt_node/points")], (5, 0))
    depth = image_array(depth_msg)
    assert depth.shape == (H, W) and np.isfinite(depth).all() and depth.min() > 0

    patch_zoedepth_post_processing(monkeypatch)
    proc = T.ZoeDepthImageProcessorPil(**PROCESSOR)
    with torch.no_grad():
        out = model(**proc(images=rgb, return_tensors="pt"))
    want = proc.post_process_depth_estimation(out, source_sizes=[(H, W)])[0]
    want = want["predicted_depth"].numpy()
    assert np.abs(depth - want).max() <= 1e-4 * np.abs(want).max()

    fields = cloud_array(cloud)
    xyz = np.stack([fields["x"], fields["y"], fields["z"]], axis=-1)
    assert np.nanmax(np.abs(xyz - backproject(depth, [fx, 0, cx, 0, fx, cy]))) <= 1e-4
    # Metric model: ~/depth_relative/image is not offered (docs/ros_node.md), i.e. the node creates
    # no publisher for it; its ~/depth publisher, seen in the same graph, shows discovery is done.
    assert peer.node.count_publishers("/dpt_node/depth/image") == 1
    assert peer.node.count_publishers("/dpt_node/depth_relative/image") == 0
    assert not relative.msgs
