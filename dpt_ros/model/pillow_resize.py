"""Pillow's resize of uint8 RGB frames, reproduced exactly, in torch on any device.

transformers' image processors resize with Pillow; `F.interpolate(antialias=True)` differs
from it by up to 2 grey levels on ~6% of values (ties rounded differently), so the
processors here use this instead: Pillow's own filter taps and 22-bit fixed-point weights,
its order of the two passes, uint8 in between. Each pass is one batched matmul of cached
block-banded weight matrices (Pillow's integer weights) with strided windows of the image,
in float64, or on the CPU in float32 with each weight split in two halves so that every sum
stays an exactly representable integer; the halves are added up in int32.

Public interface: `pillow_resize` (one (B, H, W, 3) uint8 batch → a (B, 3, h, w) view of the
resized levels), `RESAMPLE_MODES` (the PIL resampling codes it reproduces), `Workspace`
(per-thread scratch memory a processor keeps from frame to frame) and
`vertical_pass_first` (Pillow's pass order, which tests compare across Pillow versions).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# PIL resampling enum values this module reproduces (1 lanczos, 4 box, 5 hamming: no).
RESAMPLE_MODES = {0: "nearest", 2: "bilinear", 3: "bicubic"}
_PRECISION_BITS = 22  # Pillow's 8-bit resampling precision (32 - 8 - 2)


def pillow_resize(x: torch.Tensor, height: int, width: int, resample: int,
                  work: Workspace) -> torch.Tensor:
    """Pillow's resize (PIL code `resample`: 0 nearest, 2 bilinear, 3 bicubic) of
    (B, H, W, 3) uint8 images to height x width, reproduced exactly: a (B, 3, h, w) view
    (any strides, any real dtype) of the resized 0..255 levels. `work` holds the scratch
    tensors (one per thread, kept between calls)."""
    in_h, in_w = x.shape[1:3]
    if (height, width) == (in_h, in_w):
        return x.permute(0, 3, 1, 2)
    mode = RESAMPLE_MODES[resample]
    dev = str(x.device)
    if mode == "nearest":
        rows, cols = _nearest_index(in_h, height, dev), _nearest_index(in_w, width, dev)
        return x.index_select(1, rows).index_select(2, cols).permute(0, 3, 1, 2)
    passes = []  # (axis of x, out size); uint8-rounded in between, as in Pillow
    if width != in_w:
        passes.append((2, width))
    if height != in_h:
        passes.append((1, height))
    if vertical_pass_first(in_h, in_w, height, width):
        passes.reverse()
    exact32 = _float32_is_exact(x.device)
    v, axes = x, [0, 1, 2, 3]  # axes: which axis of x (b, h, w, c) each axis of v is
    for i, (axis, size) in enumerate(passes):
        if i == 0:  # layouts that copy the (b, h, w, c) frame cheaply: see _band_pass
            rows, rest = axis == 1, ([0, 2, 3] if axis == 1 else [0, 3, 1])
        else:
            rows, rest = False, [a for a in axes if a != axis]
        band = _band(v.shape[axes.index(axis)], size, mode, rows, exact32, dev)
        v = _band_pass(v.permute(*(axes.index(a) for a in [axis, *rest])), band, work, i)
        axes = [axis, *rest]
    return v.permute(*(axes.index(a) for a in (0, 3, 1, 2)))


def _bilinear_filter(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _bicubic_filter(x: np.ndarray) -> np.ndarray:
    a = -0.5  # Pillow's (Keys) bicubic; same operation order as its C code
    x = np.abs(x)
    inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    outer = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, inner, np.where(x < 2.0, outer, 0.0))


_FILTERS = {"bilinear": (_bilinear_filter, 1.0), "bicubic": (_bicubic_filter, 2.0)}


@functools.lru_cache(maxsize=64)
def _pil_coeffs(in_size: int, out_size: int, mode: str
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` (Resample.c), vectorised over
    outputs: per output its first source index and tap count, and (out, K) int64 weights in
    22-bit fixed point (0 past the output's last tap)."""
    flt, support = _FILTERS[mode]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support * filterscale
    ksize = math.ceil(support) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize)
    w = flt(((taps[None, :] + xmin[:, None]) - center[:, None] + 0.5) * (1.0 / filterscale))
    w = np.where(taps[None, :] < xmax[:, None], w, 0.0)
    total = np.zeros(out_size)
    for k in range(ksize):  # sequential sum over the taps, as in C (numpy's sum is pairwise)
        total = total + w[:, k]
    w = np.where(total[:, None] != 0.0, w / np.where(total == 0.0, 1.0, total)[:, None], w)
    fixed = np.trunc(np.where(w < 0, -0.5, 0.5) + w * (1 << _PRECISION_BITS)).astype(np.int64)
    return xmin, xmax, fixed[:, :int(xmax.max())]


_MAX_BLOCK = 32  # outputs per block of a banded pass, at most


def vertical_pass_first(in_h: int, in_w: int, out_h: int, out_w: int) -> bool:
    """Pillow >= 13's pass order (python-pillow/Pillow#9549): vertical first when the height
    loses more than twice as many pixels as the width; older Pillow always went horizontal."""
    return out_h < in_h and in_h - out_h > 2 * (in_w - out_w)


class Workspace(threading.local):
    """Scratch tensors of one thread, kept from frame to frame: the resize needs tens of MB
    of them, and fresh CPU allocations that size cost page faults (milliseconds a frame)."""

    def __init__(self) -> None:
        self.tensors: dict[Any, tuple[Any, torch.Tensor]] = {}

    def get(self, key: Any, spec: Any, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The tensor kept under `key` if it was made for `spec`, else a new one, `make()`."""
        kept = self.tensors.get(key)
        if kept is None or kept[0] != spec:
            kept = (spec, make())
            self.tensors[key] = kept
        return kept[1]

    def scratch(self, role: str, shape: tuple[int, ...], dtype: torch.dtype,
                device: torch.device) -> torch.Tensor:
        """An uninitialised `shape` tensor from the one flat buffer of (role, dtype, device),
        grown as needed: both passes use the same ones (their lifetimes do not overlap)."""
        numel = math.prod(shape)
        key = (role, dtype, device)
        flat = self.tensors.get(key, (None, None))[1]
        if flat is None or flat.numel() < numel:
            flat = torch.empty(numel, dtype=dtype, device=device)
            self.tensors[key] = (None, flat)
        return flat[:numel].view(shape)

    def __reduce__(self) -> tuple[type, tuple[()]]:  # copies and pickles start empty
        return Workspace, ()


@dataclass(frozen=True, eq=False)  # compared (and hashed) by identity
class _Band:
    """One Pillow pass as a block-banded matrix applied with one batched matmul."""

    size_out: int
    rows: bool  # source (N, R), windows span rows; else (R, N), windows span columns
    pad: int  # zero inputs before the first real one
    padded: int  # source length along the resampled axis, pads included
    stride: int  # block b reads inputs [b*stride, b*stride + length) of the padded source
    length: int
    block: int  # outputs per block
    weights: torch.Tensor  # float64 (nb, block, length) or float32 (nb, 2, block, length)
    split: bool  # float32, weights = hi + lo: hi a multiple of 2**s, 0 <= lo < 2**s
    clip: bool  # negative weights: sums may leave 0..255


def _float32_is_exact(device: torch.device) -> bool:
    """Whether float32 matmuls here are IEEE float32 (not TF32 / bf16 reduced precision):
    on the CPU unless oneDNN was told to trade precision; never assumed on accelerators."""
    if device.type != "cpu":
        return False
    try:
        precision = torch.backends.mkldnn.matmul.fp32_precision
        if precision == "none":
            precision = torch.backends.fp32_precision
    except (AttributeError, RuntimeError):  # older torch: no per-backend setting
        try:
            return torch.get_float32_matmul_precision() == "highest"
        except RuntimeError:
            return False
    return precision in ("ieee", "none")


def _block_layout(lo: np.ndarray, hi: np.ndarray, in_size: int
                  ) -> tuple[float, int, int, int, int, int]:
    """(cost, block, stride, pad, length, padded) of the cheapest regular block windows: outputs
    j in blocks of `block`, block b reading `length` inputs from b*stride - pad. lo/hi: per
    output its first and one-past-last tap."""
    out_size = len(lo)
    scale = in_size / out_size
    best = None
    for block in range(1, min(_MAX_BLOCK, out_size) + 1):
        nb = -(-out_size // block)
        j = np.minimum(np.arange(nb * block), out_size - 1).reshape(nb, block)
        first, last = lo[j].min(1), hi[j].max(1)
        for stride in sorted({math.floor(block * scale), math.ceil(block * scale)}):
            base = np.arange(nb) * stride
            pad = max(0, int((base - first).max()))
            length = int((last - base).max()) + pad
            padded = max(pad + in_size, (nb - 1) * stride + length)
            # multiply-adds, plus a rough per-block and per-row overhead of the batched matmul
            cost = nb * (block + 4) * (length + 8)
            if best is None or cost < best[0]:
                best = (cost, block, stride, pad, length, padded)
    assert best is not None
    return best


def _split_shift(fixed: np.ndarray) -> int | None:
    """Smallest s such that weights = hi + lo, hi = (w >> s) << s and 0 <= lo < 2**s, keep
    every float32 sum of the pass exact: 255 Σ|hi| <= 2**(24+s) and 255 Σ lo <= 2**24 (every
    partial sum is then an integer float32 holds exactly, whatever the summation order), and
    their int32 recombination cannot overflow. None when no s does (float64 instead)."""
    if 255 * int(np.abs(fixed).sum(-1).max()) + (1 << 24) + (1 << 21) >= 1 << 31:
        return None
    for shift in range(_PRECISION_BITS + 1):
        hi = fixed >> shift
        if 255 * int(np.abs(hi).sum(-1).max()) <= 1 << 24:
            return shift if 255 * int((fixed - (hi << shift)).sum(-1).max()) <= 1 << 24 else None
    return None


@functools.lru_cache(maxsize=64)
def _band(in_size: int, out_size: int, mode: str, rows: bool, exact32: bool, device: str
          ) -> _Band:
    """Pillow's taps of one pass laid out as dense (block x length) weight blocks on regularly
    spaced windows of a zero-padded source, so that no gather is needed (the windows are a
    strided view). Weights are Pillow's fixed-point integers, exact in either dtype."""
    xmin, xmax, fixed = _pil_coeffs(in_size, out_size, mode)
    _, block, stride, pad, length, padded = _block_layout(xmin, xmin + xmax, in_size)
    nb = -(-out_size // block)
    dense = np.zeros((nb, block, length), np.int64)
    out, tap = np.nonzero(np.arange(fixed.shape[1])[None, :] < xmax[:, None])
    b = out // block
    dense[b, out % block, xmin[out] + tap + pad - b * stride] = fixed[out, tap]
    shift = _split_shift(dense) if exact32 else None
    if shift is None:
        weights = torch.from_numpy(dense.astype(np.float64))
    else:
        hi = (dense >> shift) << shift
        weights = torch.from_numpy(np.stack([hi, dense - hi], 1).astype(np.float32))
    return _Band(out_size, rows, pad, padded, stride, length, block, weights.to(device),
                 shift is not None, bool((fixed < 0).any() or 255 * fixed.sum(-1).max()
                                         + (1 << 21) >= 256 << _PRECISION_BITS))


def _band_pass(v: torch.Tensor, band: _Band, work: Workspace, step: int) -> torch.Tensor:
    """One Pillow pass over the leading axis of `v` (0..255 levels, any strides and dtype):
    Σ level · weight + ½ in 22-bit fixed point, floored, clipped to 0..255, exactly as
    Resample.c, as one batched matmul over all blocks and all other axes. `v` is first
    copied (converted, transposed as needed) into a zero-padded source: (N, R) with the
    resampled axis leading (`rows`) or (R, N) with it last, whichever the caller's layout
    copies cheaply. Returns the (out, *v.shape[1:]) levels, a view of a `work` tensor."""
    size, rest = v.shape[0], tuple(v.shape[1:])
    weights, dev = band.weights, v.device
    nb, length, n = weights.shape[0], band.length, band.padded
    r = math.prod(rest)
    lo, hi = band.pad, band.pad + size
    # The pads stay zero: only [lo:hi] is ever written to a buffer made for this band.
    shape = (n, *rest) if band.rows else (*rest, n)
    src = work.get(("src", step), (band, shape, dev),
                   lambda: torch.zeros(shape, dtype=weights.dtype, device=dev))
    if band.rows:
        src[lo:hi].copy_(v)
        windows = src.as_strided((nb, length, r), (band.stride * r, r, 1))
    else:
        v = v.movedim(0, -1)
        if v.dtype == torch.uint8:  # the camera frame: deinterleave as uint8 (faster)
            v = work.scratch("frame", tuple(v.shape), torch.uint8, dev).copy_(v)
        src[..., lo:hi].copy_(v)
        windows = src.as_strided((nb, length, r), (band.stride, 1, n))
    rows = band.block * (2 if band.split else 1)
    # The previous pass's output, `v`, is in "out"/"acc": read (copied to `src`) by now.
    acc = work.scratch("acc", (nb, rows, r), weights.dtype, dev)
    torch.bmm(weights.view(nb, rows, length), windows, out=acc)
    if band.split:  # float32 sums of the two weight halves, exact; added up in int32
        sums = work.scratch("sums", (nb, 2, band.block, r), torch.int32, dev)
        sums.view(acc.shape).copy_(acc)
        out = work.scratch("out", (nb, band.block, r), torch.int32, dev)
        torch.add(sums[:, 0], sums[:, 1], out=out).add_(1 << (_PRECISION_BITS - 1))
        out.bitwise_right_shift_(_PRECISION_BITS)
    else:  # float64: every sum is exact
        out = acc.add_(1 << (_PRECISION_BITS - 1)).mul_(2.0 ** -_PRECISION_BITS).floor_()
    if band.clip:
        out.clamp_(0, 255)
    return out.view(nb * band.block, r)[:band.size_out].view(band.size_out, *rest)


@functools.lru_cache(maxsize=64)
def _nearest_index(in_size: int, out_size: int, device: str) -> torch.Tensor:
    """Pillow's NEAREST (ImagingScaleAffine): a coordinate accumulated in float64 steps."""
    step = in_size / out_size
    coord = np.cumsum(np.concatenate([[step * 0.5], np.full(out_size - 1, step)]))
    return torch.from_numpy(np.clip(coord.astype(np.int64), 0, in_size - 1)).to(device)
