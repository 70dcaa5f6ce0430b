"""Back-projection against the pinhole model, and camera_info validation."""

from __future__ import annotations

import math

import pytest
import torch

from dpt_ros.core.camera.geometry import Intrinsics, backproject, validate_intrinsics
from dpt_ros.core.errors import BadInput

INTR = Intrinsics(fx=500.0, fy=520.0, cx=319.5, cy=241.25, width=640, height=480)


def _depth() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand((INTR.height, INTR.width), generator=gen) * 9.0 + 0.5


@pytest.mark.parametrize(
    ("u", "v"), [(0, 0), (639, 0), (0, 479), (639, 479), (320, 240), (17, 401)]
)
def test_known_pixels_follow_pinhole_formula(u: int, v: int) -> None:
    depth = _depth()
    points = backproject(depth, INTR)
    z = float(depth[v, u])
    expected = ((u - INTR.cx) * z / INTR.fx, (v - INTR.cy) * z / INTR.fy, z)
    assert points[v, u].tolist() == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_projects_back_onto_its_pixel() -> None:
    depth = _depth()
    points = backproject(depth, INTR).double()
    x, y, z = points.unbind(-1)
    u = INTR.fx * x / z + INTR.cx
    v = INTR.fy * y / z + INTR.cy
    rows, cols = torch.meshgrid(
        torch.arange(INTR.height, dtype=torch.float64),
        torch.arange(INTR.width, dtype=torch.float64),
        indexing="ij",
    )
    # 1e-5 relative to the pixel's offset from the principal point (float32 points carry
    # ~6e-8 relative error, so 3e-5 px at the image edge is the representable limit)
    assert bool(((u - cols).abs() <= 1e-5 * (1.0 + (cols - INTR.cx).abs())).all())
    assert bool(((v - rows).abs() <= 1e-5 * (1.0 + (rows - INTR.cy).abs())).all())
    torch.testing.assert_close(z, depth.double())


def test_optical_frame_axes() -> None:
    """REP 103 optical frame: +x right, +y down, +z forward."""
    points = backproject(torch.full((INTR.height, INTR.width), 2.0), INTR)
    assert float(points[240, 639, 0]) > 0 > float(points[240, 0, 0])
    assert float(points[479, 320, 1]) > 0 > float(points[0, 320, 1])
    assert bool((points[..., 2] == 2.0).all())


def test_nan_and_inf_depth_propagate() -> None:
    depth = _depth()
    depth[10, 20] = math.nan
    depth[30, 40] = math.inf
    points = backproject(depth, INTR)
    assert bool(points[10, 20].isnan().all())
    assert not bool(points[30, 40].isfinite().any())
    assert points.dtype == torch.float32 and points.shape == (480, 640, 3)
    assert int(points.isnan().any(-1).sum()) == 1


def test_float16_depth_and_size_mismatch() -> None:
    out = backproject(_depth().half(), INTR)
    assert out.dtype == torch.float32
    with pytest.raises(BadInput) as info:
        backproject(torch.ones(240, 320), INTR)
    assert info.value.kind == "camera_info"
    with pytest.raises(ValueError):
        backproject(torch.ones(1, 480, 640), INTR)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_stays_on_cuda() -> None:
    depth = _depth().cuda()
    out = backproject(depth, INTR)
    assert out.device == depth.device
    torch.testing.assert_close(out.cpu(), backproject(depth.cpu(), INTR))


def test_validate_accepts_matching_and_fills_zero_size() -> None:
    assert validate_intrinsics(INTR, 640, 480) is INTR
    unsized = Intrinsics(500.0, 500.0, 100.0, 80.0, 0, 0)
    filled = validate_intrinsics(unsized, 200, 160)
    assert (filled.width, filled.height, filled.fx, filled.cx) == (200, 160, 500.0, 100.0)


@pytest.mark.parametrize(
    ("intr", "size", "fragment"),
    [
        (Intrinsics(0.0, 500.0, 320.0, 240.0, 640, 480), (640, 480), "fx=0.0"),
        (Intrinsics(500.0, -1.0, 320.0, 240.0, 640, 480), (640, 480), "fy=-1.0"),
        (Intrinsics(math.nan, 500.0, 320.0, 240.0, 640, 480), (640, 480), "fx=nan"),
        (Intrinsics(500.0, 500.0, math.inf, 240.0, 640, 480), (640, 480), "cx=inf"),
        (Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480), (1280, 960), "640x480"),
        (Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 0), (640, 480), "640x0"),
    ],
)
def test_validate_rejects(intr: Intrinsics, size: tuple[int, int], fragment: str) -> None:
    with pytest.raises(BadInput) as info:
        validate_intrinsics(intr, *size)
    assert info.value.kind == "camera_info"
    assert fragment in str(info.value)


def test_a_lens_model_that_cannot_be_inverted_is_bad_input_not_a_crash() -> None:
    lens = Intrinsics(100.0, 100.0, 15.5, 11.5, 32, 24, "thin_prism_fisheye", (0.1,) * 12)
    assert not lens.supported
    with pytest.raises(BadInput, match="thin_prism_fisheye") as err:
        backproject(torch.ones(24, 32), lens)
    assert err.value.kind == "distortion"
