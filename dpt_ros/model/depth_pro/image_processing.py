"""DepthProImageProcessor in torch: transformers' semantics on any device.

Unlike DPT's, Depth Pro's processor rescales and normalises first (uint8 -> float32,
(x - mean*255) / (std*255), transformers' fused form) and then resizes the float image
bilinearly without antialiasing to the square network input (1536 x 1536 for
apple/DepthPro-hf). Post-processing is transformers': the canonical inverse depth times
W / f_px, resized to the target size, then inverted and clamped to [1e-4, 1e4] m; f_px is
the FOV model's (0.5 W / tan(FOV / 2)) when no focal length is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from dpt_ros.model.hf_api import ImageProcessorAPI
from dpt_ros.model.image_processing_utils import as_batch, channel_offsets, parse_target_sizes

PROCESSOR_TYPE = "DepthProImageProcessor"
MODES = {2: "bilinear", 3: "bicubic"}  # PIL resample ids transformers maps to torch modes
DEPTH_RANGE = (1e-4, 1e4)  # transformers' clamp of the inverse depth before inverting


@dataclass(frozen=True)
class DepthProImageProcessor(ImageProcessorAPI):
    do_resize: bool = True
    size: dict[str, int] = field(default_factory=lambda: {"height": 1536, "width": 1536})
    resample: int = 2
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    keep_aspect_ratio: bool = False  # accepted for the node's input_size override; unused
    _luts: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    processor_type: ClassVar[str] = PROCESSOR_TYPE

    def __post_init__(self) -> None:
        h, w = int(self.size["height"]), int(self.size["width"])
        if h <= 0 or w <= 0:
            raise ValueError(f"size {h}x{w}: positive")
        object.__setattr__(self, "size", {"height": h, "width": w})
        if self.resample not in MODES:
            raise ValueError(f"resample {self.resample!r}: PIL 2 bilinear or 3 bicubic")
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            value = (value,) * 3 if isinstance(value, (int, float)) else tuple(value)
            object.__setattr__(self, name, tuple(float(v) for v in value))

    __hash__ = ImageProcessorAPI.__hash__

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> DepthProImageProcessor:
        names = ("do_resize", "size", "resample", "do_rescale", "rescale_factor",
                 "do_normalize", "image_mean", "image_std", "keep_aspect_ratio")
        return cls(**{k: config[k] for k in names if config.get(k) is not None})

    def to_dict(self) -> dict[str, Any]:
        return {"image_processor_type": self.processor_type, "do_resize": self.do_resize,
                "size": dict(self.size), "resample": self.resample,
                "do_rescale": self.do_rescale, "rescale_factor": self.rescale_factor,
                "do_normalize": self.do_normalize, "image_mean": list(self.image_mean),
                "image_std": list(self.image_std), "keep_aspect_ratio": self.keep_aspect_ratio}

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return (self.size["height"], self.size["width"]) if self.do_resize else (height, width)

    def preprocess(self, images: Any, device: torch.device | str | None = None) -> torch.Tensor:
        """uint8 RGB (H,W,3) / (B,H,W,3) -> pixel_values (B,3,h,w) float32 on `device`."""
        x = as_batch(images, device).permute(0, 3, 1, 2)
        lut, offsets = self._lut(x.device)
        values = lut.index_select(0, (x.to(torch.int32) + offsets).reshape(-1)).view(x.shape)
        if not self.do_resize or tuple(values.shape[-2:]) == tuple(self.output_size(0, 0)):
            return values
        return F.interpolate(values, size=self.output_size(0, 0), mode=MODES[self.resample],
                             align_corners=False, antialias=False)

    def _lut(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(3*256,) float32 with transformers' fused rescale + normalise arithmetic."""
        key = str(device)
        if key not in self._luts:
            v = torch.arange(256, dtype=torch.float32).expand(3, 256)
            scale = 1.0 / self.rescale_factor if self.do_rescale else 1.0
            mean = torch.tensor(self.image_mean, dtype=torch.float64)[:, None]
            std = torch.tensor(self.image_std, dtype=torch.float64)[:, None]
            if self.do_normalize:
                v = (v - (mean * scale).float()) / (std * scale).float()
            elif self.do_rescale:
                v = v * torch.tensor(self.rescale_factor, dtype=torch.float32)
            self._luts[key] = (v.reshape(-1).contiguous().to(device), channel_offsets().to(device))
        return self._luts[key]

    # ------------------------------------------------------------------ post-processing

    def resize_depth(self, depth: torch.Tensor, source_size: tuple[int, int],
                     size: tuple[int, int]) -> torch.Tensor:
        """(B,h,w) canonical inverse depth already multiplied by W / f_px (the pipeline's
        focal step) -> metres (B, *size): resized, then 1 / clamp, as transformers."""
        x = depth[:, None]
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode=MODES[self.resample],
                              align_corners=False)
        return 1.0 / x[:, 0].clamp(*DEPTH_RANGE)

    def post_process_depth_estimation(self, outputs: Any, target_sizes: Any = None
                                      ) -> list[dict[str, Any]]:
        """transformers' result per image: predicted_depth (metres when a target size and
        the FOV are known), field_of_view, focal_length."""
        depth, fov = outputs.predicted_depth, outputs.field_of_view
        n = len(depth)
        sizes = [None] * n if target_sizes is None else parse_target_sizes(target_sizes, n,
                                                                      "predicted depth")
        fovs = [None] * n if fov is None else list(fov)
        results = []
        for d, f, size in zip(depth, fovs, sizes):
            focal = None
            if size is not None:
                if f is not None:
                    focal = 0.5 * size[1] / torch.tan(0.5 * torch.deg2rad(f))
                    d = d * size[1] / focal
                d = F.interpolate(d[None, None], size=size, mode=MODES[self.resample]
                                  ).squeeze()
            results.append({"predicted_depth": 1.0 / torch.clamp(d, *DEPTH_RANGE),
                            "field_of_view": f, "focal_length": focal})
        return results


def focal_from_fov(fov_deg: float, width: int) -> float:
    """The focal length (px) of an image `width` wide seen with horizontal FOV `fov_deg`."""
    return 0.5 * width / math.tan(0.5 * math.radians(fov_deg))
