"""DPT image processor in torch: transformers' `DPTImageProcessor` semantics on any device.

Pre-processing runs on the device the frames are on (uint8 in, one batch at once), so a camera
frame uploaded as uint8 is never copied back to the host. Resizing reproduces Pillow (which
the reference uses) exactly rather than approximately: Pillow's own filter taps and 22-bit
fixed-point weights, its order of the two passes, uint8 in between. Each pass is one batched
matmul of cached block-banded weight matrices (Pillow's integer weights) with strided windows
of the image, in float64, or on the CPU in float32 with each weight split in two halves so
that every sum stays an exactly representable integer; the halves are added up in int32.
`F.interpolate(antialias=True)` differs from Pillow by up to 2 grey levels on ~6% of values
(ties rounded differently), hence this. Rescale and normalise go through a per-channel
256-entry lookup table built with the reference's own arithmetic (float64 rescale →
float32, float32 normalise): all of it is bit-exact.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from dpt_ros.model.hf_api import ImageProcessorAPI

IMAGENET_STANDARD = (0.5, 0.5, 0.5)
PROCESSOR_TYPE = "DPTImageProcessor"
# PIL resampling enum values this module reproduces (1 lanczos, 4 box, 5 hamming: no).
RESAMPLE_MODES = {0: "nearest", 2: "bilinear", 3: "bicubic"}
_PRECISION_BITS = 22  # Pillow's 8-bit resampling precision (32 - 8 - 2)
_BOOL_FIELDS = ("do_resize", "keep_aspect_ratio", "do_rescale", "do_normalize", "do_pad",
                "do_reduce_labels")


def _constrain_to_multiple_of(val: float, multiple: int) -> int:
    """The reference's rounding: Python's round-half-even to a multiple (val is never < 0,
    so its floor/ceil fallbacks for max/min bounds never apply)."""
    return int(round(val / multiple) * multiple)


def resize_output_size(height: int, width: int, size: tuple[int, int], keep_aspect_ratio: bool,
                       multiple: int) -> tuple[int, int]:
    """transformers' DPT `get_resize_output_image_size`, same float expressions in same order."""
    output_height, output_width = size
    scale_height = output_height / height
    scale_width = output_width / width
    if keep_aspect_ratio:
        # scale as little as possible
        if abs(1 - scale_width) < abs(1 - scale_height):
            scale_height = scale_width
        else:
            scale_width = scale_height
    return (_constrain_to_multiple_of(scale_height * height, multiple),
            _constrain_to_multiple_of(scale_width * width, multiple))


def _pad_amounts(size: int, divisor: int) -> tuple[int, int]:
    """Centre padding up to a multiple of `divisor`; the odd pixel goes after (as reference)."""
    pad = math.ceil(size / divisor) * divisor - size
    return pad // 2, pad - pad // 2


def check_flags(processor: Any, names: tuple[str, ...]) -> None:
    """The boolean fields `names` of a processor config are true or false (numpy's too)."""
    for name in names:
        if not isinstance(getattr(processor, name), (bool, np.bool_)):
            raise _bad(name, getattr(processor, name), "true or false")


def processor_kwargs(cls: Any, config: dict[str, Any], type_keys: tuple[str, ...],
                     keep_null: tuple[str, ...] = ()) -> dict[str, Any]:
    """The init arguments of processor class `cls` from a `preprocessor_config.json` dict,
    once the `type_keys` entries name a type `cls` accepts (its `accepted_types` prefixes;
    its `processor_type` in the error). Unknown keys are ignored; null means "the class
    default", as in transformers, except for the fields in `keep_null` (null is a value)."""
    for key in type_keys:
        kind = config.get(key)
        if kind is not None and not str(kind).startswith(cls.accepted_types):
            raise _bad(key, kind, f"a {cls.processor_type}")
    # dataclasses.fields, not __dataclass_fields__: that one also lists the ClassVars
    names = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
    return {k: config[k] for k in names
            if k in config and (config[k] is not None or k in keep_null)}


def rescale_levels(rescale_factor: float, do_rescale: bool) -> torch.Tensor:
    """(256,) float32: each uint8 level rescaled with the reference's arithmetic (float64
    multiply, float32 result), or as is without do_rescale."""
    v = torch.arange(256, dtype=torch.float64)
    return (v * rescale_factor).float() if do_rescale else v.float()


def channel_offsets() -> torch.Tensor:
    """(1,3,1,1) int32: where each channel's 256 entries start in a (3*256,) table."""
    return torch.arange(0, 3 * 256, 256, dtype=torch.int32).view(1, 3, 1, 1)


def check_normalisation(processor: Any) -> None:
    """rescale_factor, image_mean and image_std of a processor config: validated, and mean
    / std stored as 3-tuples (shared by the DPT and ZoeDepth processors)."""
    factor = processor.rescale_factor
    if not _is_number(factor) or not math.isfinite(factor) or factor <= 0:
        raise _bad("rescale_factor", factor, "a positive number")
    object.__setattr__(processor, "image_mean", _channels("image_mean", processor.image_mean))
    std = _channels("image_std", processor.image_std)
    if any(s == 0 for s in std):
        raise _bad("image_std", processor.image_std, "non-zero")
    object.__setattr__(processor, "image_std", std)


def _bad(name: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"preprocessor field '{name}': unsupported value {value!r} ({expected})")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _channels(name: str, value: Any) -> tuple[float, float, float]:
    if _is_number(value):
        value = [value] * 3
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.shape != (3,) or not np.isfinite(arr).all():
        raise _bad(name, value, "a number or 3 finite numbers")
    return tuple(float(v) for v in arr)


def _size(value: Any) -> dict[str, int]:
    if _is_int(value) and value > 0:
        return {"height": int(value), "width": int(value)}
    if isinstance(value, dict) and set(value) >= {"height", "width"}:
        h, w = value["height"], value["width"]
        if _is_int(h) and _is_int(w) and h > 0 and w > 0:
            return {"height": int(h), "width": int(w)}
    raise _bad("size", value, "an int or {'height': int, 'width': int}")


@dataclass(frozen=True)
class DPTImageProcessor(ImageProcessorAPI):
    """Pre-/post-processing of the DPT family (DPT, DPT-Hybrid, DPT-DINOv2, DPT-BEiT,
    DPT-Swinv2, Depth Anything). Callable as transformers' processors are
    (`processor(images=..., return_tensors="pt")`, see hf_api.ImageProcessorAPI)."""

    do_resize: bool = True
    size: dict[str, int] = field(default_factory=lambda: {"height": 384, "width": 384})
    keep_aspect_ratio: bool = False
    ensure_multiple_of: int = 1
    resample: int = 3
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, float, float] = IMAGENET_STANDARD
    image_std: tuple[float, float, float] = IMAGENET_STANDARD
    do_pad: bool = False
    size_divisor: int | None = None
    do_reduce_labels: bool = False
    _luts: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _work: _Workspace = field(default_factory=lambda: _Workspace(), init=False, repr=False,
                              compare=False)
    # `image_processor_type` prefixes from_dict accepts, and the type to_dict writes
    accepted_types: ClassVar[tuple[str, ...]] = ("DPT",)
    processor_type: ClassVar[str] = PROCESSOR_TYPE

    def __post_init__(self) -> None:
        check_flags(self, _BOOL_FIELDS)
        object.__setattr__(self, "size", _size(self.size))
        if not _is_int(self.ensure_multiple_of) or self.ensure_multiple_of < 1:
            raise _bad("ensure_multiple_of", self.ensure_multiple_of, "a positive int")
        if not _is_int(self.resample) or (self.do_resize and self.resample not in RESAMPLE_MODES):
            raise _bad("resample", self.resample, "PIL 0 nearest, 2 bilinear or 3 bicubic")
        check_normalisation(self)
        if self.size_divisor is not None and (not _is_int(self.size_divisor)
                                              or self.size_divisor < 1):
            raise _bad("size_divisor", self.size_divisor, "null or a positive int")

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> DPTImageProcessor:
        """From a Hugging Face `preprocessor_config.json` dict; unknown keys are ignored."""
        # null means "the class default", as in transformers; size_divisor null is a value.
        kwargs = processor_kwargs(cls, config, ("image_processor_type", "feature_extractor_type"),
                                  keep_null=("size_divisor",))
        if config.get("do_center_crop"):
            raise _bad("do_center_crop", config["do_center_crop"], "DPT never crops")
        return cls(**kwargs)

    __hash__ = ImageProcessorAPI.__hash__  # `size` is a dict: hash the canonical config

    def to_dict(self) -> dict[str, Any]:
        """A `preprocessor_config.json` dict that transformers and `from_dict` read back."""
        return {
            "image_processor_type": self.processor_type,
            "do_resize": bool(self.do_resize),
            "size": dict(self.size),
            "keep_aspect_ratio": bool(self.keep_aspect_ratio),
            "ensure_multiple_of": int(self.ensure_multiple_of),
            "resample": int(self.resample),
            "do_rescale": bool(self.do_rescale),
            "rescale_factor": float(self.rescale_factor),
            "do_normalize": bool(self.do_normalize),
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_pad": bool(self.do_pad),
            "size_divisor": self.size_divisor,
            "do_reduce_labels": bool(self.do_reduce_labels),
        }

    # ------------------------------------------------------------------ pre-processing

    def _resized_size(self, height: int, width: int) -> tuple[int, int]:
        if not self.do_resize:
            return height, width
        h, w = resize_output_size(height, width, (self.size["height"], self.size["width"]),
                                  self.keep_aspect_ratio, self.ensure_multiple_of)
        if h <= 0 or w <= 0:
            raise ValueError(f"a {height}x{width} image resizes to an empty {h}x{w} one")
        return h, w

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Model input (h, w) for a `height` x `width` frame: resize, then padding if any."""
        if height <= 0 or width <= 0:
            raise ValueError(f"image size must be positive, got {height}x{width}")
        h, w = self._resized_size(height, width)
        if self.do_pad and self.size_divisor is not None:
            h, w = (math.ceil(v / self.size_divisor) * self.size_divisor for v in (h, w))
        return h, w

    def preprocess(self, images: Any, device: torch.device | str | None = None) -> torch.Tensor:
        """uint8 RGB (H,W,3) / (B,H,W,3) (numpy, torch, or a list of same-size images) →
        pixel_values (B,3,H,W) float32 on `device` (default: where a tensor input lives)."""
        x = _as_batch(images, device)  # (B,H,W,3) uint8 on the target device
        batch, height, width = x.shape[:3]
        new_h, new_w = self._resized_size(height, width)
        levels = self._resize(x, new_h, new_w)  # (B,3,h,w) view, any strides and dtype
        lut, offsets = self._lut(x.device)
        index = self._work.scratch("index", tuple(levels.shape), torch.int32, x.device)
        index.copy_(levels).add_(offsets)  # one strided read; index into per-channel tables
        values = lut.index_select(0, index.view(-1)).view(index.shape)
        if not (self.do_pad and self.size_divisor is not None):
            return values
        top, bottom = _pad_amounts(new_h, self.size_divisor)
        left, right = _pad_amounts(new_w, self.size_divisor)
        out = values.new_zeros(batch, 3, top + new_h + bottom, left + new_w + right)
        out[:, :, top:top + new_h, left:left + new_w] = values
        return out

    def _resize(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Pillow's resize of (B,H,W,3) uint8 images, reproduced exactly: a (B,3,h,w) view
        (any strides, any real dtype) of the resized 0..255 levels."""
        in_h, in_w = x.shape[1:3]
        if (height, width) == (in_h, in_w):
            return x.permute(0, 3, 1, 2)
        mode = RESAMPLE_MODES[self.resample]
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
            v = _band_pass(v.permute(*(axes.index(a) for a in [axis, *rest])), band,
                           self._work, i)
            axes = [axis, *rest]
        return v.permute(*(axes.index(a) for a in (0, 3, 1, 2)))

    def _lut(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(3*256,) uint8 value → output value, per channel, with the reference's arithmetic,
        and the (1,3,1,1) int32 offsets of the three channels' tables in it."""
        key = str(device)
        if key not in self._luts:
            v = rescale_levels(self.rescale_factor, self.do_rescale).expand(3, 256)
            if self.do_normalize:
                mean = torch.tensor(self.image_mean, dtype=torch.float32)[:, None]
                std = torch.tensor(self.image_std, dtype=torch.float32)[:, None]
                v = (v - mean) / std
            self._luts[key] = (v.reshape(-1).contiguous().to(device),
                               channel_offsets().to(device))
        return self._luts[key]

    # ------------------------------------------------------------------ post-processing

    def resize_depth(self, depth: torch.Tensor, source_size: tuple[int, int],
                     size: tuple[int, int]) -> torch.Tensor:
        """(B,h,w) prediction -> (B, *size), bicubic (align_corners=False) when the sizes
        differ. `source_size` (the frames' size) is unused here; ZoeDepth's processor needs
        it to remove its padding, and the pipeline calls both the same way."""
        return resize_maps(depth[:, None], tuple(size), "bicubic")[:, 0]

    def post_process_depth_estimation(self, outputs: Any, target_sizes: Any = None
                                      ) -> list[dict[str, torch.Tensor]]:
        """[{"predicted_depth": (H,W)}] per image, bicubic-resized to `target_sizes` if given."""
        depth = outputs.predicted_depth
        if target_sizes is None:
            return [{"predicted_depth": d} for d in depth]
        sizes = _target_sizes(target_sizes, len(depth), "predicted depth")
        resized = _resize_per_size(depth[:, None], sizes, "bicubic")
        return [{"predicted_depth": d[0]} for d in resized]

    def post_process_semantic_segmentation(self, outputs: Any, target_sizes: Any = None
                                           ) -> list[torch.Tensor]:
        """(H,W) int64 label maps: logits bilinear-resized to `target_sizes`, then argmax."""
        logits = outputs.logits
        if target_sizes is None:
            return list(logits.argmax(dim=1))
        sizes = _target_sizes(target_sizes, len(logits), "logits")
        return [r.argmax(dim=0) for r in _resize_per_size(logits, sizes, "bilinear")]


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


class _Workspace(threading.local):
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
        return _Workspace, ()


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


def _band_pass(v: torch.Tensor, band: _Band, work: _Workspace, step: int) -> torch.Tensor:
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


def _as_batch(images: Any, device: torch.device | str | None) -> torch.Tensor:
    """Any accepted input → (B,H,W,3) uint8 tensor on `device`, moving only uint8 data."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("no images given")
        if all(isinstance(im, torch.Tensor) for im in images):
            items = [im if im.dim() == 4 else im[None] for im in images]
            shapes = {tuple(im.shape[1:]) for im in items}
            if len(shapes) > 1:
                raise ValueError(f"images in one batch must share one size, got {sorted(shapes)}")
            images = torch.cat([im.to(items[0].device) for im in items])
        else:
            arrays = [np.asarray(im.cpu() if isinstance(im, torch.Tensor) else im)
                      for im in images]
            arrays = [a if a.ndim == 4 else a[None] for a in arrays]
            shapes = {a.shape[1:] for a in arrays}
            if len(shapes) > 1:
                raise ValueError(f"images in one batch must share one size, got {sorted(shapes)}")
            images = np.concatenate(arrays)
    if not isinstance(images, torch.Tensor):
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8 RGB, got dtype {images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 RGB, got dtype {images.dtype}")
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
        raise ValueError(f"images must be (H,W,3) or (B,H,W,3) RGB, got {tuple(images.shape)}")
    if device is not None:
        images = images.to(device, non_blocking=True)
    return images


def _target_sizes(target_sizes: Any, n: int, what: str) -> list[tuple[int, int]]:
    if isinstance(target_sizes, torch.Tensor):
        target_sizes = target_sizes.tolist()
    if len(target_sizes) != n:
        raise ValueError(f"Make sure that you pass in as many target sizes as the batch "
                         f"dimension of the {what}")
    return [(int(h), int(w)) for h, w in target_sizes]


def resize_maps(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(B, C, h, w) maps → (B, C, H, W) the way transformers' post-processing resizes them
    (`bicubic` for depth, `bilinear` for logits, align_corners=False); the one home of that
    rule for the processor and `core.pipeline`. Returned as is when already that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def _resize_per_size(x: torch.Tensor, sizes: list[tuple[int, int]], mode: str
                     ) -> list[torch.Tensor]:
    """Resize each (C,h,w) item to its size; one batched call when all sizes agree."""
    if len(set(sizes)) == 1:
        return list(resize_maps(x, sizes[0], mode))
    return [resize_maps(item[None], s, mode)[0] for item, s in zip(x, sizes)]
