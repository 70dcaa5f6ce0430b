"""Alignment maths without ROS (issue 15's Proof): the robust per-frame fit against known
affine relations with noise and gross outliers, the temporal filter against jittering and
stepping references, max_age, and the reference sampling / projection geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpt_ros.core.alignment import (
    Aligner,
    Extrinsic,
    Fit,
    TemporalFilter,
    aligned_depth,
    depth_in_metres,
    fit_samples,
    samples_from_depth_image,
    samples_from_points,
)
from dpt_ros.core.camera.geometry import Intrinsics

S_TRUE, T_TRUE = 0.37, 0.08  # 1 / z = S r + T


def _scene(n: int = 15_360, noise: float = 0.01, outliers: float = 0.1, seed: int = 0):
    """True depths 1-10 m, a relative prediction exactly affine in inverse depth (plus 0.2 %
    noise), a reference with relative noise and a fraction replaced by random depths."""
    g = torch.Generator().manual_seed(seed)
    z = 1.0 + 9.0 * torch.rand(n, generator=g)
    r = (1.0 / z - T_TRUE) / S_TRUE * (1.0 + 0.002 * torch.randn(n, generator=g))
    z_ref = z * (1.0 + noise * torch.randn(n, generator=g))
    bad = torch.rand(n, generator=g) < outliers
    z_ref[bad] = 0.2 + 29.8 * torch.rand(int(bad.sum()), generator=g)
    return z, r, z_ref, bad


@pytest.mark.parametrize("metric", [False, True])
def test_fit_recovers_scale_and_shift_despite_outliers(metric):
    z, r, z_ref, bad = _scene()
    if metric:  # a metric model off by an affine: z = (z_true - t) / s
        s0, t0 = 1.23, 0.31
        x = (z - t0) / s0 * (1.0 + 0.002 * torch.randn(len(z), generator=torch.Generator()
                                                       .manual_seed(5)))
    else:
        s0, t0, x = S_TRUE, T_TRUE, r
    fit = fit_samples(x, z_ref, "scale_shift", not metric, min_inliers=50, max_residual=0.25)
    assert fit.accepted, fit.reason
    assert fit.scale == pytest.approx(s0, rel=0.01)
    assert fit.shift == pytest.approx(t0, rel=0.01)
    aligned = aligned_depth(x, metric, fit.scale, fit.shift)
    assert ((aligned[~bad] - z[~bad]).abs() / z[~bad]).mean() <= 0.01
    assert fit.residual <= 0.01
    assert 0.85 * len(z) <= fit.inliers <= (~bad).sum() + 0.02 * len(z)
    # teeth: plain least squares on the same samples is pulled far off by the outliers
    y = z_ref if metric else 1.0 / z_ref
    design = torch.stack([x, torch.ones_like(x)], 1).double()
    ls = torch.linalg.lstsq(design, y.double()[:, None]).solution.view(-1)
    assert abs(ls[0].item() / s0 - 1) > 0.05


def test_scale_mode():
    z, _, z_ref, _ = _scene(seed=1)
    r = 1.0 / (S_TRUE * z)  # t = 0
    fit = fit_samples(r, z_ref, "scale", True, 50, 0.25)
    assert fit.accepted and fit.shift == 0.0
    assert fit.scale == pytest.approx(S_TRUE, rel=0.01)
    metric_fit = fit_samples(z / 1.1, z_ref, "scale", False, 50, 0.25)
    assert metric_fit.scale == pytest.approx(1.1, rel=0.01)


def test_rejections_say_why():
    _, r, z_ref, _ = _scene(n=2000, outliers=0.0)
    few = fit_samples(r[:20], z_ref[:20], "scale_shift", True, 50, 0.25)
    assert not few.accepted and "20 reference samples < min_inliers 50" in few.reason
    noise = torch.rand(2000, generator=torch.Generator().manual_seed(3))
    unrelated = fit_samples(noise, z_ref, "scale_shift", True, 50, 0.25)
    assert not unrelated.accepted, unrelated
    flipped = fit_samples(-r, z_ref, "scale_shift", True, 50, 0.25)
    assert not flipped.accepted and "non-positive scale" in flipped.reason
    flat = fit_samples(torch.full((2000,), 0.3), z_ref, "scale_shift", True, 50, 0.25)
    assert not flat.accepted and "degenerate" in flat.reason
    tight = fit_samples(r, z_ref * (1 + 0.2 * torch.randn(2000)), "scale_shift", True, 50, 0.02)
    assert not tight.accepted and "max_residual" in tight.reason


def _fit(scale: float, shift: float = 0.0) -> Fit:
    return Fit(True, "", scale, shift, 1000, 1000, 0.01, (0.5, 1.0, 2.0))


def _run(filt: TemporalFilter, scales, rate: float = 30.0, start: float = 0.0):
    return np.array([filt.update(_fit(s), start + k / rate).scale for k, s in enumerate(scales)])


def test_filter_smooths_a_jittering_reference():
    """Reference scale jittering +-5 % (uniform) frame to frame at 30 Hz, smoothing_s = 2:
    once settled (3 time constants) the applied scale stays within 1 % of the truth."""
    rng = np.random.default_rng(0)
    truth = 0.5
    jitter = truth * (1 + rng.uniform(-0.05, 0.05, 900))
    applied = _run(TemporalFilter(smoothing_s=2.0, max_age_s=2.0, gate=0.2), jitter)
    settled = applied[180:]
    assert np.abs(settled / truth - 1).max() <= 0.01
    assert np.abs(np.diff(settled) / settled[1:]).max() <= 0.005
    per_frame = _run(TemporalFilter(smoothing_s=0.0), jitter)
    assert np.array_equal(per_frame, jitter)  # smoothing 0: the fit of the frame, as is


def test_filter_follows_steps_within_the_time_constant():
    rng = np.random.default_rng(1)
    tau, rate = 1.0, 30.0
    for step in (1.15, 1.5):  # inside the 20 % gate (filtered), beyond it (confirmed)
        scales = 0.5 * np.r_[np.ones(300), np.full(300, step)]
        scales *= 1 + rng.uniform(-0.05, 0.05, 600)
        filt = TemporalFilter(smoothing_s=tau, max_age_s=2.0, gate=0.2)
        applied = _run(filt, scales, rate)
        covered = (applied - 0.5) / (0.5 * step - 0.5)
        at_tau, at_3tau = covered[300 + int(tau * rate)], covered[300 + int(3 * tau * rate)]
        assert at_tau >= 0.55 and at_3tau >= 0.85, (step, at_tau, at_3tau)
        if step > 1.2:
            assert filt.state(20.0).gated >= 2 and abs(at_tau - 1) <= 0.05


def test_one_bad_reference_frame_does_not_move_the_depth():
    filt = TemporalFilter(smoothing_s=1.0, max_age_s=2.0, gate=0.2)
    before = _run(filt, np.full(60, 0.5))[-1]
    state = filt.update(_fit(1.0), 2.0)
    assert state.scale == before and state.gated == 1 and state.status.startswith("gated")
    after = _run(filt, np.full(3, 0.5), start=2.0 + 1 / 30)
    assert np.abs(after / 0.5 - 1).max() < 1e-9


def test_a_steady_drift_is_filtered_never_frozen():
    """Fits drifting 2.5 % a frame (the filtered value soon lags by more than the 20 % gate):
    each fit is close to the previous one, so none is held back and the filter keeps up."""
    filt = TemporalFilter(smoothing_s=1.0, max_age_s=2.0, gate=0.2)
    drift = 0.5 * 1.025 ** np.arange(60)
    applied = _run(filt, drift)
    assert filt.state(2.0).gated == 0
    assert np.all(np.diff(applied) > 0) and applied[-1] > 0.6 * drift[-1]


def test_max_age_invalidates_and_restarts():
    filt = TemporalFilter(smoothing_s=1.0, max_age_s=2.0, gate=0.2)
    _run(filt, np.full(30, 0.5))  # last fit at t = 29/30
    last = 29 / 30
    assert filt.state(last + 1.9).valid
    expired = filt.state(last + 2.1)
    assert not expired.valid and "no valid alignment" in expired.status
    assert expired.age_s == pytest.approx(2.1)
    fresh = filt.update(_fit(0.8), last + 3.0)  # far from 0.5: no gating after expiry
    assert fresh.valid and fresh.scale == 0.8
    back = filt.update(_fit(0.6), last - 10.0)  # stamps jumped back (a bag restarted)
    assert back.valid and back.scale == 0.6


def test_aligner_apply_is_honest_without_alignment():
    pred = torch.full((6, 8), 2.0)
    rel = Aligner("scale_shift", model_is_metric=False, max_age_s=1.0)
    assert rel.apply(pred, 0.0) is None and not rel.state(0.0).valid
    met = Aligner("scale", model_is_metric=True)
    assert torch.equal(met.apply(pred, 0.0), pred)  # its own metres, uncorrected


def _plane_inverse_depth(h: int, w: int) -> torch.Tensor:
    """Inverse depth of a tilted plane seen by a pinhole: affine in the pixel position."""
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                          torch.arange(w, dtype=torch.float64), indexing="ij")
    return 0.2 + 0.5 * (u + 0.5) / w + 0.3 * (v + 0.5) / h


def test_depth_image_reference_maps_pixel_centres():
    """A 160x120 reference and a 256x192 prediction of the same plane: with pixel centres
    mapped by (u + 0.5) s - 0.5 the fit is exact (a 0.5 px slip would leave ~1e-3)."""
    inv_ref = _plane_inverse_depth(120, 160)
    ref = depth_in_metres((1000.0 / inv_ref).round().numpy().astype(np.uint16), "16UC1")
    ref[::7, ::5] = torch.nan  # holes
    samples = samples_from_depth_image(ref, (192, 256))
    assert len(samples) == int(torch.isfinite(ref).sum())
    pred = _plane_inverse_depth(192, 256).float() * 3.0  # relative: 1/z = pred / 3
    aligner = Aligner("scale_shift", model_is_metric=False, smoothing_s=0.0)
    state = aligner.update(pred, samples, 0.0)
    assert state.valid and state.residual < 2e-4  # the mm quantisation of the reference
    assert state.scale == pytest.approx(1 / 3, rel=1e-3) and abs(state.shift) < 1e-3
    depth = aligner.apply(pred, 0.0)
    assert torch.allclose(depth, 1.0 / _plane_inverse_depth(192, 256).float(), rtol=1e-3)


def test_depth_in_metres_units():
    mm = np.array([[0, 1500], [65535, 250]], np.uint16)
    assert torch.equal(depth_in_metres(mm, "16UC1").isnan(), torch.tensor([[True, False],
                                                                           [False, False]]))
    assert depth_in_metres(mm, "16UC1")[0, 1].item() == pytest.approx(1.5)
    m = np.array([[0.0, np.nan], [np.inf, 2.5]], np.float32)
    assert torch.isnan(depth_in_metres(m, "32FC1")).sum() == 3
    with pytest.raises(ValueError, match="encoding"):
        depth_in_metres(mm, "mono8")


def _camera() -> Intrinsics:
    return Intrinsics(200.0, 210.0, 127.3, 96.1, 256, 192)


def test_points_project_back_to_their_pixels():
    """Points back-projected from known sub-pixel positions (one per pixel), expressed in a
    sensor frame, come back at those positions and depths through the extrinsic and the
    projection; points behind the camera or off the image are dropped."""
    cam = _camera()
    g = torch.Generator().manual_seed(0)
    v, u = torch.meshgrid(torch.arange(5.0, 190, 9), torch.arange(3.0, 250, 11), indexing="ij")
    u = u.reshape(-1) + 0.6 * (torch.rand(u.numel(), generator=g) - 0.5)
    v = v.reshape(-1) + 0.6 * (torch.rand(v.numel(), generator=g) - 0.5)
    z = 1 + 5 * torch.rand(u.numel(), generator=g)
    cam_pts = torch.stack([(u - cam.cx) / cam.fx * z, (v - cam.cy) / cam.fy * z, z], 1)
    ext = Extrinsic.from_list([0.1, -0.05, 0.02, 0.1, 0.2, -0.05, 0.97])  # normalised
    rot = torch.from_numpy(ext.rotation()).float()
    sensor_pts = (cam_pts - torch.tensor(ext.translation)) @ rot  # inverse transform
    behind = torch.tensor([[0.0, 0.0, -1.0], [5.0, 0.0, 0.1]])  # behind / off the image
    for got in (samples_from_points(torch.cat([cam_pts, behind]), cam),
                samples_from_points(torch.cat([sensor_pts, behind]) @ rot.T
                                    + torch.tensor(ext.translation), cam),
                samples_from_points(sensor_pts, cam, ext)):
        assert got.grid == (192, 256) and len(got) == u.numel()
        assert torch.allclose(got.u, u, atol=2e-3) and torch.allclose(got.v, v, atol=2e-3)
        assert torch.allclose(got.z, z, rtol=1e-5)


def test_points_z_buffer_keeps_the_nearest():
    cam = _camera()
    pts = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 5.0], [0.001, 0.0, 3.0],  # one pixel
                        [0.5, 0.2, 4.0]])
    s = samples_from_points(pts, cam)
    assert sorted(s.z.tolist()) == [2.0, 4.0]


def test_extrinsic_validation():
    with pytest.raises(ValueError, match="7 finite"):
        Extrinsic.from_list([0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="zero length"):
        Extrinsic.from_list([0, 0, 0, 0, 0, 0, 0])
    e = Extrinsic.from_list([1, 2, 3, 0, 0, 0, 2])
    assert e.is_identity is False and e.quaternion == (0.0, 0.0, 0.0, 1.0)
    assert np.allclose(e.rotation(), np.eye(3))
    quarter = Extrinsic.from_list([0, 0, 0, 0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4)])
    assert torch.allclose(quarter.apply(torch.tensor([[1.0, 0.0, 0.0]])),
                          torch.tensor([[0.0, 1.0, 0.0]]), atol=1e-6)
