"""Prediction heads on the fused neck maps (keys as transformers: `head.head.N`,
`head.projection`, `auxiliary_head.head.N`, Depth Anything's `head.conv1..3`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.model.dpt.configuration import DPTConfig


class DepthHead(nn.Module):
    """DPT: conv, x2 upsample, conv, relu, 1x1 conv, relu -> (B, H, W)."""

    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        self.head_in_index = config.head_in_index
        # 256 -> 256 as in the reference (the config check ties it to fusion_hidden_size).
        self.projection = nn.Conv2d(256, 256, 3, padding=1) if config.add_projection else None
        c = config.fusion_hidden_size
        self.head = nn.Sequential(
            nn.Conv2d(c, c // 2, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(c // 2, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, 1),
            nn.ReLU(),
        )

    def forward(self, fused: list[torch.Tensor]) -> torch.Tensor:
        x = fused[self.head_in_index]
        if self.projection is not None:
            x = F.relu(self.projection(x))
        return self.head(x).squeeze(1)


class SemanticHead(nn.Module):
    """conv-bn-relu, dropout, 1x1 classifier, x2 upsample -> logits (B, C, H, W)."""

    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        self.head_in_index = config.head_in_index
        c = config.fusion_hidden_size
        self.head = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Dropout(config.semantic_classifier_dropout),
            nn.Conv2d(c, config.num_labels, 1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        )

    def forward(self, fused: list[torch.Tensor]) -> torch.Tensor:
        return self.head(fused[self.head_in_index])


class AuxiliaryHead(nn.Module):
    """Training-time head on the last fused map (no upsampling)."""

    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        c = config.fusion_hidden_size
        self.head = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Conv2d(c, config.num_labels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


class DepthAnythingHead(nn.Module):
    """conv, resize to the input size, conv, relu, 1x1 conv, then relu (relative) or
    sigmoid (metric), times max_depth."""

    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        self.head_in_index = config.head_in_index
        self.patch_size = config.patch_size
        self.max_depth = config.max_depth
        self.metric = config.depth_estimation_type == "metric"
        c = config.fusion_hidden_size
        self.conv1 = nn.Conv2d(c, c // 2, 3, padding=1)
        self.conv2 = nn.Conv2d(c // 2, config.head_hidden_size, 3, padding=1)
        self.conv3 = nn.Conv2d(config.head_hidden_size, 1, 1)

    def forward(self, fused: list[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        x = self.conv1(fused[self.head_in_index])
        size = (grid[0] * self.patch_size, grid[1] * self.patch_size)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        x = self.conv3(F.relu(self.conv2(x)))
        x = torch.sigmoid(x) if self.metric else F.relu(x)
        return (x * self.max_depth).squeeze(1)
