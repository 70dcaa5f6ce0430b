"""Metric honesty: a relative model publishes no ~/depth and no ~/points, even when forced,
until depth.scale is set; then depth = 1 / (scale * relative + shift) exactly, and the points
use the parameter intrinsics when no camera_info exists (`relative_node`)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from _node_util import (
    IMAGE_TOPIC,
    RELATIVE_SIZE,
    backproject,
    camera_rgb,
    cloud_array,
    diagnostics_values,
    image_array,
    image_msg,
    send_until,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

H = W = RELATIVE_SIZE  # the node's model input size: ~/depth_relative/image is the raw output
HFOV = 90.0  # the relative node's camera.hfov


@pytest.fixture(scope="module")
def io(relative_node):
    peer = relative_node[0]
    io = {
        "peer": peer,
        "image": peer.publisher(Image, IMAGE_TOPIC),
        "relative": peer.collect(Image, "/dpt_node/depth_relative/image"),
        "colorized": peer.collect(Image, "/dpt_node/depth_colorized/image"),
        "info": peer.collect(CameraInfo, "/dpt_node/depth_relative/camera_info"),
        "depth": peer.collect(Image, "/dpt_node/depth/image"),
        "points": peer.collect(PointCloud2, "/dpt_node/points"),
    }
    yield io
    for c in io.values():
        if hasattr(c, "sub"):
            peer.node.destroy_subscription(c.sub)


def frame(sec: int) -> Image:
    return image_msg(camera_rgb(H, W, seed=sec), "rgb8", (sec, 0), "cam")


def relative_only(io, sec: int) -> None:
    """A frame yields relative outputs; no metric output carries its stamp."""
    send_until([(io["image"], frame(sec))], [io["relative"], io["colorized"], io["info"]],
               (sec, 0))
    time.sleep(0.2)  # anything metric would have been published with the others
    for name in ("depth", "points"):
        assert io[name].wait_for(lambda m: m.header.stamp.sec == sec, 0.0) is None, name


def test_relative_model_never_publishes_metres(io, checkpoints):
    peer = io["peer"]
    assert peer.node.count_publishers("/dpt_node/depth_relative/image") == 1
    for sec in (10, 11, 12):
        relative_only(io, sec)
    assert not io["depth"].msgs and not io["points"].msgs

    torch = pytest.importorskip("torch")
    from transformers import DPTForDepthEstimation, DPTImageProcessorPil

    rgb = camera_rgb(H, W, seed=10)
    model = DPTForDepthEstimation.from_pretrained(checkpoints["relative"]).eval()
    proc = DPTImageProcessorPil(size={"height": H, "width": W}, keep_aspect_ratio=False)
    with torch.no_grad():
        ref = model(**proc(images=rgb, return_tensors="pt")).predicted_depth[0].numpy()
    got = image_array(io["relative"].wait_for(lambda m: m.header.stamp.sec == 10, 1.0))
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()

    diag = peer.collect(DiagnosticArray, "/diagnostics")
    msg = diag.wait_for(lambda m: bool(diagnostics_values(m)), 5.0)
    assert diagnostics_values(msg)["depth_metric"] == "false"
    peer.node.destroy_subscription(diag.sub)


def test_scale_and_shift_make_depth_metric(io):
    peer = io["peer"]
    scale, shift = 2.0, 0.5
    assert all(r.successful for r in peer.set_parameters(
        {"depth.scale": scale, "depth.shift": shift}))
    try:
        rel, depth, info, cloud = send_until(
            [(io["image"], frame(20))],
            [io["relative"], io["depth"], io["info"], io["points"]], (20, 0))
    finally:
        assert all(r.successful for r in peer.set_parameters({"depth.scale": 0.0,
                                                              "depth.shift": 0.0}))
    rel, depth = image_array(rel), image_array(depth)
    inv = scale * rel.astype(np.float64) + shift
    expected = np.where(inv > 0, 1.0 / np.where(inv > 0, inv, 1.0), np.nan)
    assert np.array_equal(np.isnan(depth), np.isnan(expected))
    assert np.nanmax(np.abs(depth - expected) / expected) < 1e-5

    # No camera_info was ever sent: the parameter intrinsics (90 degrees: f = W / 2).
    f = (W / 2) / math.tan(math.radians(HFOV / 2))
    assert np.allclose(info.k, [f, 0, (W - 1) / 2, 0, f, (H - 1) / 2, 0, 0, 1])
    fields = cloud_array(cloud)
    got = np.stack([fields["x"], fields["y"], fields["z"]], axis=-1)
    assert np.nanmax(np.abs(got - backproject(depth, info.k))) <= 1e-5

    relative_only(io, 21)  # scale back to 0: metres stop again
