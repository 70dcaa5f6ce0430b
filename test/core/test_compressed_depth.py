"""`depth_reference` through image_transport's compressed_depth plugin (issue 19): the payload
built here the way compressed_depth_image_transport's codec.cpp builds it (a 12-byte
ConfigHeader, then a 16-bit PNG; 32FC1 as inverse depth quantised with depthQuantA / B) and
read back by `decode_compressed_depth`."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from dpt_ros.core.codecs.reference_codec import decode_compressed_depth
from dpt_ros.core.errors import BadInput


def _payload(values: np.ndarray, quant_a: float = 0.0, quant_b: float = 0.0) -> bytes:
    header = np.array([(0, quant_a, quant_b)],
                      dtype=[("f", "<i4"), ("a", "<f4"), ("b", "<f4")]).tobytes()
    png = io.BytesIO()
    PILImage.fromarray(values.astype(np.uint16)).save(png, format="PNG")
    return header + png.getvalue()


def test_16uc1_millimetres_come_back_as_sent():
    mm = np.arange(12 * 9, dtype=np.uint16).reshape(9, 12) * 37
    depth, encoding = decode_compressed_depth("16UC1; compressedDepth png", _payload(mm), 10**6)
    assert encoding == "16UC1" and depth.dtype == np.uint16
    np.testing.assert_array_equal(depth, mm)


def test_32fc1_inverse_depth_quantisation():
    # codec.cpp: depthQuantA = q (q + 1), depthQuantB = 1 - depthQuantA / maxDepth,
    # stored v = depthQuantA / depth + depthQuantB (rounded), 0 where there is no depth
    q, max_depth = 100.0, 10.0
    quant_a = q * (q + 1.0)
    quant_b = 1.0 - quant_a / max_depth
    metres = np.linspace(0.5, 9.5, 40, dtype=np.float32).reshape(5, 8)
    stored = np.round(quant_a / metres + quant_b).astype(np.uint16)
    stored[0, 0] = 0
    depth, encoding = decode_compressed_depth("32FC1; compressedDepth png",
                                              _payload(stored, quant_a, quant_b), 10**6)
    assert encoding == "32FC1" and depth.dtype == np.float32 and np.isnan(depth[0, 0])
    ok = np.ones(depth.shape, bool)
    ok[0, 0] = False
    # quantisation step at depth d: d^2 / quant_a, rounded: half of it
    np.testing.assert_allclose(depth[ok], metres[ok], atol=float((metres**2).max()) / quant_a)


@pytest.mark.parametrize(("fmt", "data", "what"), [
    ("bgr8; jpeg compressed bgr8", b"x" * 20, "not one of"),
    ("16UC1; compressedDepth rvl", b"x" * 20, "png variant"),
    ("16UC1; compressedDepth png", b"x" * 8, "no image"),
    ("16UC1; compressedDepth png", b"\0" * 12 + b"not a png", "could not be decoded"),
])
def test_bad_payloads_cost_the_reference_only(fmt, data, what):
    with pytest.raises(BadInput, match=what):
        decode_compressed_depth(fmt, data, 10**6)


def test_size_checked_before_decoding():
    with pytest.raises(BadInput, match="max_pixels"):
        decode_compressed_depth("16UC1; compressedDepth png",
                                _payload(np.zeros((40, 50), np.uint16)), 1000)
