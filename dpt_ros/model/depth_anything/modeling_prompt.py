"""PromptDepthAnythingForDepthEstimation: Depth Anything that takes a low-resolution metric
depth (a ToF / LiDAR / RGB-D "prompt") and returns dense metric depth (Lin et al. 2024).

The same DINOv2 backbone, neck and head as Depth Anything, plus one prompt layer per fusion
step. The prompt (B, 1, h, w), any h x w, is min-max normalised per image, resized
bilinearly to every fusion map and added there; the head's sigmoid output is mapped back to
the prompt's [min, max]. Without a prompt the output is relative depth in (0, 1).
Keys as transformers: `backbone.*`, `neck.*` (+ `neck.fusion_stage.layers.N.
prompt_depth_layer.convolution1..3`), `head.conv1..3`.
"""

from __future__ import annotations

import torch
from torch import nn

from dpt_ros.model.backbones import build_backbone
from dpt_ros.model.dpt.configuration import DPTConfig
from dpt_ros.model.dpt.heads import DepthAnythingHead
from dpt_ros.model.dpt.neck import depth_anything_neck
from dpt_ros.model.outputs import DepthEstimatorOutput


class PromptDepthAnythingHead(DepthAnythingHead):
    """Depth Anything's head as the reference builds it here: it always reads the last fused
    map and does not multiply by max_depth (the prompt's range scales the output)."""

    def __init__(self, config: DPTConfig) -> None:
        super().__init__(config)
        self.head_in_index = -1
        self.max_depth = 1.0


class PromptDepthAnythingForDepthEstimation(nn.Module):
    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone_config)  # DINOv2 (the config checks)
        self.neck = depth_anything_neck(config, prompt=True)
        self.head = PromptDepthAnythingHead(config)

    def forward(self, pixel_values: torch.Tensor, prompt_depth: torch.Tensor | None = None
                ) -> DepthEstimatorOutput:
        """`prompt_depth`: (B, 1, h, w) or (B, h, w) metres (what the image processor's
        `preprocess_prompt` returns); it must not be constant within an image (the
        processor nudges a constant prompt, as the reference's does)."""
        p = self.config.patch_size
        grid = (pixel_values.shape[2] // p, pixel_values.shape[3] // p)
        prompt = lo = span = None
        if prompt_depth is not None:
            if prompt_depth.dim() == 3:
                prompt_depth = prompt_depth[:, None]
            flat = prompt_depth.reshape(prompt_depth.shape[0], -1)
            lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
            span = flat.max(dim=1).values.view(-1, 1, 1, 1) - lo
            prompt = (prompt_depth - lo) / span
        fused = self.neck(self.backbone(pixel_values), grid, prompt)
        depth = self.head(fused, grid)
        if prompt is not None:
            depth = depth * span[:, 0].to(depth.device) + lo[:, 0].to(depth.device)
        return DepthEstimatorOutput(predicted_depth=depth)
