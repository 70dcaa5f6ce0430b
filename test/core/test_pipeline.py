"""The processing core against independent truth: transformers (pre-processing, forward and
post-processing of the same checkpoint) and the pinhole formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _checkpoints import make_checkpoints

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.pipeline import (
    OUTPUTS,
    Frame,
    Pipeline,
    PipelineConfigError,
    PipelineSettings,
    metric_depth,
)

H, W = 48, 80
INTR = Intrinsics(fx=60.0, fy=62.0, cx=39.0, cy=23.5, width=W, height=H)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoints(tmp_path_factory.mktemp("pipeline_ckpt"))


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([xx * 3, yy * 5, (xx + yy) * 2], -1) % 256
    return (base + rng.integers(0, 20, (H, W, 3))).clip(0, 255).astype(np.uint8)


def reference(path, rgb, task):
    """transformers' own answer for one frame at input resolution."""
    from transformers import (
        AutoModelForDepthEstimation,
        AutoModelForSemanticSegmentation,
        DPTImageProcessorPil,
    )

    proc = DPTImageProcessorPil.from_pretrained(path)
    inputs = proc(images=rgb, return_tensors="pt")
    with torch.no_grad():
        if task == "depth":
            out = AutoModelForDepthEstimation.from_pretrained(path).eval()(**inputs)
            return proc.post_process_depth_estimation(out, target_sizes=[(H, W)])[0][
                "predicted_depth"].numpy()
        out = AutoModelForSemanticSegmentation.from_pretrained(path).eval()(**inputs)
        return proc.post_process_semantic_segmentation(out, target_sizes=[(H, W)])[0].numpy()


def cloud_xyz(packed):
    names = [f[0] for f in packed.fields]
    dtype = np.dtype({"names": names, "formats": ["<f4" if n != "label" else "<u4" for n in names],
                      "offsets": [f[1] for f in packed.fields], "itemsize": packed.point_step})
    return np.frombuffer(packed.data.tobytes(), dtype=dtype).reshape(packed.height, packed.width)


def test_relative_depth_equals_transformers(ckpt, rgb):
    pipe = Pipeline(depth_model=str(ckpt["relative"]), device="cpu")
    assert not pipe.model_is_metric and not pipe.depth_is_metric
    (res,) = pipe.process([Frame(rgb, INTR)], set(OUTPUTS))
    ref = reference(ckpt["relative"], rgb, "depth")
    assert res.relative.shape == (H, W) and res.relative.dtype == np.float32
    np.testing.assert_allclose(res.relative, ref, atol=1e-4 * np.abs(ref).max())
    # Metric honesty: a relative model publishes neither metres nor points.
    assert res.depth is None and res.points is None
    assert res.depth_colorized.shape == (H, W, 3) and res.depth_colorized.dtype == np.uint8


def test_scale_shift_makes_relative_metric(ckpt, rgb):
    settings = PipelineSettings(depth_scale=0.5, depth_shift=0.1)
    pipe = Pipeline(depth_model=str(ckpt["relative"]), device="cpu", settings=settings)
    assert pipe.depth_is_metric
    (res,) = pipe.process([Frame(rgb, INTR)], {"depth", "relative", "points"})
    inv = 0.5 * res.relative.astype(np.float64) + 0.1
    expected = np.where(inv > 0, 1.0 / np.where(inv > 0, inv, 1), np.nan)
    np.testing.assert_allclose(res.depth, expected, rtol=1e-5, equal_nan=True)
    assert res.points is not None


def test_metric_points_back_project_with_intrinsics(ckpt, rgb):
    pipe = Pipeline(depth_model=str(ckpt["metric"]), device="cpu")
    assert pipe.model_is_metric
    (res,) = pipe.process([Frame(rgb, INTR)], {"depth", "points", "relative"})
    assert res.relative is None  # a metric model has no relative output
    z = res.depth.astype(np.float64)
    assert np.isfinite(z).any()
    cloud = cloud_xyz(res.points)
    assert cloud.shape == (H, W)
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(cloud["z"], z, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(cloud["x"], (u - INTR.cx) * z / INTR.fx, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(cloud["y"], (v - INTR.cy) * z / INTR.fy, atol=1e-5, equal_nan=True)
    rgbf = cloud["rgb"].view(np.uint32)
    np.testing.assert_array_equal((rgbf >> 16) & 0xFF, rgb[..., 0])
    np.testing.assert_array_equal(rgbf & 0xFF, rgb[..., 2])


def test_segmentation_equals_transformers_and_one_pass(ckpt, rgb):
    pipe = Pipeline(depth_model=str(ckpt["metric"]), segmentation_model=str(ckpt["segmentation"]),
                    device="cpu")
    calls = {"depth": 0, "seg": 0}

    def counter(key):
        return lambda *_: calls.__setitem__(key, calls[key] + 1)

    pipe._depth.model.register_forward_hook(counter("depth"))
    pipe._seg.model.register_forward_hook(counter("seg"))

    (res,) = pipe.process([Frame(rgb, INTR)], {"segmentation", "seg_colorized", "overlay"})
    assert calls == {"depth": 0, "seg": 1}  # lazy: no depth output asked, no depth pass
    np.testing.assert_array_equal(res.segmentation, reference(ckpt["segmentation"], rgb, "seg"))
    assert res.segmentation.dtype == np.uint8
    assert pipe.labels == {0: "wall", 1: "floor", 2: "chair", 3: "table", 4: "person"}

    # Points carry the class id of each pixel; both models run once per batch of two.
    (a, b) = pipe.process([Frame(rgb, INTR), Frame(rgb[::-1].copy(), INTR)],
                          {"points", "segmentation"})
    assert calls == {"depth": 1, "seg": 2}
    np.testing.assert_array_equal(cloud_xyz(a.points)["label"], res.segmentation)
    np.testing.assert_array_equal(cloud_xyz(b.points)["label"], b.segmentation)


def test_model_output_resolution_scales_intrinsics(ckpt, rgb):
    pipe = Pipeline(depth_model=str(ckpt["metric"]), device="cpu",
                    settings=PipelineSettings(output_resolution="model"))
    (res,) = pipe.process([Frame(rgb, INTR)], {"depth", "points"})
    h, w = res.depth.shape
    assert (h, w) == (56, 56)
    assert (res.intrinsics.width, res.intrinsics.height) == (w, h)
    assert res.intrinsics.fx == pytest.approx(INTR.fx * w / W)
    assert (res.points.height, res.points.width) == (h, w)


def test_input_size_override(ckpt, rgb):
    pipe = Pipeline(depth_model=str(ckpt["relative"]), device="cpu", input_size=(32, 64),
                    settings=PipelineSettings(output_resolution="model"))
    (res,) = pipe.process([Frame(rgb)], {"relative"})
    assert res.relative.shape == (32, 64)
    with pytest.raises(PipelineConfigError, match="multiples of the patch size 16"):
        Pipeline(depth_model=str(ckpt["relative"]), device="cpu", input_size=(30, 64))


def test_start_up_errors_say_what_to_change(ckpt, tmp_path):
    with pytest.raises(PipelineConfigError, match="set depth_model and/or segmentation_model"):
        Pipeline(device="cpu")
    with pytest.raises(PipelineConfigError, match="cannot load depth model"):
        Pipeline(depth_model=str(ckpt["segmentation"]), device="cpu")
    with pytest.raises(PipelineConfigError, match="cannot load segmentation model"):
        Pipeline(segmentation_model=str(tmp_path / "missing"), device="cpu")
    with pytest.raises(PipelineConfigError, match="float16 needs a CUDA device"):
        Pipeline(depth_model=str(ckpt["relative"]), device="cpu", dtype="float16")
    if not torch.cuda.is_available():
        with pytest.raises(PipelineConfigError, match="CUDA is not available"):
            Pipeline(depth_model=str(ckpt["relative"]), device="cuda")


def test_metric_depth_marks_invalid_as_nan():
    pred = torch.tensor([[2.0, 0.0], [-1.0, float("inf")]])
    np.testing.assert_array_equal(metric_depth(pred, True, 0, 0).isnan().numpy(),
                                  [[False, True], [True, True]])
    rel = torch.tensor([[1.0, -4.0]])
    out = metric_depth(rel, False, 1.0, 1.0)
    assert out[0, 0] == pytest.approx(0.5) and torch.isnan(out[0, 1])
