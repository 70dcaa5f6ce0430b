"""Depth Pro through the pipeline: metres = 1 / (inverse * W / f) with the frame's own
focal length (three resolutions, fx != fy: Depth Pro reads fx, as transformers' W / f);
without a camera model its FOV model's focal length, smoothed over the camera's frames,
marked estimated, giving points; a real camera model wins from its first frame. Our own
random-weight checkpoint (no transformers needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _family_checkpoints import depth_pro_checkpoint, gradient_image

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.frame import Frame
from dpt_ros.core.pipeline.pipeline import Pipeline
from dpt_ros.model import load_model, load_processor
from dpt_ros.model.outputs import DepthEstimatorOutput


def _checkpoint(directory, fov: bool = True):
    return depth_pro_checkpoint(directory, fov)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return gradient_image(h, w, seed)


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("depth_pro"))


@pytest.fixture
def pipe(directory):
    return Pipeline(depth_model=str(directory), device="cpu")


def _analytic(directory, rgb: np.ndarray, fx: float) -> torch.Tensor:
    """transformers' post-processing with the FOV that focal length fx means."""
    model, proc = load_model(directory), load_processor(directory)
    with torch.no_grad():
        out = model(proc.preprocess(rgb))
    width = rgb.shape[1]
    fov = torch.tensor([math.degrees(2 * math.atan(0.5 * width / fx))])
    out = DepthEstimatorOutput(predicted_depth=out.predicted_depth, field_of_view=fov)
    return proc.post_process_depth_estimation(out, target_sizes=[rgb.shape[:2]])[0][
        "predicted_depth"]


@pytest.mark.parametrize(("size", "fx", "fy"), [((240, 320), 300.0, 280.0),
                                                ((480, 640), 520.0, 560.0),
                                                ((360, 270), 250.0, 240.0)])
def test_metres_follow_the_frames_focal_length(pipe, directory, size, fx, fy):
    h, w = size
    rgb = _image(h, w)
    intr = Intrinsics(fx, fy, (w - 1) / 2, (h - 1) / 2, w, h)
    r = pipe.process([Frame(rgb, intr)], {"depth"})[0]
    assert not r.intrinsics_estimated
    torch.testing.assert_close(torch.from_numpy(r.depth), _analytic(directory, rgb, fx),
                               rtol=1e-5, atol=0)
    twice = pipe.process([Frame(rgb, Intrinsics(2 * fx, fy, (w - 1) / 2, (h - 1) / 2, w, h))],
                         {"depth"})[0]
    np.testing.assert_allclose(twice.depth, 2 * r.depth, rtol=1e-5)


def test_estimated_focal_without_camera_model_then_real_one_wins(pipe, directory):
    h, w = 240, 320
    model, proc = load_model(directory), load_processor(directory)
    fovs = []
    for seed in (0, 1):
        with torch.no_grad():
            fovs.append(float(model(proc.preprocess(_image(h, w, seed))).field_of_view[0]))
    first = pipe.process([Frame(_image(h, w, 0), camera="cam")], {"depth", "points"})[0]
    assert first.intrinsics_estimated and first.points is not None
    f0 = 0.5 * w / math.tan(math.radians(fovs[0]) / 2)
    assert first.intrinsics.fx == pytest.approx(f0, rel=1e-5)
    assert first.intrinsics.fy == first.intrinsics.fx
    assert (first.intrinsics.cx, first.intrinsics.cy) == ((w - 1) / 2, (h - 1) / 2)
    torch.testing.assert_close(torch.from_numpy(first.depth),
                               _analytic(directory, _image(h, w, 0), f0), rtol=1e-5, atol=0)
    second = pipe.process([Frame(_image(h, w, 1), camera="cam")], {"depth"})[0]
    r0, r1 = f0 / w, 0.5 / math.tan(math.radians(fovs[1]) / 2)
    assert second.intrinsics.fx == pytest.approx((r0 + 0.1 * (r1 - r0)) * w, rel=1e-5)
    assert pipe.estimated_focal("cam") == pytest.approx(second.intrinsics.fx / w)
    # a real camera model: used from its first frame, not marked estimated
    real = Intrinsics(400.0, 400.0, 159.5, 119.5, w, h)
    r = pipe.process([Frame(_image(h, w, 1), real, camera="cam")], {"depth"})[0]
    assert not r.intrinsics_estimated and r.intrinsics == real
    torch.testing.assert_close(torch.from_numpy(r.depth),
                               _analytic(directory, _image(h, w, 1), 400.0), rtol=1e-5, atol=0)


def test_points_scale_with_the_estimated_focal(pipe):
    """Back-projection uses the estimated camera: X = (u - cx) Z / f."""
    h, w = 240, 320
    r = pipe.process([Frame(_image(h, w), camera="p")], {"depth", "points"})[0]
    xyz = np.frombuffer(r.points.data.tobytes(), dtype=np.float32).reshape(h, w, -1)[..., :3]
    u = np.arange(w)[None, :]
    expected_x = (u - r.intrinsics.cx) * r.depth / r.intrinsics.fx
    np.testing.assert_allclose(xyz[..., 0], expected_x, rtol=1e-4, atol=1e-5)


def test_without_fov_model_no_camera_no_metres(tmp_path):
    pipe = Pipeline(depth_model=str(_checkpoint(tmp_path, fov=False)), device="cpu")
    assert pipe.uses_focal and not pipe.has_fov
    r = pipe.process([Frame(_image(240, 320))], {"depth"})[0]
    assert r.depth is None and not r.intrinsics_estimated
