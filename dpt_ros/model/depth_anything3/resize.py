"""OpenCV's `cv2.resize` of uint8 images (INTER_AREA down, INTER_CUBIC up) in torch.

The official DA3 preprocessing resizes with cv2 (area when shrinking, bicubic when any side
grows). cv2 is not a dependency of this package and would pull every frame back to the
host, so both filters are rebuilt here with cv2's own arithmetic, on the device: area
weights as `computeResizeAreaTab` (the block mean, with its rounding, for whole-number
factors), cubic taps as `interpolateCubic` (A = -0.75) with replicated borders, all in
float32 and summed tap by tap in cv2's order (horizontal pass, then vertical), rounded
once to uint8 half to even. Each pass is a short loop over the taps (at most a few), each
step one gather and multiply-add over the whole batch. The tests compare against cv2.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

_CUBIC_A = np.float32(-0.75)


@lru_cache(maxsize=64)
def _area_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(out, K) source indices and float32 weights of cv2's computeResizeAreaTab, in its
    order (ascending source index); unused slots have weight 0."""
    scale = in_size / out_size
    taps: list[list[tuple[int, float]]] = []
    for dx in range(out_size):  # once per size pair (cached): a few hundred entries
        fsx1 = dx * scale
        fsx2 = fsx1 + scale
        cell = min(scale, in_size - fsx1)
        sx1, sx2 = math.ceil(fsx1), math.floor(fsx2)
        sx2 = min(sx2, in_size - 1)
        sx1 = min(sx1, sx2)
        row = []
        if sx1 - fsx1 > 1e-3:
            row.append((sx1 - 1, (sx1 - fsx1) / cell))
        row += [(sx, 1.0 / cell) for sx in range(sx1, sx2)]
        if fsx2 - sx2 > 1e-3:
            row.append((sx2, min(min(fsx2 - sx2, 1.0), cell) / cell))
        taps.append(row)
    return _pack(taps)


def _pack(taps: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray]:
    k = max(len(row) for row in taps)
    index = np.zeros((len(taps), k), dtype=np.int64)
    weight = np.zeros((len(taps), k), dtype=np.float32)
    for i, row in enumerate(taps):
        for j, (src, w) in enumerate(row):
            index[i, j], weight[i, j] = src, w
    return index, weight


def _cubic_coeffs(x: np.ndarray) -> np.ndarray:
    """cv2 interpolateCubic in float32: (n, 4) taps for fractional offsets x."""
    x = x.astype(np.float32)
    a = _CUBIC_A
    one = np.float32(1)
    c0 = ((a * (x + one) - 5 * a) * (x + one) + 8 * a) * (x + one) - 4 * a
    c1 = ((a + 2) * x - (a + 3)) * x * x + one
    c2 = ((a + 2) * (one - x) - (a + 3)) * (one - x) * (one - x) + one
    c3 = one - c0 - c1 - c2
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.float32)


@lru_cache(maxsize=64)
def _cubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(out, 4) source indices (border replicated) and float32 cubic taps, as cv2."""
    scale = 1.0 / (out_size / in_size)  # cv2: scale_x = 1 / inv_scale_x, in double
    fx = ((np.arange(out_size) + 0.5) * scale - 0.5).astype(np.float32)
    sx = np.floor(fx).astype(np.int64)
    coeffs = _cubic_coeffs(fx - sx.astype(np.float32))
    index = np.clip(sx[:, None] + np.arange(-1, 3)[None, :], 0, in_size - 1)
    return index, coeffs


def _apply(x: torch.Tensor, taps: tuple[np.ndarray, np.ndarray], dim: int) -> torch.Tensor:
    """Resample float32 `x` along `dim`: sum_k x[index[:, k]] * weight[:, k], k in order."""
    index = torch.from_numpy(taps[0]).to(x.device)
    weight = torch.from_numpy(taps[1]).to(x.device)
    shape = [1] * x.dim()
    shape[dim] = weight.shape[0]
    acc = None
    for k in range(index.shape[1]):  # a handful of taps; each step covers every pixel
        term = x.index_select(dim, index[:, k]) * weight[:, k].view(shape)
        acc = term if acc is None else acc + term
    return acc


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x).clamp(0, 255).to(torch.uint8)  # cvRound: half to even


def resize_area(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """cv2.resize(..., INTER_AREA) of (B, C, H, W) uint8 to a size no larger on either axis."""
    in_h, in_w = x.shape[-2:]
    if (in_h, in_w) == (height, width):
        return x
    if in_h % height == 0 and in_w % width == 0:  # cv2's resizeAreaFast
        fy, fx = in_h // height, in_w // width
        blocks = x.reshape(*x.shape[:-2], height, fy, width, fx).to(torch.int32).sum((-3, -1))
        if (fy, fx) == (2, 2):  # its SIMD 8-bit path: (sum + 2) >> 2
            return ((blocks + 2) >> 2).to(torch.uint8)
        return _to_uint8(blocks.float() * float(np.float32(1.0 / (fy * fx))))
    v = _apply(x.float(), _area_taps(in_w, width), -1)
    return _to_uint8(_apply(v, _area_taps(in_h, height), -2))


def resize_cubic(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """cv2.resize(..., INTER_CUBIC) of (B, C, H, W) uint8 (cv2 4.x: float taps, one
    rounding after both passes)."""
    v = _apply(x.float(), _cubic_taps(x.shape[-1], width), -1)
    return _to_uint8(_apply(v, _cubic_taps(x.shape[-2], height), -2))


def cv2_resize(x: torch.Tensor, height: int, width: int, upscale: bool) -> torch.Tensor:
    """The DA3 rule: INTER_CUBIC when the image grows on some side, else INTER_AREA."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    return resize_cubic(x, height, width) if upscale else resize_area(x, height, width)
