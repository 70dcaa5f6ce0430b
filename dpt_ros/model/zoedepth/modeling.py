"""ZoeDepthForDepthEstimation: DPT-BEiT (backbone + neck + relative head) with ZoeDepth's
metric bins head on top: metric depth in metres from a DPT.

Keys as transformers / the Hub (Intel/zoedepth-nyu, -kitti, -nyu-kitti): `backbone.*`
(BEiT), `neck.*`, `relative_head.conv1..3`, `metric_head.*`. Inputs: any H, W that are
multiples of the BEiT patch size (16); ZoeDepthImageProcessor pads and resizes frames so, and
its post-processing (or the pipeline) removes the padding again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.model.backbones import build_backbone
from dpt_ros.model.dpt.neck import Neck, fusion_bias
from dpt_ros.model.hf_api import PretrainedModel, finish, flag, reject_labels
from dpt_ros.model.outputs import DepthEstimatorOutput
from dpt_ros.model.zoedepth.configuration import ZoeDepthConfig
from dpt_ros.model.zoedepth.heads import MetricHead, RoutedMetricHeads


class RelativeHead(nn.Module):
    """DPT's depth head, also handing out its last hidden features (after conv2 + ReLU),
    which condition the metric head."""

    def __init__(self, config: ZoeDepthConfig) -> None:
        super().__init__()
        self.head_in_index = config.head_in_index
        self.projection = nn.Conv2d(256, 256, 3, padding=1) if config.add_projection else None
        c = config.fusion_hidden_size
        self.conv1 = nn.Conv2d(c, c // 2, 3, padding=1)
        self.conv2 = nn.Conv2d(c // 2, config.num_relative_features, 3, padding=1)
        self.conv3 = nn.Conv2d(config.num_relative_features, 1, 1)

    def forward(self, fused: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = fused[self.head_in_index]
        if self.projection is not None:
            x = F.relu(self.projection(x))
        x = F.interpolate(self.conv1(x), scale_factor=2, mode="bilinear", align_corners=True)
        features = F.relu(self.conv2(x))
        return F.relu(self.conv3(features)).squeeze(1), features


class ZoeDepthForDepthEstimation(PretrainedModel, nn.Module):
    """predicted_depth (B, H, W) in metres; domain_logits (B, 2) with the NYU/KITTI router."""

    config_class = ZoeDepthConfig

    def __init__(self, config: ZoeDepthConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone_config)
        self.patch_size = self.backbone.patch_size
        self.neck = Neck(config, self.backbone.hidden_size, config.readout_type, [],
                         config.use_batch_norm_in_fusion_residual, fusion_bias(config),
                         sized=False, eps=config.batch_norm_eps)
        self.relative_head = RelativeHead(config)
        self.metric_head = RoutedMetricHeads(config) if config.has_router else MetricHead(config)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> DepthEstimatorOutput | tuple[torch.Tensor, ...]:
        reject_labels(labels)
        want_states, want_attn = flag(output_hidden_states), flag(output_attentions)
        maps, states, probs = self.backbone.features(pixel_values, want_states, want_attn)
        grid = (pixel_values.shape[2] // self.patch_size, pixel_values.shape[3] // self.patch_size)
        projected = self.neck.project(maps, grid)
        fused = self.neck.fusion_stage(projected)
        relative, features = self.relative_head(fused)
        depth, domain_logits = self.metric_head(features, projected[-1], fused, relative)
        return finish(DepthEstimatorOutput(
            predicted_depth=depth, domain_logits=domain_logits, hidden_states=states,
            attentions=probs), return_dict)
