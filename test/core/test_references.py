"""Reference inputs without ROS: pairing images with references by stamp
(`core.camera.sync.ReferenceSync`), reading depth images and point clouds from message buffers
(`core.codecs.reference_codec`, against arrays laid out by hand), projection of points through a
distorted camera model, and the alignment parameters' checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpt_ros.config import params
from dpt_ros.core.alignment import project_points, samples_from_points
from dpt_ros.core.camera.geometry import Intrinsics, backproject, project
from dpt_ros.core.camera.sync import ReferenceSync
from dpt_ros.core.codecs.reference_codec import parse_depth_reference, parse_points_reference
from dpt_ros.core.errors import BadInput

MS = 1_000_000  # ns


# ------------------------------------------------------------------ pairing
def test_an_image_waits_for_a_reference_stamped_at_or_after_it_and_takes_the_nearest():
    sync: ReferenceSync[str] = ReferenceSync(slop=0.02, wait=0.1)
    assert sync.add_image(100 * MS, "a", now=0.0) == [("a", {})]  # no stream: at once
    assert sync.add_reference("depth", 95 * MS, "d95", now=0.01) == []
    assert sync.add_image(110 * MS, "b", now=0.02) == []  # live: waits for >= 110 ms
    assert sync.add_reference("depth", 108 * MS, "d108", now=0.03) == []
    assert sync.add_reference("depth", 125 * MS, "d125", now=0.04) == [("b", {"depth": "d108"})]
    assert sync.add_image(125 * MS, "c", now=0.05) == [("c", {"depth": "d125"})]  # here: now
    assert sync.add_image(200 * MS, "d", now=0.06) == []
    assert sync.expire(now=0.15) == []
    assert sync.expire(now=0.17) == [("d", {})]  # waited `wait`: goes on without
    assert sync.add_image(300 * MS, "e", now=2.0) == [("e", {})]  # stream silent: no wait


def test_two_streams_and_the_newest_image_rule():
    sync: ReferenceSync[str] = ReferenceSync(slop=0.01, wait=1.0)
    sync.add_reference("depth", 0, "d0", now=0.0)
    sync.add_reference("points", 0, "p0", now=0.0)
    assert sync.add_image(50 * MS, "a", now=0.1) == []
    assert sync.add_reference("depth", 50 * MS, "d50", now=0.11) == []  # points still live
    # a newer image resolves the waiting one with what is there (the node's newest rule)
    assert sync.add_image(60 * MS, "b", now=0.12) == [("a", {"depth": "d50"})]
    assert sync.add_reference("points", 61 * MS, "p61", now=0.13) == []
    assert sync.add_reference("depth", 65 * MS, "d65", now=0.14) == [
        ("b", {"depth": "d65", "points": "p61"})]


def test_bag_mode_keeps_every_image_in_order():
    sync: ReferenceSync[int] = ReferenceSync(slop=0.005, wait=0.5, newest_only=False)
    sync.add_reference("depth", 0, "r0", now=0.0)
    assert sync.add_image(10 * MS, 1, now=0.01) == []
    assert sync.add_image(20 * MS, 2, now=0.02) == []
    assert sync.add_reference("depth", 20 * MS, "r20", now=0.03) == [(1, {}), (2, {"depth": "r20"})]
    sync.add_image(40 * MS, 3, now=0.04)
    sync.add_image(30 * MS, 4, now=0.05)
    assert sync.flush() == [(3, {}), (4, {})] and sync.waiting == 0


def test_expected_streams_are_waited_for_from_the_start():
    sync: ReferenceSync[int] = ReferenceSync(slop=0.005, wait=0.5, newest_only=False,
                                             expected=("points",))
    assert sync.add_image(10 * MS, 1, now=0.0) == []  # no points yet, but they will come
    assert sync.add_reference("points", 10 * MS, "p", now=0.01) == [(1, {"points": "p"})]
    assert sync.add_image(20 * MS, 2, now=0.02) == []
    assert sync.expire(now=0.53) == [(2, {})]


def test_waiting_images_are_bounded():
    sync: ReferenceSync[int] = ReferenceSync(slop=0.0, wait=10.0, pending=3, newest_only=False)
    sync.add_reference("depth", 0, "r", now=0.0)
    released = [r for i in range(1, 10) for r in sync.add_image(i * MS, i, now=0.0)]
    assert [item for item, _ in released] == list(range(1, 7)) and sync.waiting == 3


# ------------------------------------------------------------- message buffers
def test_depth_reference_buffers():
    rng = np.random.default_rng(0)
    mm = rng.integers(0, 5000, (5, 7)).astype(np.uint16)
    rows = np.zeros((5, 7 * 2 + 6), np.uint8)  # padded rows, big-endian samples
    rows[:, :14] = mm.astype(">u2").view(np.uint8).reshape(5, 14)
    got = parse_depth_reference(rows.tobytes(), "16UC1", 7, 5, 20, True, 10**6)
    assert got.dtype == np.uint16 and np.array_equal(got, mm)
    m = rng.uniform(0.1, 9.0, (4, 3)).astype(np.float32)
    m[1, 2] = np.nan
    got = parse_depth_reference(m.tobytes(), "32FC1", 3, 4, 12, False, 10**6)
    assert np.array_equal(got, m, equal_nan=True)
    for args, fragment in [(("8UC1", 3, 4, 12), "not one of"), (("32FC1", 3, 4, 8), "step"),
                           (("32FC1", 3, 5, 12), "bytes"), (("32FC1", 0, 4, 12), "empty")]:
        with pytest.raises(BadInput, match=fragment) as err:
            parse_depth_reference(m.tobytes(), args[0], args[1], args[2], args[3], False, 10**6)
        assert err.value.kind == "reference"


def test_points_reference_buffers():
    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(2, 5, 3))
    xyz[0, 1] = np.nan
    # float64 x/y/z after an intensity field, 4 bytes of padding per point, padded rows
    point = np.dtype({"names": ["i", "x", "y", "z"], "formats": ["<f4", "<f8", "<f8", "<f8"],
                      "offsets": [0, 4, 12, 20], "itemsize": 32})
    pts = np.zeros((2, 5), point)
    pts["x"], pts["y"], pts["z"] = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    rows = np.zeros((2, 5 * 32 + 8), np.uint8)
    rows[:, :160] = pts.view(np.uint8).reshape(2, 160)
    fields = [("i", 0, 7, 1), ("x", 4, 8, 1), ("y", 12, 8, 1), ("z", 20, 8, 1)]
    got = parse_points_reference(rows.tobytes(), fields, 5, 2, 32, 168, False)
    want = xyz.reshape(-1, 3)
    want = want[np.isfinite(want).all(1)].astype(np.float32)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    with pytest.raises(BadInput, match="no z"):
        parse_points_reference(rows.tobytes(), fields[:3], 5, 2, 32, 168, False)
    with pytest.raises(BadInput, match="datatype"):
        parse_points_reference(rows.tobytes(), [*fields[:3], ("z", 20, 4, 1)], 5, 2, 32, 168,
                               False)
    with pytest.raises(BadInput, match="bytes"):
        parse_points_reference(rows.tobytes()[:-10], fields, 5, 2, 32, 168, False)


# ------------------------------------------------------------- camera model
LENS = Intrinsics(300.0, 310.0, 159.0, 121.0, 320, 240, "plumb_bob",
                  (-0.3, 0.1, 0.001, -0.001, 0.0))


def test_points_project_through_the_lens_onto_the_pixels_they_came_from():
    depth = torch.full((240, 320), 2.0) + torch.linspace(0, 1, 320)
    pts = backproject(depth, LENS).reshape(-1, 3)
    ok = torch.isfinite(pts).all(-1)
    u, v, _ = project_points(pts[ok], LENS)
    vv, uu = torch.meshgrid(torch.arange(240.0), torch.arange(320.0), indexing="ij")
    assert torch.allclose(u, uu.reshape(-1)[ok], atol=1e-3)
    assert torch.allclose(v, vv.reshape(-1)[ok], atol=1e-3)
    # a pinhole would put these rays 20 px apart at the corner: the lens is really used
    pin = Intrinsics(300.0, 310.0, 159.0, 121.0, 320, 240)
    assert (project_points(pts[ok], pin)[0] - u).abs().max() > 20
    samples = samples_from_points(pts[ok], LENS)
    assert len(samples) == int(ok.sum())
    assert torch.allclose(samples.z, depth.reshape(-1)[ok])


def test_points_outside_the_field_of_view_never_fold_into_the_image():
    """Far off-axis, the polynomial lens model folds back towards the centre; such points
    (a LiDAR sees all around) must not land in the image."""
    angles = torch.linspace(math.radians(55), math.radians(85), 50)
    pts = torch.stack([torch.tan(angles), torch.full((50,), 0.1), torch.ones(50)], -1)
    strong = Intrinsics(300.0, 300.0, 159.5, 119.5, 320, 240, "plumb_bob",
                        (-0.3, 0.0, 0.0, 0.0, 0.0))
    assert (300.0 * pts[:, 0] + 159.5 > 320).all()  # all outside the image
    folded = project(pts, strong)[:, 0]
    assert ((folded >= 0) & (folded <= 319)).sum() > 10  # the bare lens model folds them in
    u, _, _ = project_points(pts, strong)
    assert not ((u >= 0) & (u <= 319)).any()
    assert len(samples_from_points(pts, strong)) == 0


# ---------------------------------------------------------------- parameters
def test_alignment_parameters():
    ok = {"depth_model": "m", "alignment.mode": "scale_shift",
          "alignment.extrinsic": [0.1, 0.0, 0.0, 0.0, 0.0, 0.7, 0.7]}
    assert params.check_update(ok, {}) is None
    assert "needs a depth_model" in params.check_update({"alignment.mode": "scale"}, {})
    assert "zero length" in params.check_update(
        {**ok, "alignment.extrinsic": [0.0] * 7}, {})
    assert "list of 7" in params.check_update({**ok, "alignment.extrinsic": [0.0] * 6}, {})
    assert "one of" in params.check_update({**ok, "alignment.mode": "affine"}, {})
    assert ">= 3" in params.check_update({"alignment.min_inliers": 2}, {})
    s = params.pipeline_settings({**ok, "alignment.smoothing_s": 1.5})
    assert (s.alignment_mode, s.alignment_smoothing_s) == ("scale_shift", 1.5)
    assert s.alignment_extrinsic == (0.1, 0.0, 0.0, 0.0, 0.0, 0.7, 0.7)
    for name in ("alignment.mode", "alignment.extrinsic", "alignment.slop_ms",
                 "alignment.wait_ms"):
        assert params.BY_NAME[name].read_only, name
    for name in ("alignment.smoothing_s", "alignment.max_age_s", "alignment.min_inliers",
                 "alignment.max_residual", "alignment.gate"):
        assert not params.BY_NAME[name].read_only, name
