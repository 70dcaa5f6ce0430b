"""What the image processors share: the preprocessor_config.json field rules, the
rescale / normalise lookup tables built with the reference's arithmetic, the accepted image
inputs, and transformers' resizing of predictions in post-processing.

The DPT, Prompt Depth Anything and ZoeDepth processors import these from here, so none of
them reaches into another's module.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dpt_ros.model.validation import PREPROCESSOR, is_int, is_number

IMAGENET_STANDARD = (0.5, 0.5, 0.5)


def check_flags(processor: Any, names: tuple[str, ...]) -> None:
    """The boolean fields `names` of a processor config are true or false (numpy's too)."""
    for name in names:
        if not isinstance(getattr(processor, name), (bool, np.bool_)):
            raise PREPROCESSOR.error(name, getattr(processor, name), "true or false")


def processor_kwargs(cls: Any, config: dict[str, Any], type_keys: tuple[str, ...],
                     keep_null: tuple[str, ...] = ()) -> dict[str, Any]:
    """The init arguments of processor class `cls` from a `preprocessor_config.json` dict,
    once the `type_keys` entries name a type `cls` accepts (its `accepted_types` prefixes;
    its `processor_type` in the error). Unknown keys are ignored; null means "the class
    default", as in transformers, except for the fields in `keep_null` (null is a value)."""
    for key in type_keys:
        kind = config.get(key)
        if kind is not None and not str(kind).startswith(cls.accepted_types):
            raise PREPROCESSOR.error(key, kind, f"a {cls.processor_type}")
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
    if not is_number(factor) or not math.isfinite(factor) or factor <= 0:
        raise PREPROCESSOR.error("rescale_factor", factor, "a positive number")
    object.__setattr__(processor, "image_mean", parse_channels("image_mean", processor.image_mean))
    std = parse_channels("image_std", processor.image_std)
    if any(s == 0 for s in std):
        raise PREPROCESSOR.error("image_std", processor.image_std, "non-zero")
    object.__setattr__(processor, "image_std", std)


def parse_channels(name: str, value: Any) -> tuple[float, float, float]:
    """A per-channel value (image_mean / image_std): one number for all three, or three."""
    if is_number(value):
        value = [value] * 3
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.shape != (3,) or not np.isfinite(arr).all():
        raise PREPROCESSOR.error(name, value, "a number or 3 finite numbers")
    return tuple(float(v) for v in arr)


def parse_size(value: Any) -> dict[str, int]:
    """`size` as {'height', 'width'}: a legacy int (square) or the dict form."""
    if is_int(value) and value > 0:
        return {"height": int(value), "width": int(value)}
    if isinstance(value, dict) and set(value) >= {"height", "width"}:
        h, w = value["height"], value["width"]
        if is_int(h) and is_int(w) and h > 0 and w > 0:
            return {"height": int(h), "width": int(w)}
    raise PREPROCESSOR.error("size", value, "an int or {'height': int, 'width': int}")


def as_batch(images: Any, device: torch.device | str | None) -> torch.Tensor:
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


def parse_target_sizes(target_sizes: Any, n: int, what: str) -> list[tuple[int, int]]:
    """Post-processing's `target_sizes` (list or tensor) as n (h, w) pairs."""
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


def resize_per_size(x: torch.Tensor, sizes: list[tuple[int, int]], mode: str
                     ) -> list[torch.Tensor]:
    """Resize each (C,h,w) item to its size; one batched call when all sizes agree."""
    if len(set(sizes)) == 1:
        return list(resize_maps(x, sizes[0], mode))
    return [resize_maps(item[None], s, mode)[0] for item, s in zip(x, sizes)]
