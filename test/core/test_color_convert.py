"""YUV 4:2:2 and Bayer → RGB (dpt_ros.core.codecs.color_convert) against references written here:

- YUV: the BT.601 limited-range equations derived from Kr = 0.299, Kb = 0.114 (ITU-R BT.601),
  evaluated per pixel in float64 with U and V picked from the pixel's macropixel by index.
  OpenCV (and so cv_bridge) uses 20-bit fixed-point roundings of those coefficients
  (1.164, 1.596, ...), so the two agree within 1 grey level (stated tolerance), and Y below
  16 is taken as 16 in both (OpenCV's rule).
- Bayer: a normalised convolution (the textbook bilinear demosaic: per colour plane, the
  [1 2 1; 2 4 2; 1 2 1] / [0 1 0; 1 4 1; 0 1 0] kernels over that colour's samples, divided by
  the weights present), rounded half up, with the one-pixel border copied from the nearest
  interior pixel. Exact equality.
- OpenCV itself (Debian's python3-opencv, run by /usr/bin/python3 in a subprocess, numpy 1.x)
  with the codes cv_bridge uses: exact equality. Skipped with a reason where it is absent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from _color_reference import bayer_reference, packed, yuv_reference

from dpt_ros.core.codecs.color_convert import BAYER, DEVICE_ENCODINGS, YUV422, to_rgb

RNG = np.random.default_rng(7)
SYSTEM_PYTHON = "/usr/bin/python3"
CV_BRIDGE_CODES = {  # cv_bridge's getConversionCode for these encodings → RGB
    "yuv422": "COLOR_YUV2RGB_UYVY",
    "yuv422_yuy2": "COLOR_YUV2RGB_YUY2",
    "bayer_rggb8": "COLOR_BayerBG2RGB",
    "bayer_bggr8": "COLOR_BayerRG2RGB",
    "bayer_gbrg8": "COLOR_BayerGR2RGB",
    "bayer_grbg8": "COLOR_BayerGB2RGB",
}


def convert(rows: np.ndarray, encoding: str) -> np.ndarray:
    return to_rgb(torch.from_numpy(rows.copy())[None], encoding)[0].numpy()


def _macropixels() -> list[np.ndarray]:
    """(H, W/2, 4) macropixels as (U, Y0, V, Y1): every (U, V) pair once, and a small frame."""
    every_uv = np.empty((256, 256, 4), np.uint8)  # 256 x 512 pixels
    every_uv[..., 0] = np.arange(256)[None, :]
    every_uv[..., 2] = np.arange(256)[:, None]
    every_uv[..., 1] = RNG.integers(0, 256, (256, 256))
    every_uv[..., 3] = RNG.integers(0, 256, (256, 256))
    return [every_uv, RNG.integers(0, 256, (9, 7, 4), dtype=np.uint8)]


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("encoding", sorted(YUV422))
def test_yuv422_equals_bt601_within_one_level(encoding: str) -> None:
    for quads in _macropixels():
        rows = packed(quads, encoding)
        got, ref = convert(rows, encoding), yuv_reference(rows, encoding)
        assert got.shape == ref.shape and got.dtype == np.uint8
        diff = np.abs(got.astype(int) - ref)
        assert diff.max() <= 1
        assert (diff == 0).mean() > 0.9  # measured 96.6 %: the rounded coefficients differ
        # from the exact ones by < 0.2 levels, which crosses a rounding boundary now and then


def test_yuv422_known_values() -> None:
    """Black, white and a saturated red/blue as every BT.601 table lists them."""
    cases = {  # (Y, U, V) -> RGB
        (16, 128, 128): (0, 0, 0),
        (235, 128, 128): (255, 255, 255),
        (81, 90, 240): (255, 0, 0),
        (41, 240, 110): (0, 0, 255),
        (0, 128, 128): (0, 0, 0),  # below 16: clamped, not negative
    }
    for (y, u, v), rgb in cases.items():
        rows = np.array([[u, y, v, y]], np.uint8)
        got = convert(rows, "yuv422")
        assert np.abs(got.astype(int) - np.array([rgb, rgb])).max() <= 1, (y, u, v, got)


@pytest.mark.parametrize("encoding", sorted(BAYER))
@pytest.mark.parametrize("size", [(3, 3), (7, 9), (8, 10), (37, 50)])
def test_bayer_equals_bilinear_reference(encoding: str, size: tuple[int, int]) -> None:
    mosaic = RNG.integers(0, 256, size, dtype=np.uint8)
    got = convert(mosaic, encoding)
    np.testing.assert_array_equal(got, bayer_reference(mosaic, BAYER[encoding]))


@pytest.mark.parametrize("encoding", sorted(BAYER))
def test_bayer_of_a_flat_colour_is_that_colour(encoding: str) -> None:
    """The pattern names are right: a mosaic sampled from one RGB colour demosaics to it."""
    colour = np.array([200, 90, 30], np.uint8)
    pattern = BAYER[encoding]
    yy, xx = np.mgrid[0:6, 0:8]
    index = np.array(["rgb".index(c) for c in pattern])[(yy % 2) * 2 + xx % 2]
    mosaic = colour[index]
    assert (convert(mosaic, encoding) == colour).all()


def test_batch_is_per_frame_and_dtype_is_checked() -> None:
    frames = RNG.integers(0, 256, (3, 6, 8), dtype=np.uint8)
    batch = to_rgb(torch.from_numpy(frames), "bayer_gbrg8")
    for i in range(3):
        np.testing.assert_array_equal(batch[i].numpy(), convert(frames[i], "bayer_gbrg8"))
    with pytest.raises(ValueError, match="no device conversion"):
        to_rgb(torch.from_numpy(frames), "nv12")
    with pytest.raises(ValueError, match="3x3"):
        to_rgb(torch.from_numpy(frames[:, :2]), "bayer_rggb8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("encoding", DEVICE_ENCODINGS)
def test_cuda_equals_cpu(encoding: str) -> None:
    rows = RNG.integers(0, 256, (2, 30, 40 * (2 if encoding in YUV422 else 1)), dtype=np.uint8)
    cpu = to_rgb(torch.from_numpy(rows), encoding)
    cuda = to_rgb(torch.from_numpy(rows).cuda(), encoding).cpu()
    assert torch.equal(cpu, cuda)


# ------------------------------------------------------------ OpenCV oracle
def _system_opencv() -> str | None:
    """Why OpenCV cannot be used here, or None when /usr/bin/python3 imports cv2."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import cv2"], capture_output=True, text=True)
    if probe.returncode:
        return "python3-opencv not installed for /usr/bin/python3 (apt-get install python3-opencv)"
    return None


_OPENCV_SCRIPT = """
import sys, numpy as np, cv2
data = np.load(sys.argv[1])
out = {}
for name in data.files:
    encoding, code = name.split("|")[:2]
    rows = data[name]
    src = rows.reshape(rows.shape[0], -1, 2) if encoding.startswith("yuv") else rows
    out[name] = cv2.cvtColor(np.ascontiguousarray(src), getattr(cv2, code))
np.savez(sys.argv[2], **out)
"""


def test_equals_opencv_with_cv_bridge_codes(tmp_path: Path) -> None:
    reason = _system_opencv()
    if reason:
        pytest.skip(reason)
    cases = {}
    for encoding, code in CV_BRIDGE_CODES.items():
        for i, (h, w) in enumerate([(37, 50), (3, 4), (64, 128)]):
            bpp = 2 if encoding in YUV422 else 1
            cases[f"{encoding}|{code}|{i}"] = RNG.integers(0, 256, (h, w * bpp), dtype=np.uint8)
    np.savez(tmp_path / "in.npz", **cases)
    subprocess.run([SYSTEM_PYTHON, "-c", _OPENCV_SCRIPT, str(tmp_path / "in.npz"),
                    str(tmp_path / "out.npz")], check=True, capture_output=True)
    opencv = np.load(tmp_path / "out.npz")
    for key, rows in cases.items():
        encoding = key.split("|")[0]
        np.testing.assert_array_equal(convert(rows, encoding), opencv[key], err_msg=key)
