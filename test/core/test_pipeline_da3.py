"""Depth Anything 3 through the pipeline: DA3METRIC's metres follow focal / 300 with the
focal length of the frame's own camera model at the network input (fx != fy, three
resolutions, a raw lens camera through its rectified view); sky pixels become NaN and give
no points; DA3MONO stays relative. Our own random-weight checkpoints (no oracle needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _family_checkpoints import da3_checkpoint, gradient_image

from dpt_ros.config.settings import PipelineSettings
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.frame import Frame
from dpt_ros.core.pipeline.outputs import current_outputs
from dpt_ros.core.pipeline.pipeline import Pipeline
from dpt_ros.model import load_processor


def _checkpoint(directory, name: str):
    return da3_checkpoint(directory, name)


def _image(h: int, w: int) -> np.ndarray:
    return gradient_image(h, w)


@pytest.fixture(scope="module")
def metric_dir(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("da3metric"), "da3metric-large")


@pytest.fixture(scope="module")
def metric(metric_dir):
    return Pipeline(depth_model=str(metric_dir), device="cpu")


def _expected(directory, rgb: np.ndarray, fx: float, fy: float
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The analytic relation, computed apart from the pipeline: the network's output at its
    input size times ((fx * w_in / W + fy * h_in / H) / 2) / 300, bilinear onto the frame;
    and the sky mask there."""
    from dpt_ros.model import load_model

    model, proc = load_model(directory), load_processor(directory)
    x = proc.preprocess(rgb)
    h_in, w_in = x.shape[-2:]
    height, width = rgb.shape[:2]
    with torch.no_grad():
        out = model(x)
    focal = (fx * w_in / width + fy * h_in / height) / 2
    depth = proc.resize_depth(out.predicted_depth * focal / 300.0, (height, width),
                              (height, width))[0]
    sky = proc.resize_sky(out.sky, (height, width))[0] >= 0.3
    return depth, sky


@pytest.mark.parametrize(("size", "fx", "fy"), [((480, 640), 520.0, 480.0),
                                                ((240, 320), 260.0, 300.0),
                                                ((600, 450), 700.0, 640.0)])
def test_metric_depth_is_focal_over_300(metric, metric_dir, size, fx, fy):
    h, w = size
    rgb = _image(h, w)
    intr = Intrinsics(fx, fy, (w - 1) / 2, (h - 1) / 2, w, h)
    result = metric.process([Frame(rgb, intr)], {"depth", "sky"})[0]
    expected, sky = _expected(metric_dir, rgb, fx, fy)
    got = torch.from_numpy(result.depth)
    assert torch.equal(torch.isnan(got), sky)  # NaN exactly where the sky head says sky
    assert 0.05 < float(sky.float().mean()) < 0.95
    torch.testing.assert_close(got[~sky], expected[~sky], rtol=1e-5, atol=0)
    assert np.array_equal(result.sky, sky.numpy().astype(np.uint8) * 255)
    # doubling the focal lengths doubles the metres, exactly
    twice = Intrinsics(2 * fx, 2 * fy, (w - 1) / 2, (h - 1) / 2, w, h)
    doubled = metric.process([Frame(rgb, twice)], {"depth"})[0].depth
    np.testing.assert_allclose(doubled[~sky.numpy()], 2 * result.depth[~sky.numpy()],
                               rtol=1e-6)


def test_raw_lens_camera_uses_the_rectified_focal(metric):
    """A raw image is rectified with P before the model sees it: the focal lengths that
    scale its output are P's (each on its own axis), K's only when not rectifying."""
    h, w = 240, 320
    raw = Intrinsics(300.0, 310.0, 159.5, 119.5, w, h, "plumb_bob", (-0.2, 0.05, 0, 0, 0),
                     rectified=(250.0, 262.0, 159.5, 119.5))
    frame = Frame(_image(h, w), raw)
    h_in, w_in = metric._depth.processor.output_size(h, w)
    for rectify, (fx, fy) in ((True, (250.0, 262.0)), (False, (300.0, 310.0))):
        scale = metric._focal_scale([frame], [None], (h_in, w_in), rectify)
        expected = (fx * w_in / w + fy * h_in / h) / 2 / 300
        assert float(scale) == pytest.approx(expected, rel=1e-6)
    # and end to end: the published depth is NaN only where the sky or the lens leaves none
    r = metric.process([frame], {"depth", "sky"})[0]
    assert np.isfinite(r.depth[r.sky == 0]).mean() > 0.9


def test_sky_points_and_keep_sky(metric):
    h, w = 240, 320
    rgb = _image(h, w)
    intr = Intrinsics(300.0, 300.0, 159.5, 119.5, w, h)
    metric.settings.pointcloud_stride = 2  # unorganised: invalid points are dropped
    try:
        r = metric.process([Frame(rgb, intr)], {"depth", "points", "sky"})[0]
        finite = np.isfinite(r.depth[::2, ::2]).sum()
        assert r.points.width * r.points.height == finite
        assert finite < r.depth[::2, ::2].size  # the sky is gone from the cloud
        metric.settings.depth_keep_sky = True
        kept = metric.process([Frame(rgb, intr)], {"depth", "points"})[0]
        assert np.isfinite(kept.depth).all()
        assert kept.points.width == kept.depth[::2, ::2].size
    finally:
        metric.settings.pointcloud_stride = 1
        metric.settings.depth_keep_sky = False


def test_metric_without_camera_model_has_no_metres(metric):
    r = metric.process([Frame(_image(240, 320))], {"depth", "sky"})[0]
    assert r.depth is None and r.sky is not None
    assert "sky" in current_outputs(metric) and "relative" not in current_outputs(metric)


def test_mono_is_relative_depth(tmp_path):
    pipe = Pipeline(depth_model=str(_checkpoint(tmp_path, "da3mono-large")), device="cpu",
                    settings=PipelineSettings(depth_scale=2.0, depth_shift=0.5))
    assert not pipe.model_is_metric and pipe.predicts_depth and pipe.metric_focal is None
    rgb = _image(240, 320)
    r = pipe.process([Frame(rgb, Intrinsics.from_hfov(320, 240, 60.0))],
                     {"relative", "depth"})[0]
    valid = np.isfinite(r.relative)
    # calibrated like a depth-up-to-scale output: scale * prediction + shift
    np.testing.assert_allclose(r.depth[valid], 2.0 * r.relative[valid] + 0.5, rtol=1e-6)
    pipe.settings.depth_scale = 0.0
    assert "depth" not in current_outputs(pipe)  # never labelled metres uncalibrated
    assert pipe.process([Frame(rgb)], {"depth", "relative"})[0].depth is None
