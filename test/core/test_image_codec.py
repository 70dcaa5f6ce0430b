"""Raw and compressed image decoding against PIL's own raw decoders and hand-built buffers:
host encodings, 16-bit grey scaled by the camera's bit depth, YUV / Bayer parsing (the
conversion itself is tested in core/test_color_convert.py), size limits and decoder failures
(decompression bombs) as BadInput."""

from __future__ import annotations

import array
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from dpt_ros.config.settings import DecodeOptions
from dpt_ros.config.vocabulary import DEFAULT_MAX_PIXELS
from dpt_ros.core.codecs.image_codec import (
    SUPPORTED_ENCODINGS,
    RawImage,
    decode_compressed,
    decode_image,
    parse_image,
    scale_to_8bit,
)
from dpt_ros.core.errors import KINDS, BadInput

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
def test_16bit_grey_scaled_to_8bit(encoding: str, bigendian: bool, pad: int) -> None:
    pixels = GREY16.astype(">u2" if bigendian else "<u2").tobytes()
    step = 2 * W + pad  # an odd step also misaligns every other row
    data = _pad_rows(pixels, 2 * W, step)
    got = decode_image(data, encoding, W, H, step, bigendian)
    expected = np.floor(GREY16 / 65535.0 * 255.0 + 0.5).astype(np.uint8)  # input.bits = 16
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
        ("encoding", (RGB.tobytes(), "bayer_rggb16", W, H, 2 * W), "bayer_rggb16"),
        ("size", (RGB.tobytes(), "yuv422", W, H, 2 * W), "even width"),
        ("size", (RGB.tobytes(), "bayer_grbg8", W, 2, W), "3x3"),
        ("step", (RGB.tobytes(), "yuv422", 6, H, 11), "step 11 < width*bpp 12"),
        ("data", (RGB.tobytes()[: 6 * 2 * H - 1], "yuv422_yuy2", 6, H, 12), "< step*height"),
        ("data", (RGB.tobytes()[:34], "bayer_bggr8", W, H, W), "34 bytes < step*height 35"),
        # a header claiming gigapixels is refused as such, before its (missing) data is read
        ("size", (b"", "rgb8", 100_000, 100_000, 300_000), "input.max_pixels"),
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
    assert set(KINDS) == {"encoding", "size", "step", "data", "compressed", "camera_info",
                          "reference", "distortion"}


def test_supported_encodings_listed() -> None:
    required = {"rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1", "yuv422",
                "yuv422_yuy2", "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8"}
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
    scaled = np.floor(deep / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(got, np.repeat(scaled[..., None], 3, 2))
    twelve = RNG.integers(0, 4096, (6, 9), dtype=np.uint16)
    twelve[0, :3] = (0, 2048, 4095)
    got = decode_compressed(_encode(twelve, "PNG"), "mono16; png", DecodeOptions(bits=12))
    assert tuple(got[0, :3, 0]) == (0, 128, 255)
    np.testing.assert_array_equal(got[..., 0], np.floor(twelve / 4095 * 255 + 0.5))


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


# ------------------------------------------------------- bit depth of 16-bit grey
@pytest.mark.parametrize("bits", [10, 12, 16])
def test_mono16_scaled_by_camera_bit_depth(bits: int) -> None:
    top = 2**bits - 1
    values = np.array([[0, 1, top // 2, top // 2 + 1, top - 1, top, min(top + 1, 65535), 65535]],
                      np.uint16)
    data = values.astype("<u2").tobytes()
    got = decode_image(data, "mono16", values.shape[1], 1, 2 * values.shape[1], 0,
                       DecodeOptions(bits=bits))[..., 0]
    expected = np.floor(np.minimum(values, top) / top * 255.0 + 0.5)  # clipped, not wrapped
    np.testing.assert_array_equal(got, expected)
    assert got[0, 5] == 255  # full scale is white: a 12-bit camera's 4095 is 255, not 15


def test_12bit_big_endian_16uc1() -> None:
    twelve = RNG.integers(0, 4096, (H, W), dtype=np.uint16)
    twelve[0, 0] = 4095
    got = decode_image(twelve.astype(">u2").tobytes(), "16UC1", W, H, 2 * W, 1,
                       DecodeOptions(bits=12))
    assert got[0, 0, 0] == 255
    np.testing.assert_array_equal(got[..., 1], np.floor(twelve / 4095.0 * 255.0 + 0.5))


def test_scale_rule_is_exact_rounding() -> None:
    v = np.arange(65536, dtype=np.uint32)
    for bits in (8, 10, 12, 14, 16):
        top = 2**bits - 1
        want = np.floor(np.minimum(v, top) * 255.0 / top + 0.5)
        np.testing.assert_array_equal(scale_to_8bit(v, bits), want)
    np.testing.assert_array_equal(scale_to_8bit(np.arange(256) * 257, 16), np.arange(256))


# ------------------------------------------------------------- YUV / Bayer parsing
@pytest.mark.parametrize(("encoding", "bpp"), [("yuv422", 2), ("yuv422_yuy2", 2),
                                               ("bayer_rggb8", 1), ("bayer_gbrg8", 1)])
@pytest.mark.parametrize("pad", [0, 3])
def test_sensor_encodings_stay_raw_with_padding_cut(encoding: str, bpp: int, pad: int) -> None:
    width = 6
    pixels = RNG.integers(0, 256, (H, width * bpp), dtype=np.uint8)
    step = width * bpp + pad
    buf = bytearray(_pad_rows(pixels.tobytes(), width * bpp, step))
    raw = parse_image(buf, encoding, width, H, step, 0)
    assert isinstance(raw, RawImage) and raw.encoding == encoding
    assert (raw.height, raw.width) == (H, width)
    np.testing.assert_array_equal(raw.rows, pixels)
    assert np.shares_memory(raw.rows, np.frombuffer(buf, np.uint8))  # no host copy
    host = decode_image(bytes(buf), encoding, width, H, step, 0)  # read-only buffer is fine
    assert host.shape == (H, width, 3) and host.dtype == np.uint8


def test_host_encodings_do_not_come_back_raw() -> None:
    assert not isinstance(parse_image(RGB.tobytes(), "rgb8", W, H, 3 * W, 0), RawImage)


# ------------------------------------------------------------- limits and bombs
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height grey pixels but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def test_max_pixels_is_checked_from_the_header_before_decoding() -> None:
    # 8000 x 8000 = 64 MP: above the 50 MP default, below Pillow's own 89 MP guard. Decoding
    # would fail on the missing data ("compressed"); "size" proves nothing was decoded.
    assert 8000 * 8000 > DEFAULT_MAX_PIXELS
    with pytest.raises(BadInput) as info:
        decode_compressed(png_header_only(8000, 8000), "png")
    assert info.value.kind == "size" and "input.max_pixels 50000000" in str(info.value)
    small = _encode(RGB, "PNG")
    with pytest.raises(BadInput, match=r"35 pixels, more than input\.max_pixels 34"):
        decode_compressed(small, "png", DecodeOptions(max_pixels=H * W - 1))
    assert decode_compressed(small, "png", DecodeOptions(max_pixels=H * W)).shape == (H, W, 3)
    with pytest.raises(BadInput, match="max_pixels"):
        decode_image(RGB.tobytes(), "rgb8", W, H, 3 * W, 0, DecodeOptions(max_pixels=34))


def test_decompression_bomb_error_is_bad_input() -> None:
    """Above 2 x PIL.Image.MAX_IMAGE_PIXELS Pillow raises DecompressionBombError (not an
    OSError) while opening: bad input of this frame, whatever input.max_pixels says."""
    from PIL import Image as PILImage

    assert 20000 * 10000 > 2 * PILImage.MAX_IMAGE_PIXELS
    with pytest.raises(BadInput) as info:
        decode_compressed(png_header_only(20000, 10000), "png",
                          DecodeOptions(max_pixels=10**9))
    assert info.value.kind == "size" and "decompression-bomb" in str(info.value)
    assert isinstance(info.value.__cause__, PILImage.DecompressionBombError)


def test_decompression_bomb_warning_as_error_is_bad_input() -> None:
    from PIL import Image as PILImage

    pixels = 10000 * 9000
    assert PILImage.MAX_IMAGE_PIXELS < pixels < 2 * PILImage.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. python -W error: the warning is raised
        with pytest.raises(BadInput) as info:
            decode_compressed(png_header_only(10000, 9000), "png",
                              DecodeOptions(max_pixels=10**9))
    assert info.value.kind == "size"
    assert isinstance(info.value.__cause__, PILImage.DecompressionBombWarning)


@pytest.mark.parametrize("error", [struct.error("unpack"), ZeroDivisionError("0"),
                                   IndexError("tile"), MemoryError()])
def test_any_decoder_exception_is_bad_input(monkeypatch, error: Exception) -> None:
    from PIL import Image as PILImage

    def broken_open(*args, **kwargs):
        raise error

    monkeypatch.setattr(PILImage, "open", broken_open)
    with pytest.raises(BadInput) as info:
        decode_compressed(_encode(RGB, "PNG"), "png")
    assert info.value.kind == "compressed" and type(error).__name__ in str(info.value)
