"""Lens models against their textbook formulas, written out here per point, and the
inversion against the forward model (and OpenCV where the system Python has it)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest
import torch

from dpt_ros.core.camera import distortion
from dpt_ros.core.camera.geometry import Intrinsics, backproject, project

PLUMB_BOB = (-0.28, 0.09, 0.0012, -0.0009, -0.012)  # a typical wide-angle robot camera
RATIONAL = (2.1, 0.9, 0.0008, -0.0005, 0.05, 2.45, 1.6, 0.2)  # k1..k3 / k4..k6 balance
FISHEYE = (-0.013, 0.021, -0.011, 0.0021)
LENSES = {"plumb_bob": PLUMB_BOB, "rational_polynomial": RATIONAL, "equidistant": FISHEYE}


def textbook(x: float, y: float, model: str, d: tuple[float, ...]) -> tuple[float, float]:
    """OpenCV's documented formulas (calib3d and fisheye pages), one point at a time."""
    if model == "equidistant":
        r = math.hypot(x, y)
        if r == 0.0:
            return x, y
        th = math.atan(r)
        th_d = th * (1 + d[0] * th**2 + d[1] * th**4 + d[2] * th**6 + d[3] * th**8)
        return x * th_d / r, y * th_d / r
    k1, k2, p1, p2, k3 = d[:5]
    k4, k5, k6 = d[5:8] if len(d) == 8 else (0.0, 0.0, 0.0)
    r2 = x * x + y * y
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    return (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)


def _grid(n: int = 25, extent: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.linspace(-extent, extent, n), np.linspace(-0.6 * extent, 0.6 * extent, n))


@pytest.mark.parametrize("model", list(LENSES))
def test_forward_model_is_the_textbook_formula(model: str) -> None:
    d = LENSES[model]
    x, y = _grid()
    xd, yd = distortion.distort(x, y, model, d)
    expected = np.array([textbook(a, b, model, d) for a, b in zip(x.ravel(), y.ravel())])
    np.testing.assert_allclose(xd.ravel(), expected[:, 0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(yd.ravel(), expected[:, 1], rtol=0, atol=1e-14)
    # torch gives the same numbers
    txd, tyd = distortion.distort(torch.from_numpy(x), torch.from_numpy(y), model, d)
    np.testing.assert_allclose(txd.numpy(), xd, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tyd.numpy(), yd, rtol=0, atol=1e-15)


@pytest.mark.parametrize("model", list(LENSES))
def test_undistort_inverts_the_forward_model_to_convergence(model: str) -> None:
    d = LENSES[model]
    xd, yd = _grid(61, 0.95)
    x, y = distortion.undistort(xd, yd, model, d)
    assert np.isfinite(x).all() and np.isfinite(y).all()
    back = np.array([textbook(a, b, model, d) for a, b in zip(x.ravel(), y.ravel())])
    assert np.abs(back[:, 0] - xd.ravel()).max() < 1e-11
    assert np.abs(back[:, 1] - yd.ravel()).max() < 1e-11


def test_points_beyond_the_fold_of_a_strong_lens_have_no_ray() -> None:
    """k1 = -0.5: r·R(r) peaks at r = 0.816 (0.544), so a distorted radius of 0.6 has no
    preimage, and 0.5 has two (0.64 and ~1.0): only the principal one is a ray; the rest
    must be NaN (no depth), not a wrong ray."""
    d = (-0.5, 0.0, 0.0, 0.0, 0.0)
    x, y = distortion.undistort(np.array([0.5, 0.6]), np.array([0.0, 0.0]), "plumb_bob", d)
    assert x[0] < 1 / math.sqrt(1.5) and math.isnan(x[1]) and math.isnan(y[1])
    assert textbook(x[0], 0.0, "plumb_bob", d)[0] == pytest.approx(0.5, abs=1e-12)


def test_fisheye_rays_beyond_90_degrees_are_nan() -> None:
    theta_d = np.array([0.5, math.pi / 2 + 0.1])  # no distortion: θd = θ
    x, _ = distortion.undistort(theta_d, np.zeros(2), "equidistant", (0.0, 0.0, 0.0, 0.0))
    assert x[0] == pytest.approx(math.tan(0.5), rel=1e-12) and math.isnan(x[1])


def test_coefficients_padding_and_unknown_models() -> None:
    assert distortion.coefficients("plumb_bob", (0.1, 0.2)) == (0.1, 0.2, 0.0, 0.0, 0.0)
    assert distortion.coefficients("plumb_bob", (0.1,) + (0.0,) * 9) == (0.1,) + (0.0,) * 4
    with pytest.raises(ValueError, match="thin-prism"):
        distortion.coefficients("rational_polynomial", (0.0,) * 8 + (0.01,) * 4)
    with pytest.raises(ValueError, match="not supported"):
        distortion.coefficients("kannala_brandt", (0.1,))


@pytest.mark.parametrize("model", list(LENSES))
def test_backprojected_points_reproject_onto_their_pixels(model: str) -> None:
    intr = Intrinsics(412.0, 415.5, 322.7, 238.1, 640, 480, model, LENSES[model])
    depth = torch.rand((480, 640), generator=torch.Generator().manual_seed(3)) * 8 + 0.3
    points = backproject(depth, intr)
    assert torch.equal(points[..., 2], depth)
    uv = project(points.double(), intr).numpy()
    u, v = np.meshgrid(np.arange(640.0), np.arange(480.0))
    finite = np.isfinite(uv).all(-1)
    assert finite.mean() > 0.999
    assert np.abs(uv[..., 0] - u)[finite].max() < 0.01
    assert np.abs(uv[..., 1] - v)[finite].max() < 0.01


OPENCV = """
import json, sys
import cv2, numpy as np
a = json.loads(sys.stdin.read())
pts = np.array(a["pts"], np.float64).reshape(-1, 1, 2)
K = np.array(a["K"], np.float64).reshape(3, 3)
D = np.array(a["D"], np.float64)
out = {}
if a["model"] == "equidistant":
    out["iter"] = cv2.fisheye.undistortPoints(pts, K, D).reshape(-1, 2).tolist()
else:
    out["default"] = cv2.undistortPoints(pts, K, D).reshape(-1, 2).tolist()
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 1000, 1e-15)
    out["iter"] = cv2.undistortPointsIter(pts, K, D, None, None, crit).reshape(-1, 2).tolist()
print(json.dumps(out))
"""


def _opencv(args: dict) -> dict:
    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        pytest.skip("no /usr/bin/python3")
    probe = subprocess.run([python, "-c", "import cv2"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("OpenCV not installed for /usr/bin/python3 (apt-get install python3-opencv)")
    done = subprocess.run([python, "-c", OPENCV], input=json.dumps(args), capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("model", list(LENSES))
def test_undistort_agrees_with_opencv_iterated_to_convergence(model: str) -> None:
    intr = Intrinsics(412.0, 415.5, 322.7, 238.1, 640, 480, model, LENSES[model])
    u, v = np.meshgrid(np.linspace(0, 639, 9), np.linspace(0, 479, 7))
    k = [intr.fx, 0, intr.cx, 0, intr.fy, intr.cy, 0, 0, 1]
    got = _opencv({"pts": np.stack([u, v], -1).reshape(-1, 2).tolist(), "K": k,
                   "D": list(intr.d), "model": model})
    x, y = distortion.undistort((u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, model, intr.d)
    ours = np.stack([x.ravel(), y.ravel()], -1)
    assert np.isfinite(ours).all()
    assert np.abs(np.array(got["iter"]) - ours).max() * intr.fx < 1e-6  # pixels
    if "default" in got:  # OpenCV's default (5 fixed-point iterations) is visibly short
        print("OpenCV undistortPoints default, max error at the corners (px):",
              np.abs(np.array(got["default"]) - ours).max() * intr.fx)
