"""Depth Anything 3's preprocessing (official `InputProcessor`, process_res 504,
"upper_bound_resize") in torch, on the device the frames are on.

Official steps per image: longest side resized to `process_res` (sizes rounded with
Python's round), then each side to the nearest multiple of 14 (ties up), each step with
cv2 (INTER_AREA when shrinking, INTER_CUBIC when a side grows; `resize.py` reproduces
both); then ToTensor (/255 in float32) and ImageNet normalisation in float32. The
official repos ship no preprocessor_config.json, so this processor is built from these
defaults; `size` (the node's `input_size`) fixes the network input instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from dpt_ros.model.depth_anything3.configuration import PATCH_SIZE, PROCESS_RES
from dpt_ros.model.depth_anything3.resize import cv2_resize
from dpt_ros.model.hf_api import ImageProcessorAPI
from dpt_ros.model.image_processing_utils import (
    as_batch,
    channel_offsets,
    parse_target_sizes,
    resize_maps,
    resize_per_size,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PROCESSOR_TYPE = "DepthAnything3ImageProcessor"
METHODS = ("upper_bound_resize", "lower_bound_resize")


def _nearest_multiple(x: int, p: int) -> int:
    """The official rounding to a patch multiple: the nearer one, ties up."""
    down = (x // p) * p
    up = down + p
    return up if abs(up - x) <= abs(x - down) else down


def official_sizes(height: int, width: int, process_res: int, method: str
                   ) -> tuple[tuple[int, int], tuple[int, int]]:
    """((h, w) after the boundary resize, (h, w) after the patch-multiple resize)."""
    side = max(width, height) if method == "upper_bound_resize" else min(width, height)
    if side == process_res:
        first = (height, width)
    else:
        scale = process_res / float(side)
        first = (max(1, round(height * scale)), max(1, round(width * scale)))
    second = (max(1, _nearest_multiple(first[0], PATCH_SIZE)),
              max(1, _nearest_multiple(first[1], PATCH_SIZE)))
    return first, second


@dataclass(frozen=True)
class DepthAnything3ImageProcessor(ImageProcessorAPI):
    """The official preprocessing; callable like transformers' processors."""

    process_res: int = PROCESS_RES
    process_res_method: str = "upper_bound_resize"
    # a fixed network input {"height", "width"} (multiples of 14) instead of process_res
    size: dict[str, int] | None = None
    do_resize: bool = True
    keep_aspect_ratio: bool = False  # accepted for the node's input_size override; unused
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    _luts: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    processor_type: ClassVar[str] = PROCESSOR_TYPE

    def __post_init__(self) -> None:
        if isinstance(self.process_res, bool) or not isinstance(self.process_res, int) \
                or self.process_res < PATCH_SIZE:
            raise ValueError(f"process_res {self.process_res!r}: an integer >= {PATCH_SIZE}")
        if self.process_res_method not in METHODS:
            raise ValueError(f"process_res_method {self.process_res_method!r}; accepted: "
                             f"{', '.join(METHODS)}")
        if self.size is not None:
            h, w = int(self.size["height"]), int(self.size["width"])
            if h <= 0 or w <= 0 or h % PATCH_SIZE or w % PATCH_SIZE:
                raise ValueError(f"size {h}x{w}: positive multiples of {PATCH_SIZE}")
            object.__setattr__(self, "size", {"height": h, "width": w})
        object.__setattr__(self, "image_mean", tuple(float(v) for v in self.image_mean))
        object.__setattr__(self, "image_std", tuple(float(v) for v in self.image_std))

    __hash__ = ImageProcessorAPI.__hash__

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> DepthAnything3ImageProcessor:
        names = ("process_res", "process_res_method", "size", "do_resize", "keep_aspect_ratio",
                 "image_mean", "image_std")
        return cls(**{k: config[k] for k in names if config.get(k) is not None})

    def to_dict(self) -> dict[str, Any]:
        return {"image_processor_type": self.processor_type, "process_res": self.process_res,
                "process_res_method": self.process_res_method, "size": self.size,
                "do_resize": self.do_resize, "keep_aspect_ratio": self.keep_aspect_ratio,
                "image_mean": list(self.image_mean), "image_std": list(self.image_std)}

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Network input (h, w) for a `height` x `width` frame."""
        if self.size is not None and self.do_resize:
            return self.size["height"], self.size["width"]
        return official_sizes(height, width, self.process_res, self.process_res_method)[1]

    def resized_levels(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, 3, h, w) uint8: the official two cv2 resizes."""
        levels = x.permute(0, 3, 1, 2)
        height, width = x.shape[1:3]
        if self.size is not None and self.do_resize:
            h, w = self.size["height"], self.size["width"]
            return cv2_resize(levels, h, w, h > height or w > width)
        first, second = official_sizes(height, width, self.process_res,
                                       self.process_res_method)
        levels = cv2_resize(levels, *first, first[0] > height or first[1] > width)
        return cv2_resize(levels, *second, second[0] > first[0] or second[1] > first[1])

    def preprocess(self, images: Any, device: torch.device | str | None = None) -> torch.Tensor:
        """uint8 RGB (H,W,3) / (B,H,W,3) -> pixel_values (B,3,h,w) float32 on `device`."""
        x = as_batch(images, device)
        levels = self.resized_levels(x)
        lut, offsets = self._lut(x.device)
        index = levels.to(torch.int32) + offsets
        return lut.index_select(0, index.reshape(-1)).view(index.shape)

    def _lut(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(3*256,) float32: ToTensor (v / 255 in float32) then (x - mean) / std, float32."""
        key = str(device)
        if key not in self._luts:
            v = (torch.arange(256, dtype=torch.float32) / 255).expand(3, 256)
            mean = torch.tensor(self.image_mean, dtype=torch.float32)[:, None]
            std = torch.tensor(self.image_std, dtype=torch.float32)[:, None]
            self._luts[key] = (((v - mean) / std).reshape(-1).contiguous().to(device),
                               channel_offsets().to(device))
        return self._luts[key]

    # ------------------------------------------------------------------ post-processing

    def resize_depth(self, depth: torch.Tensor, source_size: tuple[int, int],
                     size: tuple[int, int]) -> torch.Tensor:
        """(B,h,w) -> (B, *size). The official code returns the network-size map; onto the
        frame it goes bilinearly: bicubic overshoots at the sky / object borders, where
        DA3's depth jumps by orders of magnitude, and would invent depths there."""
        return resize_maps(depth[:, None], tuple(size), "bilinear")[:, 0]

    def resize_sky(self, sky: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The sky head's map onto the frame grid (bilinear; thresholded afterwards)."""
        return resize_maps(sky[:, None], tuple(size), "bilinear")[:, 0]

    def post_process_depth_estimation(self, outputs: Any, target_sizes: Any = None
                                      ) -> list[dict[str, torch.Tensor]]:
        """[{"predicted_depth": (H,W), "sky": (H,W)}] per image, resized to `target_sizes`."""
        depth, sky = outputs.predicted_depth, outputs.sky
        if target_sizes is None:
            return [{"predicted_depth": d, "sky": s} for d, s in zip(depth, sky)]
        sizes = parse_target_sizes(target_sizes, len(depth), "predicted depth")
        d = resize_per_size(depth[:, None], sizes, "bilinear")
        s = resize_per_size(sky[:, None], sizes, "bilinear")
        return [{"predicted_depth": a[0], "sky": b[0]} for a, b in zip(d, s)]
