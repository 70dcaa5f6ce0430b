"""Raw `sensor_msgs/Image` buffers and compressed payloads → RGB uint8 (H, W, 3) or sensor rows.

The raw path reads the message buffer in place (np.frombuffer + reshape views): rgb8 and rgba8
come back as views of the caller's buffer (positive strides, possibly non-contiguous when rows
are padded or alpha is skipped), every other host encoding costs exactly one copy into a fresh
contiguous array. Channel swaps are done as three per-channel assignments, which measured ~4x
faster than `np.ascontiguousarray(a[..., ::-1])` at 640x480 and never yield negative strides
(which `torch.from_numpy` rejects).

YUV 4:2:2 and Bayer frames are checked here and handed on as `RawImage` (their rows, padding
cut off): `Pipeline` uploads those bytes and converts them on the model's device
(`color_convert`); `decode_image` runs the same conversion on the host for callers that want
RGB now.

16-bit grey (`mono16`, `16UC1`, 16-bit PNG) is scaled by the camera's bit depth
(`DecodeOptions.bits`, the node's `input.bits`): round(min(v, 2^bits - 1) * 255 / (2^bits - 1)),
a fixed rule, so brightness never flickers with the frame's content.

Every decoder failure becomes `BadInput` (this frame only); sizes are checked against
`DecodeOptions.max_pixels` from the header, before any pixel is decoded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from dpt_ros.config.settings import DEFAULT_DECODE, DecodeOptions
from dpt_ros.core.codecs import color_convert
from dpt_ros.core.errors import BadInput

# encoding → (bytes per pixel, source channel for R, G, B); None marks the grey encodings.
_LAYOUT: dict[str, tuple[int, tuple[int, int, int] | None]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "8UC3": (3, (2, 1, 0)),  # OpenCV's untyped 3-channel images are BGR
    "mono8": (1, None),
    "8UC1": (1, None),
    "mono16": (2, None),
    "16UC1": (2, None),
}
SUPPORTED_ENCODINGS = (*_LAYOUT, *color_convert.DEVICE_ENCODINGS)

@dataclass(frozen=True)
class RawImage:
    """A frame in its sensor encoding, converted to RGB on the model's device.

    `rows` is (H, W * bytes per pixel) uint8 without row padding (usually a view of the
    message buffer); `encoding` is one of `color_convert.DEVICE_ENCODINGS`.
    """

    rows: np.ndarray
    encoding: str

    @property
    def height(self) -> int:
        return int(self.rows.shape[0])

    @property
    def width(self) -> int:
        return int(self.rows.shape[1]) // color_convert.BYTES_PER_PIXEL[self.encoding]


def _as_bytes(data: object) -> np.ndarray:
    """A flat uint8 view of any buffer (bytes, array.array, memoryview, contiguous ndarray)."""
    if isinstance(data, np.ndarray):
        if not data.flags.c_contiguous:
            data = np.ascontiguousarray(data)
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def _check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise BadInput(
            "size",
            f"{what} {width}x{height} has {width * height} pixels, more than input.max_pixels "
            f"{max_pixels}; raise input.max_pixels if the camera really is that large",
        )


def _bytes_per_pixel(encoding: str) -> int:
    if encoding in _LAYOUT:
        return _LAYOUT[encoding][0]
    if encoding in color_convert.BYTES_PER_PIXEL:
        return color_convert.BYTES_PER_PIXEL[encoding]
    raise BadInput(
        "encoding",
        f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}",
    )


def _rows(
    data: object, encoding: str, width: int, height: int, step: int, max_pixels: int
) -> tuple[np.ndarray, int]:
    """(height, width*bpp) uint8 view of the pixel bytes with row padding cut off, and bpp."""
    bpp = _bytes_per_pixel(encoding)
    if width <= 0 or height <= 0:
        raise BadInput("size", f"image size {width}x{height} is empty")
    _check_pixels(width, height, max_pixels, f"{encoding} image")
    if encoding in color_convert.YUV422 and width % 2:
        raise BadInput("size", f"{encoding} needs an even width (2 pixels share U and V); "
                               f"got {width}x{height}")
    if encoding in color_convert.BAYER and (width < 3 or height < 3):
        raise BadInput("size", f"{encoding} needs at least 3x3 pixels; got {width}x{height}")
    return row_view(data, width * bpp, height, step, f"{encoding} {width}x{height}"), bpp


def row_view(data: object, row_bytes: int, height: int, step: int, what: str,
             kind: str | None = None) -> np.ndarray:
    """(height, row_bytes) uint8 view of a row-padded buffer (`step` bytes a row), checked:
    BadInput `kind` (default 'step' / 'data') naming `what` when the step is shorter than a
    row or the buffer shorter than step * height. Images, depth references and point clouds
    (row_step) all come this way."""
    if step < row_bytes:
        raise BadInput(kind or "step", f"step {step} < width*bpp {row_bytes} for {what}")
    flat = _as_bytes(data)
    if flat.size < step * height:
        raise BadInput(kind or "data", f"data has {flat.size} bytes < step*height "
                                       f"{step * height} for {what}")
    return flat[: step * height].reshape(height, step)[:, :row_bytes]


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    out = np.empty((*grey.shape, 3), dtype=np.uint8)
    out[..., 0] = grey
    out[..., 1] = grey
    out[..., 2] = grey
    return out


def scale_to_8bit(values: np.ndarray, bits: int) -> np.ndarray:
    """Integer samples with `bits` significant bits → uint8, rounded to nearest, clipped.

    round(v * 255 / top) with top = 2^bits - 1, in integers: (v * 255 + top // 2) // top is
    exact because top is odd (no ties), so 4095 → 255 at 12 bits and 257 k → k at 16.
    """
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in [1, 16], got {bits}")
    top = (1 << bits) - 1
    v = np.minimum(values.astype(np.uint32, copy=False), top)
    return ((v * 255 + top // 2) // top).astype(np.uint8)


def parse_image(
    data: object, encoding: str, width: int, height: int, step: int, is_bigendian: int | bool,
    options: DecodeOptions = DEFAULT_DECODE,
) -> np.ndarray | RawImage:
    """RGB uint8 (H, W, 3) for host encodings, `RawImage` for the device-converted ones
    (YUV 4:2:2, Bayer); raises `BadInput` when the buffer is unusable."""
    rows, bpp = _rows(data, encoding, int(width), int(height), int(step), options.max_pixels)
    if encoding in color_convert.BYTES_PER_PIXEL:
        return RawImage(rows, encoding)
    order = _LAYOUT[encoding][1]
    if bpp == 2:  # 16-bit grey: the first byte of a sample is the high one in big-endian
        high, low = (rows[:, 0::2], rows[:, 1::2]) if is_bigendian else (rows[:, 1::2],
                                                                          rows[:, 0::2])
        values = (high.astype(np.uint32) << 8) | low
        return _grey_to_rgb(scale_to_8bit(values, options.bits))
    if order is None:
        return _grey_to_rgb(rows)
    pixels = rows.reshape(int(height), int(width), bpp)
    if order == (0, 1, 2):
        return pixels[..., :3]
    out = np.empty((int(height), int(width), 3), dtype=np.uint8)
    for dst, src in enumerate(order):
        out[..., dst] = pixels[..., src]
    return out


def raw_to_rgb(raw: RawImage) -> np.ndarray:
    """The device conversion of `raw`, run on the host CPU: RGB uint8 (H, W, 3)."""
    rows = torch.from_numpy(np.array(raw.rows))  # a writable copy (message buffers are not)
    return color_convert.to_rgb(rows[None], raw.encoding)[0].numpy()


def decode_image(
    data: object, encoding: str, width: int, height: int, step: int, is_bigendian: int | bool,
    options: DecodeOptions = DEFAULT_DECODE,
) -> np.ndarray:
    """Decode a raw image buffer to RGB uint8 (H, W, 3) on the host; raises `BadInput`."""
    image = parse_image(data, encoding, width, height, step, is_bigendian, options)
    return raw_to_rgb(image) if isinstance(image, RawImage) else image


def decode_compressed(
    data: object, format: str = "", options: DecodeOptions = DEFAULT_DECODE
) -> np.ndarray:
    """Decode a `sensor_msgs/CompressedImage` payload (jpeg/png, or any image file Pillow
    reads) to RGB uint8 (H, W, 3).

    `format` is only checked for `compressedDepth` (a depth payload, not an image); the codec
    itself is detected from the bytes. The size in the header is checked against
    `options.max_pixels` before decoding. Any failure of the decoder, of whatever exception
    type (Pillow's DecompressionBombError, a DecompressionBombWarning raised as an error,
    struct/zlib errors of a corrupt file, ...), is `BadInput` of this frame.
    """
    if "compresseddepth" in format.lower():
        raise BadInput("compressed", f"format {format!r} is a depth image, not a colour image")
    what = format or "compressed"
    try:
        with Image.open(io.BytesIO(memoryview(_as_bytes(data)))) as img:
            _check_pixels(img.width, img.height, options.max_pixels, f"{what} image")
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                grey = np.clip(np.asarray(img, dtype=np.int64), 0, None)
                return _grey_to_rgb(scale_to_8bit(grey, options.bits))
            return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    except BadInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadInput("size", f"{what} image rejected by Pillow's decompression-bomb "
                               f"check: {err}") from err
    except Exception as err:  # any decoder failure is bad input of this frame only
        raise BadInput("compressed", f"cannot decode {what} image: "
                                     f"{type(err).__name__}: {err}") from err
