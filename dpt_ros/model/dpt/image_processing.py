"""DPT image processor in torch: transformers' `DPTImageProcessor` semantics on any device.

Pre-processing runs on the device the frames are on (uint8 in, one batch at once), so a camera
frame uploaded as uint8 is never copied back to the host. Resizing reproduces Pillow (which
the reference uses) exactly (`dpt_ros.model.pillow_resize`). Rescale and normalise go
through a per-channel 256-entry lookup table built with the reference's own arithmetic
(float64 rescale → float32, float32 normalise): all of it is bit-exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

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
    resize_per_size,
)
from dpt_ros.model.pillow_resize import RESAMPLE_MODES, Workspace, pillow_resize
from dpt_ros.model.validation import PREPROCESSOR, is_int

PROCESSOR_TYPE = "DPTImageProcessor"
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
    _work: Workspace = field(default_factory=Workspace, init=False, repr=False,
                              compare=False)
    # `image_processor_type` prefixes from_dict accepts, and the type to_dict writes
    accepted_types: ClassVar[tuple[str, ...]] = ("DPT",)
    processor_type: ClassVar[str] = PROCESSOR_TYPE

    def __post_init__(self) -> None:
        check_flags(self, _BOOL_FIELDS)
        object.__setattr__(self, "size", parse_size(self.size))
        if not is_int(self.ensure_multiple_of) or self.ensure_multiple_of < 1:
            raise PREPROCESSOR.error("ensure_multiple_of", self.ensure_multiple_of,
                                     "a positive int")
        if not is_int(self.resample) or (self.do_resize and self.resample not in RESAMPLE_MODES):
            raise PREPROCESSOR.error("resample", self.resample,
                                     "PIL 0 nearest, 2 bilinear or 3 bicubic")
        check_normalisation(self)
        if self.size_divisor is not None and (not is_int(self.size_divisor)
                                              or self.size_divisor < 1):
            raise PREPROCESSOR.error("size_divisor", self.size_divisor, "null or a positive int")

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> DPTImageProcessor:
        """From a Hugging Face `preprocessor_config.json` dict; unknown keys are ignored."""
        # null means "the class default", as in transformers; size_divisor null is a value.
        kwargs = processor_kwargs(cls, config, ("image_processor_type", "feature_extractor_type"),
                                  keep_null=("size_divisor",))
        if config.get("do_center_crop"):
            raise PREPROCESSOR.error("do_center_crop", config["do_center_crop"], "DPT never crops")
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
        x = as_batch(images, device)  # (B,H,W,3) uint8 on the target device
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
        """Pillow's resize of (B,H,W,3) uint8 images: a (B,3,h,w) view of the levels."""
        return pillow_resize(x, height, width, self.resample, self._work)

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
        sizes = parse_target_sizes(target_sizes, len(depth), "predicted depth")
        resized = resize_per_size(depth[:, None], sizes, "bicubic")
        return [{"predicted_depth": d[0]} for d in resized]

    def post_process_semantic_segmentation(self, outputs: Any, target_sizes: Any = None
                                           ) -> list[torch.Tensor]:
        """(H,W) int64 label maps: logits bilinear-resized to `target_sizes`, then argmax."""
        logits = outputs.logits
        if target_sizes is None:
            return list(logits.argmax(dim=1))
        sizes = parse_target_sizes(target_sizes, len(logits), "logits")
        return [r.argmax(dim=0) for r in resize_per_size(logits, sizes, "bilinear")]
