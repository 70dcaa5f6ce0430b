"""Camera sensor encodings → RGB uint8, vectorised in torch on whatever device holds the bytes.

Why torch and not numpy: `Pipeline` uploads a YUV 4:2:2 frame (2 bytes per pixel) or a Bayer
mosaic (1 byte per pixel) as it arrived, a third to two thirds of the RGB bytes, and converts it
on the model's device; the host decoder (`image_codec.decode_image`) runs the same functions
on the CPU, so there is one formula for both.

Both follow what a ROS user gets from cv_bridge, which calls OpenCV's cvtColor:

- `yuv422` is UYVY (`COLOR_YUV2RGB_UYVY`), `yuv422_yuy2` is YUYV (`COLOR_YUV2RGB_YUY2`).
  OpenCV's BT.601 limited-range integer formula (color_yuv.simd.hpp, 20-bit fixed point):
      y' = max(Y - 16, 0) * 1220542,  u' = U - 128,  v' = V - 128,  h = 2**19
      R = (y' + 1673527 v' + h) >> 20
      G = (y' - 852492 v' - 409993 u' + h) >> 20
      B = (y' + 2116026 u' + h) >> 20,   each clamped to [0, 255]
  i.e. R = 1.164 (Y-16) + 1.596 (V-128), G = 1.164 (Y-16) - 0.813 (V-128) - 0.391 (U-128),
  B = 1.164 (Y-16) + 2.018 (U-128), rounded half up; the two pixels of a macropixel share U, V.
  Bit-exact with OpenCV (int32 arithmetic, arithmetic shift = floor).
- `bayer_<pattern>8`: the pattern names the 2x2 tile from the top-left pixel, row by row
  (`bayer_rggb8`: R G / G B). cv_bridge maps rggb/bggr/gbrg/grbg to OpenCV's BayerBG/RG/GR/GB
  codes (OpenCV names the tile starting at the second row and column). OpenCV's bilinear
  demosaic: a pixel keeps its own colour; the others are the rounded means of the nearest
  samples of that colour: (a + b + 1) >> 1 for two (left/right or up/down), (a + b + c + d
  + 2) >> 2 for four (the 4-neighbours for green, the diagonals for red/blue). The one-pixel
  frame has no full neighbourhood and copies its nearest interior pixel (corners the diagonal
  one), as OpenCV's Bayer2RGB_ does; images need at least 3x3 pixels.
"""

from __future__ import annotations

import torch

# encoding → bytes per pixel of the sensor buffer
YUV422 = {"yuv422": "uyvy", "yuv422_yuy2": "yuyv"}
BAYER = {f"bayer_{p}8": p for p in ("rggb", "bggr", "gbrg", "grbg")}
BYTES_PER_PIXEL: dict[str, int] = {**{e: 2 for e in YUV422}, **{e: 1 for e in BAYER}}
DEVICE_ENCODINGS = tuple(BYTES_PER_PIXEL)

_CY, _CVR, _CVG, _CUG, _CUB = 1220542, 1673527, -852492, -409993, 2116026
_SHIFT = 20
_HALF = 1 << (_SHIFT - 1)


def to_rgb(rows: torch.Tensor, encoding: str) -> torch.Tensor:
    """(B, H, W * bytes per pixel) uint8 sensor rows → (B, H, W, 3) uint8 RGB on rows' device."""
    if encoding in YUV422:
        return yuv422_to_rgb(rows, YUV422[encoding])
    if encoding in BAYER:
        return bayer_to_rgb(rows, BAYER[encoding])
    raise ValueError(f"no device conversion for {encoding!r}; known: {', '.join(DEVICE_ENCODINGS)}")


def yuv422_to_rgb(rows: torch.Tensor, order: str) -> torch.Tensor:
    """(B, H, 2W) uint8 packed 4:2:2 (`order` uyvy or yuyv) → (B, H, W, 3) uint8, BT.601."""
    batch, height, row_bytes = rows.shape
    quads = rows.reshape(batch, height, row_bytes // 4, 4).to(torch.int32)
    if order == "uyvy":  # U Y0 V Y1
        y, u, v = quads[..., 1::2], quads[..., 0:1], quads[..., 2:3]
    elif order == "yuyv":  # Y0 U Y1 V
        y, u, v = quads[..., 0::2], quads[..., 1:2], quads[..., 3:4]
    else:
        raise ValueError(f"unknown 4:2:2 order {order!r}; expected uyvy or yuyv")
    u, v = u - 128, v - 128
    luma = (y - 16).clamp_min_(0).mul_(_CY)  # (B, H, W/2, 2) against chroma (B, H, W/2, 1)
    chroma = (_HALF + _CVR * v, _HALF + _CVG * v + _CUG * u, _HALF + _CUB * u)
    rgb = torch.empty((*luma.shape, 3), dtype=torch.uint8, device=rows.device)
    for channel, term in enumerate(chroma):
        rgb[..., channel] = (luma + term).bitwise_right_shift_(_SHIFT).clamp_(0, 255)
    return rgb.reshape(batch, height, row_bytes // 2, 3)


def bayer_to_rgb(mosaic: torch.Tensor, pattern: str) -> torch.Tensor:
    """(B, H, W) uint8 Bayer mosaic (`pattern` e.g. 'rggb') → (B, H, W, 3) uint8, bilinear."""
    if sorted(pattern) != ["b", "g", "g", "r"]:
        raise ValueError(f"unknown Bayer pattern {pattern!r}")
    batch, height, width = mosaic.shape
    if height < 3 or width < 3:
        raise ValueError(f"a Bayer mosaic needs at least 3x3 pixels, got {width}x{height}")
    x = mosaic.to(torch.int16)
    inner = torch.empty((batch, height - 2, width - 2, 3), dtype=torch.uint8, device=mosaic.device)
    red_row = pattern.index("r") // 2
    for a in (0, 1):  # the four pixel types: interior pixels (1 + a + 2i, 1 + b + 2j)
        for b in (0, 1):

            def at(dy: int, dx: int, a: int = a, b: int = b) -> torch.Tensor:
                """Neighbour (dy, dx) of every interior pixel of this type."""
                return x[:, 1 + a + dy : height - 1 + dy : 2, 1 + b + dx : width - 1 + dx : 2]

            row, col = (1 + a) % 2, (1 + b) % 2
            colour = pattern[2 * row + col]
            centre = at(0, 0)
            if colour == "g":
                horizontal = (at(0, -1) + at(0, 1) + 1) >> 1
                vertical = (at(-1, 0) + at(1, 0) + 1) >> 1
                red, blue = (horizontal, vertical) if row == red_row else (vertical, horizontal)
                rgb = (red, centre, blue)
            else:
                cross = (at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1) + 2) >> 2
                diagonal = (at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1) + 2) >> 2
                rgb = (centre, cross, diagonal) if colour == "r" else (diagonal, cross, centre)
            for channel, value in enumerate(rgb):
                inner[:, a::2, b::2, channel] = value

    # the border copies its nearest interior pixel (OpenCV's rule)
    rows = (torch.arange(height, device=mosaic.device) - 1).clamp_(0, height - 3)
    cols = (torch.arange(width, device=mosaic.device) - 1).clamp_(0, width - 3)
    return inner.index_select(1, rows).index_select(2, cols)
