"""ZoeDepth image processor in torch: transformers' `ZoeDepthImageProcessorPil` semantics on
any device, bit for bit on the CPU.

Pre-processing, in the reference's order: rescale (uint8 -> float, through the same lookup
table as DPTImageProcessor: float64 multiply, float32 result), reflect padding of
int(sqrt(side / 2) * 3) pixels on each side (ZoeDepth's fix for border artefacts), resize of
the padded image with `F.interpolate(align_corners=True)` (bilinear or bicubic; the reference
uses torch here, not Pillow), then normalisation in float32. The output size keeps the aspect
ratio of the padded image (`keep_aspect_ratio`, the axis that needs less scaling wins) and
each side is rounded to `ensure_multiple_of` (32 in the Hub checkpoints' configs).

Post-processing undoes the padding: the prediction is resized (bicubic) to the padded source
size and the padding is cropped away; optionally the prediction of the flipped image is
averaged in first, and the result is resized to `target_sizes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from dpt_ros.model.hf_api import ImageProcessorAPI
from dpt_ros.model.image_processing_utils import (
    IMAGENET_STANDARD,
    as_batch,
    channel_offsets,
    check_flags,
    check_normalisation,
    parse_size,
    parse_target_sizes,
    processor_kwargs,
    rescale_levels,
    resize_maps,
)
from dpt_ros.model.validation import PREPROCESSOR, is_number

PROCESSOR_TYPE = "ZoeDepthImageProcessor"
RESAMPLE_MODES = {2: "bilinear", 3: "bicubic"}  # the reference maps only these two
PAD_FACTOR = 3  # padding = int(sqrt(side / 2) * PAD_FACTOR), as the reference
_BOOL_FIELDS = ("do_resize", "keep_aspect_ratio", "do_rescale", "do_normalize", "do_pad")


def padding(height: int, width: int) -> tuple[int, int]:
    """(rows, columns) of reflect padding on each side of a height x width frame."""
    return int(np.sqrt(height / 2) * PAD_FACTOR), int(np.sqrt(width / 2) * PAD_FACTOR)


def zoe_resize_size(height: int, width: int, size: tuple[int, int], keep_aspect_ratio: bool,
                    multiple: float) -> tuple[int, int]:
    """transformers' ZoeDepth `get_resize_output_image_size`: scale as little as possible
    when keeping the aspect ratio, then numpy's round-half-even to a multiple, truncated to
    int (the multiple may be fractional: transformers' class default is 1/32)."""
    scale_h, scale_w = size[0] / height, size[1] / width
    if keep_aspect_ratio:
        if abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w
        else:
            scale_w = scale_h

    def constrain(val: float) -> int:  # val > 0, so the reference's min_val branch never runs
        return int((np.round(val / multiple) * multiple).astype(int))

    return constrain(scale_h * height), constrain(scale_w * width)


@dataclass(frozen=True)
class ZoeDepthImageProcessor(ImageProcessorAPI):
    """Pre-/post-processing of ZoeDepth (Intel/zoedepth-nyu, -kitti, -nyu-kitti)."""

    do_resize: bool = True
    size: dict[str, int] = field(default_factory=lambda: {"height": 384, "width": 512})
    keep_aspect_ratio: bool = True
    ensure_multiple_of: float = 1 / 32  # transformers' default; the Hub configs say 32
    resample: int = 2
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, float, float] = IMAGENET_STANDARD
    image_std: tuple[float, float, float] = IMAGENET_STANDARD
    do_pad: bool = True
    _tables: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    # `image_processor_type` prefixes from_dict accepts, and the type to_dict writes
    accepted_types: ClassVar[tuple[str, ...]] = ("ZoeDepth",)
    processor_type: ClassVar[str] = PROCESSOR_TYPE

    def __post_init__(self) -> None:
        check_flags(self, _BOOL_FIELDS)
        object.__setattr__(self, "size", parse_size(self.size))
        m = self.ensure_multiple_of
        if not is_number(m) or not math.isfinite(m) or m <= 0:
            raise PREPROCESSOR.error("ensure_multiple_of", m, "a positive number")
        if self.do_resize and self.resample not in RESAMPLE_MODES:
            raise PREPROCESSOR.error("resample", self.resample, "PIL 2 bilinear or 3 bicubic")
        check_normalisation(self)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> ZoeDepthImageProcessor:
        """From a Hugging Face `preprocessor_config.json` dict; unknown keys are ignored (and
        null means the class default)."""
        return cls(**processor_kwargs(cls, config, ("image_processor_type",)))

    __hash__ = ImageProcessorAPI.__hash__  # `size` is a dict: hash the canonical config

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_processor_type": self.processor_type,
            "do_resize": bool(self.do_resize),
            "size": dict(self.size),
            "keep_aspect_ratio": bool(self.keep_aspect_ratio),
            "ensure_multiple_of": self.ensure_multiple_of,
            "resample": int(self.resample),
            "do_rescale": bool(self.do_rescale),
            "rescale_factor": float(self.rescale_factor),
            "do_normalize": bool(self.do_normalize),
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_pad": bool(self.do_pad),
        }

    # ------------------------------------------------------------------ pre-processing

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Model input (h, w) for a `height` x `width` frame: padding, then the resize."""
        if height <= 0 or width <= 0:
            raise ValueError(f"image size must be positive, got {height}x{width}")
        if self.do_pad:
            ph, pw = padding(height, width)
            height, width = height + 2 * ph, width + 2 * pw
        if not self.do_resize:
            return height, width
        h, w = zoe_resize_size(height, width, (self.size["height"], self.size["width"]),
                               self.keep_aspect_ratio, self.ensure_multiple_of)
        if h <= 0 or w <= 0:
            raise ValueError(f"a {height}x{width} image resizes to an empty {h}x{w} one")
        return h, w

    def _table(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(3*256 rescaled values, (1,3,1,1) channel offsets, (2,3) mean/std), per device."""
        key = str(device)
        if key not in self._tables:
            lut = rescale_levels(self.rescale_factor, self.do_rescale).repeat(3)
            norm = torch.tensor([self.image_mean, self.image_std], dtype=torch.float32)
            self._tables[key] = (lut.to(device), channel_offsets().to(device), norm.to(device))
        return self._tables[key]

    def preprocess(self, images: Any, device: torch.device | str | None = None) -> torch.Tensor:
        """uint8 RGB (H,W,3) / (B,H,W,3) (numpy, torch, or a list of same-size images) ->
        pixel_values (B,3,h,w) float32 on `device` (default: where a tensor input lives)."""
        x = as_batch(images, device)
        height, width = x.shape[1:3]
        lut, offsets, norm = self._table(x.device)
        index = x.permute(0, 3, 1, 2).to(torch.int32) + offsets
        values = lut.index_select(0, index.reshape(-1)).view(index.shape)
        if self.do_pad:
            ph, pw = padding(height, width)
            if ph >= height or pw >= width:
                raise ValueError(f"a {height}x{width} image is too small for ZoeDepth's "
                                 f"reflect padding of {ph}x{pw}")
            values = F.pad(values, (pw, pw, ph, ph), mode="reflect")
        if self.do_resize:
            size = self.output_size(height, width)
            if size != tuple(values.shape[2:]):
                values = F.interpolate(values, size=size, mode=RESAMPLE_MODES[self.resample],
                                       align_corners=True)
        if self.do_normalize:
            values = (values - norm[0].view(1, 3, 1, 1)) / norm[1].view(1, 3, 1, 1)
        return values.contiguous()

    # ------------------------------------------------------------------ post-processing

    def resize_depth(self, depth: torch.Tensor, source_size: tuple[int, int],
                     size: tuple[int, int]) -> torch.Tensor:
        """(B,h,w) prediction of frames of `source_size` -> (B, *size): the padding removed
        (resize to the padded source size, crop), then resized to `size` if it differs."""
        x = self._unpad(depth[:, None], source_size, self.do_pad)
        return resize_maps(x, tuple(size), "bicubic")[:, 0]

    @staticmethod
    def _unpad(x: torch.Tensor, source: tuple[int, int], remove: bool) -> torch.Tensor:
        ph, pw = padding(*source) if remove else (0, 0)
        x = F.interpolate(x, size=(source[0] + 2 * ph, source[1] + 2 * pw), mode="bicubic",
                          align_corners=False)
        return x[:, :, ph:ph + source[0], pw:pw + source[1]]

    def post_process_depth_estimation(
        self,
        outputs: Any,
        source_sizes: Any = None,
        target_sizes: Any = None,
        outputs_flipped: Any = None,
        do_remove_padding: bool | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        """[{"predicted_depth": (H,W)}] per image, as the reference: the flipped-input
        prediction averaged in (if given), padding removed using `source_sizes` (the frames'
        sizes before pre-processing; required unless do_remove_padding=False), then resized
        to `target_sizes` (if given). Resizes are bicubic, align_corners=False."""
        depth = outputs.predicted_depth
        n = len(depth)
        if outputs_flipped is not None:
            if outputs_flipped.predicted_depth.shape != depth.shape:
                raise ValueError("Make sure that `outputs` and `outputs_flipped` have the same "
                                 "shape")
            depth = (depth + torch.flip(outputs_flipped.predicted_depth, dims=[-1])) / 2
        remove = self.do_pad if do_remove_padding is None else do_remove_padding
        if source_sizes is None and remove:
            raise ValueError("Either `source_sizes` should be passed in, or "
                             "`do_remove_padding` should be set to False")
        sources = (parse_target_sizes(source_sizes, n, "predicted depth")
                   if source_sizes is not None else [None] * n)
        targets = (parse_target_sizes(target_sizes, n, "predicted depth")
                   if target_sizes is not None else [None] * n)
        results = []
        for d, source, target in zip(depth, sources, targets):
            d = d[None, None]
            if source is not None:
                d = self._unpad(d, source, remove)
            if target is not None:
                d = F.interpolate(d, size=target, mode="bicubic", align_corners=False)
            results.append({"predicted_depth": d[0, 0]})
        return results
