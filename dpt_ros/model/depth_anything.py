"""DepthAnythingForDepthEstimation (V1 and V2; relative, or metric = sigmoid * max_depth).

V1 and V2 differ only in which DINOv2 blocks feed the neck (backbone_config.out_indices) and
in their weights, so one class serves both. Keys: `backbone.*`, `neck.*`, `head.conv1..3`.
"""

from __future__ import annotations

import torch
from torch import nn

from dpt_ros.model.config import DPTConfig
from dpt_ros.model.heads import DepthAnythingHead
from dpt_ros.model.neck import depth_anything_neck
from dpt_ros.model.outputs import DepthEstimatorOutput


class DepthAnythingForDepthEstimation(nn.Module):
    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        from dpt_ros.model.dinov2 import Dinov2Backbone

        self.config = config
        self.backbone = Dinov2Backbone(config.backbone_config)
        self.neck = depth_anything_neck(config)
        self.head = DepthAnythingHead(config)

    def forward(self, pixel_values: torch.Tensor) -> DepthEstimatorOutput:
        p = self.config.patch_size
        grid = (pixel_values.shape[2] // p, pixel_values.shape[3] // p)
        fused = self.neck(self.backbone(pixel_values), grid)
        return DepthEstimatorOutput(predicted_depth=self.head(fused, grid))
