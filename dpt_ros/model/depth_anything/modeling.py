"""DepthAnythingForDepthEstimation (V1 and V2; relative, or metric = sigmoid * max_depth).

V1 and V2 differ only in which DINOv2 blocks feed the neck (backbone_config.out_indices) and
in their weights, so one class serves both. Keys: `backbone.*`, `neck.*`, `head.conv1..3`.
"""

from __future__ import annotations

import torch
from torch import nn

from dpt_ros.model.backbones import build_backbone
from dpt_ros.model.dpt.configuration import DPTConfig
from dpt_ros.model.dpt.heads import DepthAnythingHead
from dpt_ros.model.dpt.neck import depth_anything_neck
from dpt_ros.model.hf_api import PretrainedModel, finish, flag, reject_labels
from dpt_ros.model.outputs import DepthEstimatorOutput


class DepthAnythingForDepthEstimation(PretrainedModel, nn.Module):
    config_class = DPTConfig

    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone_config)  # DINOv2 (the config checks)
        self.neck = depth_anything_neck(config)
        self.head = DepthAnythingHead(config)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> DepthEstimatorOutput | tuple[torch.Tensor, ...]:
        """`output_hidden_states` / `output_attentions`: the DINOv2 backbone's (embeddings and
        every block), as the reference returns them."""
        reject_labels(labels)
        want_states, want_attn = flag(output_hidden_states), flag(output_attentions)
        p = self.config.patch_size
        grid = (pixel_values.shape[2] // p, pixel_values.shape[3] // p)
        maps, states, probs = self.backbone.features(pixel_values, want_states, want_attn)
        fused = self.neck(maps, grid)
        return finish(DepthEstimatorOutput(
            predicted_depth=self.head(fused, grid), hidden_states=states, attentions=probs,
        ), return_dict)
