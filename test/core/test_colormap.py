"""Colour maps against entries of the published tables, and robust ranges against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpt_ros.core.render.colormap import COLORMAPS, colorize, robust_range

# Entries of the published 256-entry tables (RGB in [0, 1]): Google's turbo LUT and
# matplotlib's _cm_listed.py. Indices other than 0 and 255 lie between control points.
REFERENCE = {
    "turbo": {
        0: (0.18995, 0.07176, 0.23217), 3: (0.20415, 0.10652, 0.31844),
        45: (0.26878, 0.54995, 0.99303), 100: (0.24797, 0.96423, 0.54303),
        131: (0.67462, 0.98246, 0.21960), 203: (0.94538, 0.36638, 0.07461),
        252: (0.51989, 0.02756, 0.00780), 255: (0.47960, 0.01583, 0.01055),
    },
    "inferno": {
        0: (0.001462, 0.000466, 0.013866), 3: (0.004547, 0.003392, 0.030909),
        45: (0.217949, 0.036615, 0.383522), 100: (0.565854, 0.143567, 0.408258),
        131: (0.752794, 0.225706, 0.319085), 203: (0.987337, 0.637890, 0.034916),
        252: (0.971162, 0.985282, 0.602154), 255: (0.988362, 0.998364, 0.644924),
    },
    "viridis": {
        0: (0.267004, 0.004874, 0.329415), 3: (0.271305, 0.019942, 0.347269),
        45: (0.263663, 0.237631, 0.518762), 100: (0.166617, 0.463708, 0.558119),
        131: (0.124395, 0.578002, 0.548287), 203: (0.468053, 0.818921, 0.323998),
        252: (0.964894, 0.902323, 0.123941), 255: (0.993248, 0.906157, 0.143936),
    },
}


def _ramp_bgr(name: str) -> np.ndarray:
    """The 256 LUT entries as BGR uint8, read through colorize() on 0..255."""
    values = torch.arange(256, dtype=torch.float32).reshape(16, 16)
    return colorize(values, 0.0, 255.0, name).reshape(256, 3).numpy()


@pytest.mark.parametrize("name", COLORMAPS)
def test_matches_published_tables(name: str) -> None:
    bgr = _ramp_bgr(name).astype(float)
    for index, rgb in REFERENCE[name].items():
        expected = np.array(rgb[::-1]) * 255.0
        assert np.abs(bgr[index] - expected).max() <= 1.5, (name, index, bgr[index], expected)


@pytest.mark.parametrize("name", ["inferno", "viridis"])
def test_luminance_increases(name: str) -> None:
    bgr = _ramp_bgr(name).astype(float)
    luma = 0.0722 * bgr[:, 0] + 0.7152 * bgr[:, 1] + 0.2126 * bgr[:, 2]
    assert np.all(np.diff(luma) >= -0.5)  # never darker by more than rounding
    assert np.all(np.diff(luma[::4]) > 0)  # and strictly brighter over every 4 entries
    assert luma[-1] - luma[0] > 150


@pytest.mark.parametrize("name", COLORMAPS)
def test_clipping_endpoints_and_non_finite(name: str) -> None:
    lut = _ramp_bgr(name)
    values = torch.tensor([[-5.0, 1.0, 3.0, 9.0], [math.nan, math.inf, -math.inf, 2.0]])
    out = colorize(values, 1.0, 3.0, name)
    assert out.dtype == torch.uint8 and out.shape == (2, 4, 3)
    out = out.numpy()
    np.testing.assert_array_equal(out[0, 0], lut[0])  # below vmin: clipped to the start
    np.testing.assert_array_equal(out[0, 1], lut[0])
    np.testing.assert_array_equal(out[0, 2], lut[255])
    np.testing.assert_array_equal(out[0, 3], lut[255])  # above vmax: clipped to the end
    np.testing.assert_array_equal(out[1, :3], np.zeros((3, 3), np.uint8))  # NaN / ±inf black
    np.testing.assert_array_equal(out[1, 3], lut[128])  # halfway: 127.5 rounds up


def test_linear_mapping_and_degenerate_range() -> None:
    lut = _ramp_bgr("turbo")
    values = torch.tensor([[10.0, 12.5, 20.0]])
    out = colorize(values, 10.0, 20.0, "turbo").numpy()[0]
    np.testing.assert_array_equal(out, lut[[0, 64, 255]])  # 63.75 → 64
    flat = colorize(values, 5.0, 5.0, "turbo").numpy()[0]
    np.testing.assert_array_equal(flat, lut[[0, 0, 0]])


def test_unknown_colormap() -> None:
    with pytest.raises(ValueError, match="jet"):
        colorize(torch.zeros(2, 2), 0.0, 1.0, "jet")


def test_robust_range_matches_numpy_percentile() -> None:
    gen = np.random.default_rng(1)
    values = gen.gamma(2.0, 1.5, size=(120, 160)).astype(np.float32)
    values[gen.random(values.shape) < 0.1] = np.nan
    values[0, :5] = np.inf
    values[1, :5] = -np.inf
    finite = values[np.isfinite(values)]
    for percentiles in [(2.0, 98.0), (0.0, 100.0), (13.7, 61.1), (50.0, 50.0)]:
        low, high = robust_range(torch.from_numpy(values), percentiles)
        expected = np.percentile(finite.astype(np.float64), percentiles)
        assert (low, high) == pytest.approx(tuple(expected), rel=1e-5)


def test_robust_range_subsamples_large_inputs() -> None:
    gen = np.random.default_rng(2)
    values = gen.uniform(1.0, 11.0, size=(480, 640)).astype(np.float32)
    low, high = robust_range(torch.from_numpy(values))
    exact = np.percentile(values, [2.0, 98.0])
    assert abs(low - exact[0]) < 0.05 and abs(high - exact[1]) < 0.05


def test_robust_range_without_finite_values() -> None:
    assert robust_range(torch.full((4, 4), math.nan)) == (0.0, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    values = torch.rand(48, 64) * 10
    values[3, 4] = math.nan
    for name in COLORMAPS:
        gpu = colorize(values.cuda(), 1.0, 9.0, name)
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), colorize(values, 1.0, 9.0, name))
    assert robust_range(values.cuda()) == pytest.approx(robust_range(values), rel=1e-6)
