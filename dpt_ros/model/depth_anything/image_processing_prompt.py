"""Prompt Depth Anything's image processor: the DPT image path unchanged, plus the prompt.

transformers' `PromptDepthAnythingImageProcessor(Pil)` does not resize the prompt depth (the
model resizes it to every fusion map); it multiplies it by `prompt_scale_to_meter`
(default 0.001: a uint16 depth PNG in millimetres), nudges the first row of a constant map
by 1e-6 (the model min-max normalises each prompt), adds the channel axis and casts to float32.
Arithmetic as the reference's numpy: integers in float64, floats in their own precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from dpt_ros.model.dpt.image_processing import DPTImageProcessor
from dpt_ros.model.validation import PREPROCESSOR, is_number

PROCESSOR_TYPE = "PromptDepthAnythingImageProcessor"


@dataclass(frozen=True)
class PromptDepthAnythingImageProcessor(DPTImageProcessor):
    prompt_scale_to_meter: float = 0.001

    accepted_types: ClassVar[tuple[str, ...]] = ("PromptDepthAnything",)
    processor_type: ClassVar[str] = PROCESSOR_TYPE
    __hash__ = DPTImageProcessor.__hash__  # the dataclass would generate an unusable one

    def __post_init__(self) -> None:
        super().__post_init__()
        scale = self.prompt_scale_to_meter
        if not is_number(scale) or not math.isfinite(scale) or scale <= 0:
            raise PREPROCESSOR.error("prompt_scale_to_meter", scale, "a positive number")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "prompt_scale_to_meter": float(self.prompt_scale_to_meter)}

    def preprocess_prompt(self, prompt_depth: Any, device: torch.device | str | None = None,
                          scale_to_meter: float | None = None) -> torch.Tensor:
        """Depth maps (h, w), (B, h, w) or a list of same-size (h, w), numpy or torch, in the
        units `scale_to_meter` (default `prompt_scale_to_meter`) converts to metres →
        (B, 1, h, w) float32 on `device`, as the reference's `prompt_depth`."""
        if isinstance(prompt_depth, (list, tuple)):
            items = [torch.as_tensor(np.asarray(d)) if not isinstance(d, torch.Tensor) else d
                     for d in prompt_depth]
            if len({tuple(d.shape) for d in items}) > 1:
                raise ValueError("prompt depths in one batch must share one size")
            t = torch.stack(items)
        elif isinstance(prompt_depth, torch.Tensor):
            t = prompt_depth
        else:
            t = torch.from_numpy(np.ascontiguousarray(prompt_depth))
        if t.dim() == 2:
            t = t[None]
        if t.dim() != 3 or t.shape[0] == 0 or t.shape[1] == 0 or t.shape[2] == 0:
            raise ValueError(f"prompt depth must be (h, w) or (B, h, w), got {tuple(t.shape)}")
        if device is not None:
            t = t.to(device)
        if not t.is_floating_point():
            t = t.to(torch.float64)
        scale = self.prompt_scale_to_meter if scale_to_meter is None else scale_to_meter
        t = t * scale
        flat = t.reshape(t.shape[0], -1)
        constant = flat.amin(dim=1) == flat.amax(dim=1)
        # the reference's `depth[0, 0] += 1e-6` on its (1, h, w) map: the whole first row
        t[:, 0, :] += torch.where(constant, 1e-6, 0.0).to(t.dtype)[:, None]
        return t.to(torch.float32)[:, None]
