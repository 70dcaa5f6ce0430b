"""Raw and compressed image decoding against PIL's own raw decoders and hand-built buffers."""

from __future__ import annotations

import array
import io

import numpy as np
import pytest
from PIL import Image

from dpt_ros.core.errors import KINDS, BadInput
from dpt_ros.core.image_codec import SUPPORTED_ENCODINGS, decode_compressed, decode_image

H, W = 5, 7
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (H, W, 1), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (H, W), dtype=np.uint16)


def _pad_rows(pixels: bytes, row_bytes: int, step: int) -> bytes:
    """Re-lay `pixels` with `step` bytes per row; the padding is junk that must be ignored."""
    rows = [pixels[r * row_bytes : (r + 1) * row_bytes] for r in range(H)]
    return b"".join(row + b"\xab" * (step - row_bytes) for row in rows)


# encoding → (bytes per pixel, packed pixel bytes, PIL mode/rawmode that reads those bytes)
CASES = {
    "rgb8": (3, RGB.tobytes(), ("RGB", "RGB")),
    "bgr8": (3, RGB[..., ::-1].tobytes(), ("RGB", "BGR")),
    "rgba8": (4, np.concatenate([RGB, ALPHA], -1).tobytes(), ("RGBA", "RGBA")),
    "bgra8": (4, np.concatenate([RGB[..., ::-1], ALPHA], -1).tobytes(), ("RGBA", "BGRA")),
    "mono8": (1, RGB[..., 0].tobytes(), ("L", "L")),
}


def _pil_rgb(mode: str, rawmode: str, data: bytes, step: int) -> np.ndarray:
    img = Image.frombuffer(mode, (W, H), data, "raw", rawmode, step, 1)
    return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize("encoding", sorted(CASES))
@pytest.mark.parametrize("pad", [0, 5])
def test_raw_encodings_match_pil(encoding: str, pad: int) -> None:
    bpp, pixels, (mode, rawmode) = CASES[encoding]
    step = W * bpp + pad
    data = _pad_rows(pixels, W * bpp, step)
    got = decode_image(data, encoding, W, H, step, False)
    assert got.shape == (H, W, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, _pil_rgb(mode, rawmode, data, step))
    if encoding != "mono8":
        np.testing.assert_array_equal(got, RGB)  # alpha dropped, channels in RGB order


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 3])
def test_16bit_grey_keeps_high_byte(encoding: str, bigendian: bool, pad: int) -> None:
    pixels = GREY16.astype(">u2" if bigendian else "<u2").tobytes()
    step = 2 * W + pad  # an odd step also misaligns every other row
    data = _pad_rows(pixels, 2 * W, step)
    got = decode_image(data, encoding, W, H, step, bigendian)
    expected = (GREY16 >> 8).astype(np.uint8)
    np.testing.assert_array_equal(got, np.repeat(expected[..., None], 3, axis=2))
    pil = Image.frombuffer("I;16", (W, H), data, "raw", "I;16B" if bigendian else "I;16", step, 1)
    np.testing.assert_array_equal(np.asarray(pil), GREY16)


def test_opencv_untyped_8bit_encodings() -> None:
    bgr = decode_image(RGB[..., ::-1].tobytes(), "8UC3", W, H, 3 * W, 0)
    np.testing.assert_array_equal(bgr, RGB)
    grey = decode_image(RGB[..., 1].tobytes(), "8UC1", W, H, W, 0)
    np.testing.assert_array_equal(grey, np.repeat(RGB[..., 1:2], 3, axis=2))


def test_buffer_types_from_messages() -> None:
    """rclpy hands over array('B'); bag readers give bytes / memoryview / ndarray."""
    packed = RGB[..., ::-1].tobytes()
    for data in (packed, bytearray(packed), memoryview(packed), array.array("B", packed),
                 np.frombuffer(packed, np.uint8)):
        np.testing.assert_array_equal(decode_image(data, "bgr8", W, H, 3 * W, 0), RGB)


def test_rgb8_is_a_view_and_others_one_contiguous_copy() -> None:
    buf = bytearray(_pad_rows(RGB.tobytes(), 3 * W, 3 * W + 4))
    view = decode_image(buf, "rgb8", W, H, 3 * W + 4, 0)
    assert np.shares_memory(view, np.frombuffer(buf, np.uint8))
    assert min(view.strides) > 0  # torch.from_numpy rejects negative strides
    out = decode_image(RGB[..., ::-1].tobytes(), "bgr8", W, H, 3 * W, 0)
    assert out.flags.c_contiguous and out.flags.writeable


def test_longer_data_than_needed_is_fine() -> None:
    got = decode_image(RGB.tobytes() + b"extra", "rgb8", W, H, 3 * W, 0)
    np.testing.assert_array_equal(got, RGB)


@pytest.mark.parametrize(
    ("kind", "args", "fragment"),
    [
        ("encoding", (RGB.tobytes(), "yuv422", W, H, 2 * W), "yuv422"),
        ("size", (b"", "rgb8", 0, H, 0), "0x5"),
        ("size", (b"", "rgb8", W, 0, 3 * W), "7x0"),
        ("step", (RGB.tobytes(), "rgb8", W, H, 3 * W - 1), "step 20 < width*bpp 21 for rgb8 7x5"),
        ("data", (RGB.tobytes()[:-1], "rgb8", W, H, 3 * W), "104 bytes < step*height 105"),
        ("data", (RGB.tobytes(), "rgb8", W, H, 3 * W + 2), "< step*height 115"),
    ],
)
def test_bad_input_kinds(kind: str, args: tuple, fragment: str) -> None:
    with pytest.raises(BadInput) as info:
        decode_image(*args, False)
    assert info.value.kind == kind
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_input_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown BadInput kind"):
        BadInput("bogus", "x")
    assert set(KINDS) == {"encoding", "size", "step", "data", "compressed", "camera_info"}


def test_supported_encodings_listed() -> None:
    required = {"rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1"}
    assert required <= set(SUPPORTED_ENCODINGS)


def _encode(array_: np.ndarray, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array_).save(out, format=fmt, **kwargs)
    return out.getvalue()


def test_png_is_lossless_and_format_string_ignored() -> None:
    big = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    data = _encode(big, "PNG")
    for fmt in ("png", "rgb8; png compressed bgr8", ""):
        np.testing.assert_array_equal(decode_compressed(data, fmt), big)
    np.testing.assert_array_equal(decode_compressed(array.array("B", data), "png"), big)


def test_jpeg_close_to_source() -> None:
    smooth = np.zeros((32, 48, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
    smooth[..., 1] = np.linspace(0, 255, 32, dtype=np.uint8)[:, None]
    smooth[..., 2] = 90
    got = decode_compressed(_encode(smooth, "JPEG", quality=95), "rgb8; jpeg compressed bgr8")
    assert got.shape == smooth.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - smooth).mean() < 3.0


def test_compressed_grey_and_16bit() -> None:
    grey = RNG.integers(0, 256, (6, 9), dtype=np.uint8)
    np.testing.assert_array_equal(
        decode_compressed(_encode(grey, "PNG"), "mono8; png compressed mono8"),
        np.repeat(grey[..., None], 3, axis=2),
    )
    deep = RNG.integers(0, 65536, (6, 9), dtype=np.uint16)
    got = decode_compressed(_encode(deep, "PNG"), "mono16; png compressed mono16")
    np.testing.assert_array_equal(got, np.repeat((deep >> 8).astype(np.uint8)[..., None], 3, 2))


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"not an image at all", "jpeg"),
        (b"", "png"),
        (None, "jpeg"),  # truncated jpeg, filled in below
        (b"\x00" * 12 + b"\x89PNG", "16UC1; compressedDepth png"),
    ],
)
def test_corrupt_compressed_is_bad_input(data: bytes | None, fmt: str) -> None:
    if data is None:
        data = _encode(RGB, "JPEG")[:-40]
    with pytest.raises(BadInput) as info:
        decode_compressed(data, fmt)
    assert info.value.kind == "compressed"
