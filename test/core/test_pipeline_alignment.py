"""The pipeline with metric alignment (no ROS): frames carrying references, one aligner per
camera, the per-frame honesty rule, metric models corrected, references projected through a
distorted camera and an extrinsic, Prompt Depth Anything fed its prompt (transformers as the
oracle of the prompted forward)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _checkpoints import make_checkpoints
from _half_overflow import inject

from dpt_ros.core.alignment import Extrinsic, FrameReference
from dpt_ros.core.alignment.prompt import fill_holes
from dpt_ros.core.camera.geometry import Intrinsics, backproject
from dpt_ros.core.pipeline.outputs import current_outputs, frame_depth_source
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline, PipelineSettings

H, W = 48, 64
PINHOLE = Intrinsics(50.0, 52.0, 31.0, 24.5, W, H)
LENS = Intrinsics(50.0, 52.0, 31.0, 24.5, W, H, "plumb_bob", (-0.25, 0.08, 0.001, -0.002, 0.0))
WANT = {"depth", "relative", "points", "depth_colorized"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoints(tmp_path_factory.mktemp("align_ckpt"))


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(5)
    base = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1) % 256
    return (base + rng.integers(0, 30, (H, W, 3))).clip(0, 255).astype(np.uint8)


def pipeline(path, **settings) -> Pipeline:
    torch.manual_seed(0)
    return Pipeline(depth_model=str(path), device="cpu", settings=PipelineSettings(**settings))


def affine(relative: np.ndarray, s: float, t: float) -> np.ndarray:
    inv = s * relative.astype(np.float64) + t
    return np.where(inv > 0, 1.0 / np.where(inv > 0, inv, 1.0), np.nan).astype(np.float32)


def test_frame_depth_source_is_the_honesty_rule():
    rule = frame_depth_source
    assert rule(False, False, False, False, False) is None  # relative, nothing: no metres
    assert rule(False, False, False, True, False) == "depth.scale"
    assert rule(False, False, False, True, True) == "aligned"  # a valid fit wins
    assert rule(True, False, False, False, False) == "model"
    assert rule(True, False, False, False, True) == "aligned"
    assert rule(True, True, False, False, True) is None  # no prompt: relative output
    assert rule(True, True, True, False, False) == "model"


def test_relative_model_publishes_metres_only_with_a_valid_alignment(ckpt, rgb):
    p = pipeline(ckpt["relative"], alignment_mode="scale_shift", alignment_max_age_s=1.0)
    assert not p.depth_is_metric and p.depth_may_be_metric
    assert "depth" in current_outputs(p) and "points" in current_outputs(p)
    r = p.process([Frame(rgb, PINHOLE, stamp=0.0)], WANT)[0]
    assert r.depth is None and r.points is None and r.relative is not None
    assert r.depth_colorized is not None and not r.alignment.valid
    reference = affine(r.relative, 2.0, 0.5)
    r = p.process([Frame(rgb, PINHOLE, stamp=0.1, reference=FrameReference(reference))],
                  WANT)[0]
    assert r.alignment.valid and r.alignment.scale == pytest.approx(2.0, rel=1e-4)
    assert r.alignment.shift == pytest.approx(0.5, rel=1e-4)
    np.testing.assert_allclose(r.depth, reference, rtol=1e-4)
    assert r.points is not None
    # the filtered alignment for a frame without a reference, until max_age_s
    r = p.process([Frame(rgb, PINHOLE, stamp=1.0)], WANT)[0]
    np.testing.assert_allclose(r.depth, reference, rtol=1e-4)
    r = p.process([Frame(rgb, PINHOLE, stamp=1.2)], WANT)[0]
    assert r.depth is None and "max_age_s 1" in r.alignment.status
    # depth.scale is the fallback while there is no valid alignment
    p.settings = PipelineSettings(alignment_mode="scale_shift", alignment_max_age_s=1.0,
                                  depth_scale=1.0, depth_shift=1.0)
    r = p.process([Frame(rgb, PINHOLE, stamp=1.3)], WANT)[0]
    np.testing.assert_allclose(r.depth, affine(r.relative, 1.0, 1.0), rtol=1e-5)


def test_each_camera_keeps_its_own_alignment_and_stampless_frames_stand_alone(ckpt, rgb):
    p = pipeline(ckpt["relative"], alignment_mode="scale_shift")
    rel = p.process([Frame(rgb, PINHOLE)], {"relative"})[0].relative
    refs = {"a": affine(rel, 2.0, 0.5), "b": affine(rel, 0.5, 0.1)}
    frames = [Frame(rgb, PINHOLE, camera=c, stamp=0.0, reference=FrameReference(z))
              for c, z in refs.items()]
    out = p.process(frames, WANT)
    for (cam, z), r in zip(refs.items(), out):
        np.testing.assert_allclose(r.depth, z, rtol=1e-4, err_msg=cam)
    frames = [Frame(rgb, PINHOLE, camera=c, stamp=0.5) for c in ("b", "a")]
    out = p.process(frames, WANT)
    np.testing.assert_allclose(out[0].depth, refs["b"], rtol=1e-4)
    np.testing.assert_allclose(out[1].depth, refs["a"], rtol=1e-4)
    assert {"a", "b"} <= set(p.alignment_states)
    # stamp None: the frame's own reference only, nothing kept for the next one
    r = p.process([Frame(rgb, PINHOLE, camera="c", reference=FrameReference(refs["a"]))],
                  WANT)[0]
    np.testing.assert_allclose(r.depth, refs["a"], rtol=1e-4)
    assert p.process([Frame(rgb, PINHOLE, camera="c")], WANT)[0].depth is None


def test_metric_model_gets_its_scale_corrected(ckpt, rgb):
    p = pipeline(ckpt["metric"], alignment_mode="scale")
    own = p.process([Frame(rgb, PINHOLE, stamp=0.0)], WANT)[0]
    assert own.depth is not None and not own.alignment.valid  # uncorrected metres
    ref16 = np.round(own.depth * 1.5 * 1000).astype(np.uint16)  # a 16UC1 sensor, mm
    r = p.process([Frame(rgb, PINHOLE, stamp=0.1,
                         reference=FrameReference(ref16, "16UC1"))], WANT)[0]
    assert r.alignment.valid and r.alignment.scale == pytest.approx(1.5, rel=2e-3)
    assert r.alignment.shift == 0.0
    np.testing.assert_allclose(r.depth, own.depth * r.alignment.scale, rtol=1e-5)


def test_points_reference_through_a_lens_and_an_extrinsic(ckpt, rgb):
    """A cloud in a sensor frame, made from the aligned depth of a raw (distorted) image:
    moved into the camera by the extrinsic and projected through K and D, it lands on the
    pixels it came from, so the fit recovers the affine exactly."""
    p = pipeline(ckpt["relative"], alignment_mode="scale_shift", alignment_extrinsic=(
        0.05, -0.1, 0.02, 0.1, -0.2, 0.05, 0.97))
    rel = p.process([Frame(rgb, LENS)], {"relative"})[0].relative
    truth = affine(rel, 3.0, 0.2)
    cam_pts = backproject(torch.from_numpy(truth), LENS).reshape(-1, 3)
    cam_pts = cam_pts[torch.isfinite(cam_pts).all(-1)]
    ext = Extrinsic.from_list(p.alignment.extrinsic)
    rot = torch.from_numpy(ext.rotation()).float()
    sensor = (cam_pts - torch.tensor(ext.translation).float()) @ rot  # R^T (p - t)
    ref = FrameReference(points=sensor.numpy(), extrinsic=p.alignment.points_extrinsic())
    r = p.process([Frame(rgb, LENS, stamp=0.0, reference=ref)], WANT)[0]
    assert r.alignment.valid and r.alignment.inliers >= 0.95 * len(sensor)
    assert r.alignment.scale == pytest.approx(3.0, rel=1e-3)
    assert r.alignment.shift == pytest.approx(0.2, rel=1e-3)
    np.testing.assert_allclose(r.depth, truth, rtol=1e-3)
    # without the camera model a cloud cannot be projected: said, nothing fitted
    r = p.process([Frame(rgb, None, stamp=0.5, reference=ref)], {"depth"})[0]
    assert "camera model" in r.alignment.status and r.alignment.accepted == 1


def test_fill_holes_keeps_measurements_and_interpolates_between_them():
    g = torch.Generator().manual_seed(0)
    depth = 1.0 + torch.rand(30, 41, generator=g) * 3.0
    holes = torch.rand(30, 41, generator=g) < 0.6
    holes[5:20, 10:30] = True  # a large hole
    sparse = torch.where(holes, torch.nan, depth)
    filled = fill_holes(sparse)
    assert torch.isfinite(filled).all()
    assert torch.equal(filled[~holes], depth[~holes])
    assert filled.min() >= depth[~holes].min() - 1e-6 and filled.max() <= depth[~holes].max()
    assert torch.allclose(fill_holes(torch.where(holes, torch.nan, 2.5)), torch.full_like(
        depth, 2.5))  # a constant stays constant
    assert fill_holes(torch.full((4, 4), math.nan)) is None


# ------------------------------------------------------------ Prompt Depth Anything
@pytest.fixture(scope="module")
def prompt_ckpt(tmp_path_factory):
    T = pytest.importorskip("transformers")
    from _model_util import randomize, tiny_dinov2

    path = tmp_path_factory.mktemp("prompt_da")
    cfg = T.PromptDepthAnythingConfig(
        backbone_config=tiny_dinov2(), reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16, head_hidden_size=8,
        depth_estimation_type="metric", max_depth=None)
    model = randomize(T.PromptDepthAnythingForDepthEstimation(cfg), 0).eval()
    model.save_pretrained(str(path))
    proc = T.PromptDepthAnythingImageProcessorPil(
        do_resize=True, size={"height": 56, "width": 70}, keep_aspect_ratio=False,
        ensure_multiple_of=14)
    proc.save_pretrained(str(path))
    return path, model, proc


def test_prompt_depth_anything_gets_the_reference_as_its_prompt(prompt_ckpt, rgb):
    path, ref_model, ref_proc = prompt_ckpt
    p = Pipeline(depth_model=str(path), device="cpu",
                 settings=PipelineSettings(output_resolution="model", alignment_min_inliers=20))
    assert p.takes_prompt and not p.depth_is_metric and p.depth_may_be_metric
    g = torch.Generator().manual_seed(1)
    tof = (0.5 + 3.0 * torch.rand(12, 16, generator=g)).numpy()
    tof[torch.rand(12, 16, generator=g).numpy() < 0.3] = 0.0  # holes
    mm = np.round(tof * 1000).astype(np.uint16)
    r = p.process([Frame(rgb, PINHOLE, stamp=0.0, reference=FrameReference(mm, "16UC1"))],
                  WANT)[0]
    assert r.prompted and r.depth is not None and r.points is not None
    metres = torch.from_numpy(mm.astype(np.float64) * 1e-3).float()
    prompt = fill_holes(torch.where(metres > 0, metres, torch.nan))
    inputs = ref_proc(images=rgb, return_tensors="pt")
    with torch.no_grad():
        expected = ref_model(pixel_values=inputs["pixel_values"],
                             prompt_depth=prompt[None, None]).predicted_depth[0].numpy()
    assert r.depth.shape == expected.shape
    np.testing.assert_allclose(r.depth, expected, rtol=1e-4, atol=1e-5)
    # no reference, or too few measurements: no prompt, no metres
    r = p.process([Frame(rgb, PINHOLE, stamp=0.1)], WANT)[0]
    assert not r.prompted and r.depth is None and r.points is None
    assert r.depth_colorized is not None
    few = np.zeros_like(mm)
    few[0, :10] = 1500
    r = p.process([Frame(rgb, PINHOLE, stamp=0.2, reference=FrameReference(few, "16UC1"))],
                  WANT)[0]
    assert not r.prompted and r.depth is None


def test_a_recomputed_half_precision_pass_feeds_the_aligner_once(ckpt, rgb):
    """bf16 output that overflows is computed again in float32 (core.pipeline.finite_guard): the
    aligner must see that frame once, with the float32 prediction."""
    p = Pipeline(depth_model=str(ckpt["relative"]), device="cpu", dtype="bfloat16",
                 settings=PipelineSettings(alignment_mode="scale_shift"))
    rel = p.process([Frame(rgb, PINHOLE)], {"relative"})[0].relative
    inject(p, "depth", bad=(0,))
    ref = FrameReference(affine(rel, 2.0, 0.5))
    r = p.process([Frame(rgb, PINHOLE, stamp=0.0, reference=ref)], WANT)[0]
    assert p.nonfinite_frames == 1
    assert (r.alignment.accepted, r.alignment.rejected, r.alignment.gated) == (1, 0, 0)
    assert np.isfinite(r.relative).all() and r.alignment.valid


def test_prompt_from_a_point_cloud(prompt_ckpt, rgb):
    """A cloud becomes a prompt z-buffered on the camera's 256-pixel grid, holes filled:
    the prompted output lies within the cloud's depth range (the model maps its sigmoid
    onto the prompt's [min, max]); without the camera model there is no prompt."""
    path, _, _ = prompt_ckpt
    p = Pipeline(depth_model=str(path), device="cpu",  # model grid: no bicubic overshoot
                 settings=PipelineSettings(output_resolution="model", alignment_min_inliers=20))
    g = torch.Generator().manual_seed(2)
    z = 1.0 + 2.0 * torch.rand(400, generator=g)
    u, v = torch.rand(400, generator=g) * (W - 1), torch.rand(400, generator=g) * (H - 1)
    pts = torch.stack([(u - PINHOLE.cx) / PINHOLE.fx * z, (v - PINHOLE.cy) / PINHOLE.fy * z,
                       z], -1).numpy()
    r = p.process([Frame(rgb, PINHOLE, stamp=0.0, reference=FrameReference(points=pts))],
                  {"depth"})[0]
    assert r.prompted and r.depth is not None
    assert np.nanmin(r.depth) >= float(z.min()) - 1e-4
    assert np.nanmax(r.depth) <= float(z.max()) + 1e-4
    r = p.process([Frame(rgb, None, stamp=0.1, reference=FrameReference(points=pts))],
                  {"depth"})[0]
    assert not r.prompted and r.depth is None
