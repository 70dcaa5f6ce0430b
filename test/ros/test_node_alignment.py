"""Metric alignment in dpt_node, black-box over real DDS: a relative model with
`alignment.mode: scale_shift` publishes no ~/depth / ~/points before a reference arrives,
aligned ones after (a reference that is an exact affine of the model's own relative output
must come back as the published depth), keeps the filtered alignment for frames without a
reference, stops after `alignment.max_age_s` without one (and says so once), and resumes
(saying so) on a point-cloud reference; /diagnostics carries the fit per camera."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from _node_util import (
    IMAGE_TOPIC,
    Peer,
    camera_rgb,
    cloud_array,
    domain_id,
    image_array,
    image_msg,
    send_until,
    start_nodes,
)

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2, PointField  # noqa: E402

from dpt_ros.core.alignment import AlignmentState  # noqa: E402
from dpt_ros.ros.reference_input import AlignmentWatch  # noqa: E402

H, W = 48, 64
HFOV = 90.0  # parameter intrinsics (no camera_info is published): f = W / 2
MAX_AGE = 1.0
RGB = camera_rgb(H, W, seed=3)  # every frame shows the same picture: the same prediction


# ------------------------------------------------------------------ plain Python
def test_watch_says_once_when_metric_output_stops_and_once_when_it_resumes():
    watch = AlignmentWatch(model_is_metric=False, scale_fallback=lambda: False)
    ok = AlignmentState(True, 2.0, 0.5, 900, 0.001, 0.0, 1, 0, 0, "accepted")
    gone = AlignmentState(False, 2.0, 0.5, 900, 0.001, 2.5, 1, 0, 0,
                          "no valid alignment: last accepted fit 2.50 s ago > max_age_s 2")
    assert watch.update("", AlignmentState(False)) is None  # nothing published yet
    assert "no ~/depth/image" in watch.problem(AlignmentState(False))
    said = watch.update("", ok)
    assert "published" in said and "again" not in said
    assert watch.update("", ok) is None and watch.problem(ok) is None
    said = watch.update("", gone)
    assert "stop until a reference fits again" in said and "2.50 s ago" in said
    assert watch.update("", gone) is None  # once
    assert "valid alignment again" in watch.update("", ok)
    metric = AlignmentWatch(model_is_metric=True, scale_fallback=lambda: False)
    metric.update("front", ok)
    assert "uncorrected" in metric.update("front", gone)
    assert metric.problem(gone) is None  # a metric model still publishes metres


def test_bare_off_in_yaml_means_off():
    """ROS reads `alignment.mode: off` (and `-p alignment.mode:=off`) as the boolean false:
    the parameter is declared with dynamic typing and false is taken back as "off"."""
    from dpt_ros.config.params import BY_NAME, check_update
    from dpt_ros.ros.parameters import descriptor, plain

    assert descriptor(BY_NAME["alignment.mode"]).dynamic_typing
    assert not descriptor(BY_NAME["colormap"]).dynamic_typing
    assert plain(False, "alignment.mode") == "off" and plain(False, "publish.depth") is False
    assert "must be a str" in check_update({"alignment.mode": 3}, {})


# ----------------------------------------------------------------- the node
@pytest.fixture(scope="module")
def node(checkpoints, tmp_path_factory):
    params = {"device": "cpu", "diagnostics_period": 0.2, "depth_model": checkpoints["relative"],
              "camera.hfov": HFOV, "alignment.mode": "scale_shift",
              "alignment.max_age_s": MAX_AGE, "alignment.wait_ms": 300.0,
              "alignment.slop_ms": 5.0}
    peer = Peer(domain_id("alignment"))
    proc = None
    try:
        (proc,) = start_nodes([(params, {})], [peer], tmp_path_factory.mktemp("alignment"))
        io = {
            "image": peer.publisher(Image, IMAGE_TOPIC),
            "depth_ref": peer.publisher(Image, "/depth_reference"),
            "points_ref": peer.publisher(PointCloud2, "/points_reference"),
            "relative": peer.collect(Image, "/dpt_node/depth_relative/image"),
            "depth": peer.collect(Image, "/dpt_node/depth/image"),
            "points": peer.collect(PointCloud2, "/dpt_node/points"),
            "diag": peer.collect(DiagnosticArray, "/diagnostics"),
        }
        yield peer, proc, io
        code = proc.stop()
        assert code == 0, f"dpt_node exited with {code}:\n{proc.log()}"
    finally:
        if proc is not None:
            proc.stop()
        peer.close()


def frame(stamp: tuple[int, int]) -> Image:
    return image_msg(RGB, "rgb8", stamp, "cam")


def affine_depth(relative: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """The depth whose inverse is exactly scale * relative + shift (NaN where not > 0)."""
    inv = scale * relative.astype(np.float64) + shift
    return np.where(inv > 0, 1.0 / np.where(inv > 0, inv, 1.0), np.nan).astype(np.float32)


def points_msg(depth: np.ndarray, stamp: tuple[int, int]) -> PointCloud2:
    """The depth back-projected through the parameter pinhole, one point per valid pixel,
    in the camera optical frame, as a hand-built PointCloud2."""
    f = (W / 2) / math.tan(math.radians(HFOV / 2))
    v, u = np.mgrid[0:H, 0:W]
    ok = np.isfinite(depth)
    z = depth[ok]
    xyz = np.stack([(u[ok] - (W - 1) / 2) / f * z, (v[ok] - (H - 1) / 2) / f * z, z], -1)
    msg = PointCloud2()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = "cam"
    msg.height, msg.width = 1, int(xyz.shape[0])
    msg.fields = [PointField(name=n, offset=4 * i, datatype=7, count=1)
                  for i, n in enumerate("xyz")]
    msg.point_step, msg.row_step = 12, 12 * int(xyz.shape[0])
    msg.data = xyz.astype("<f4").tobytes()
    return msg


def camera_status(msg: DiagnosticArray) -> dict[str, str]:
    for status in msg.status:
        if status.name.endswith(f"input {IMAGE_TOPIC}"):
            return {kv.key: kv.value for kv in status.values}
    return {}


def diag_after(io, pred, timeout: float = 10.0) -> dict[str, str]:
    io["diag"].clear()
    msg = io["diag"].wait_for(lambda m: pred(camera_status(m)), timeout)
    assert msg is not None, "no /diagnostics with the expected alignment"
    return camera_status(msg)


def no_metric(io, stamp: tuple[int, int], sends=()) -> np.ndarray:
    """The frame yields ~/depth_relative/image and nothing metric; returns the relative output."""
    (rel,) = send_until([(io["image"], frame(stamp)), *sends], [io["relative"]], stamp)
    time.sleep(0.3)  # a metric output would have been published together with it
    for name in ("depth", "points"):
        hit = io[name].wait_for(lambda m: (m.header.stamp.sec, m.header.stamp.nanosec)
                                == stamp, 0.0)
        assert hit is None, f"{name} published for {stamp} without a valid alignment"
    return image_array(rel)


def check_aligned(depth_msg, cloud_msg, expected: np.ndarray) -> None:
    depth = image_array(depth_msg)
    both = np.isfinite(depth) & np.isfinite(expected)
    assert both.mean() > 0.9 and np.array_equal(np.isfinite(depth), np.isfinite(expected))
    assert np.max(np.abs(depth[both] - expected[both]) / expected[both]) < 2e-3
    assert np.allclose(cloud_array(cloud_msg)["z"], depth, equal_nan=True)


@pytest.mark.ros
def test_alignment_gates_metric_output_on_a_valid_fit(node):
    _, proc, io = node
    # 1. No reference yet: relative output only, and diagnostics say why.
    rel = no_metric(io, (10, 0))
    assert np.isfinite(rel).all() and rel.std() > 0
    values = diag_after(io, lambda v: v.get("alignment.valid") == "false")
    assert values["alignment.accepted"] == "0"

    # 2. A depth reference that is an exact affine of the model's own output: the published
    # depth is that reference (the fit recovers s = 2, t = 0.5), the cloud is its points.
    reference = affine_depth(rel, 2.0, 0.5)
    ref_msg = image_msg(reference, "32FC1", (20, 0), "cam")
    depth, cloud = send_until([(io["image"], frame((20, 0))), (io["depth_ref"], ref_msg)],
                              [io["depth"], io["points"]], (20, 0))
    check_aligned(depth, cloud, reference)
    values = diag_after(io, lambda v: v.get("alignment.valid") == "true")
    assert abs(float(values["alignment.scale"]) - 2.0) < 2e-3
    assert abs(float(values["alignment.shift"]) - 0.5) < 2e-3
    assert int(values["alignment.inliers"]) >= 0.9 * np.isfinite(reference).sum()
    assert float(values["alignment.residual"]) < 1e-3
    assert float(values["alignment.age_s"]) < MAX_AGE
    assert int(values["alignment.references_received"].split(",")[0].split()[-1]) >= 1

    # 3. A later frame without a reference (within max_age_s): the filtered alignment.
    (depth,) = send_until([(io["image"], frame((20, 500_000_000)))], [io["depth"]],
                          (20, 500_000_000))
    np.testing.assert_allclose(image_array(depth), reference, rtol=2e-3)

    # 4. max_age_s without an accepted fit: no metres any more, said once.
    for sec in (23, 24):
        no_metric(io, (sec, 0))
    values = diag_after(io, lambda v: v.get("alignment.valid") == "false")
    assert "no valid alignment" in values["alignment.status"]
    assert proc.log().count("stop until a reference fits again") == 1, proc.log()

    # 5. A point-cloud reference with another affine: aligned again (a fresh start after
    # the expiry, nothing gated), and said so.
    reference = affine_depth(rel, 3.0, 0.2)
    depth, cloud = send_until(
        [(io["image"], frame((30, 0))), (io["points_ref"], points_msg(reference, (30, 0)))],
        [io["depth"], io["points"]], (30, 0))
    check_aligned(depth, cloud, reference)
    values = diag_after(io, lambda v: v.get("alignment.valid") == "true"
                        and abs(float(v["alignment.scale"]) - 3.0) < 5e-3)
    assert abs(float(values["alignment.shift"]) - 0.2) < 5e-3
    log = proc.log()
    assert "valid alignment again" in log and "(scale_shift)" in log
