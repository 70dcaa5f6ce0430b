"""Depth Anything 3, monocular (DA3METRIC / DA3MONO): DINOv2 ViT -> DPT neck -> depth + sky.

The official `DepthAnything3Net` with the da3metric-large / da3mono-large presets is the
DPT skeleton this package already has: the shared DINOv2 backbone (`dpt_ros.model.backbones.dinov2`)
with the original DINOv2 position-embedding resampling (scale factor with a 0.1 offset,
not transformers' output size) and its final LayerNorm at PyTorch's default eps; the Depth
Anything neck (`neck.depth_anything_neck`: reassemble x4 / x2 / x1 / /2, sized fusion);
and a head like Depth Anything's, with `exp` on the depth and a second branch for the sky.
Keys are the package's; `checkpoint.py` maps the official file onto them.

Outputs (B, H, W) at the network input size: `predicted_depth` is the official `depth`
before its sky fill (DA3METRIC: depth at a 300 px focal length, see
`configuration.CANONICAL_FOCAL`; DA3MONO: relative depth), `sky` the sky head's value
(>= `config.sky_threshold` is sky).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.model.backbones.dinov2 import Dinov2Backbone, Dinov2Config, Embeddings
from dpt_ros.model.depth_anything3 import checkpoint
from dpt_ros.model.depth_anything3.configuration import DepthAnything3Config
from dpt_ros.model.dpt.heads import DepthAnythingHead
from dpt_ros.model.dpt.neck import depth_anything_neck
from dpt_ros.model.hf_api import PretrainedModel, finish, flag, reject_labels
from dpt_ros.model.outputs import DepthEstimatorOutput

# The original DINOv2 resamples its position grid with scale factor (n + 0.1) / side ("a
# work-around to avoid floating point error", dino issue 8); the sampling positions follow
# that factor, so it differs from resampling to a given size.
INTERPOLATE_OFFSET = 0.1
FINAL_NORM_EPS = 1e-5  # the official ViT's `norm` is nn.LayerNorm(dim): default eps


class DA3Embeddings(Embeddings):
    """DINOv2 embeddings with the original repository's position-grid resampling."""

    def interpolate_pos_encoding(self, n_patches: int, height: int, width: int) -> torch.Tensor:
        pos = self.position_embeddings
        n_pos = pos.shape[1] - 1
        if not torch.jit.is_tracing() and n_patches == n_pos and height == width:
            return pos
        dim, side = pos.shape[-1], int(n_pos**0.5)
        h, w = height // self.patch[0], width // self.patch[1]
        grid = pos[:, 1:].float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
        scale = ((h + INTERPOLATE_OFFSET) / side, (w + INTERPOLATE_OFFSET) / side)
        grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=False)
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat([pos[:, :1].float(), grid], dim=1).to(pos.dtype)


class DA3Backbone(Dinov2Backbone):
    """The shared DINOv2 backbone with the two details in which DA3's ViT differs."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__(config)
        self.embeddings = DA3Embeddings(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=FINAL_NORM_EPS)


class DepthAnything3Head(DepthAnythingHead):
    """Depth Anything's head (conv1, resize to the input, conv2, relu, conv3) with `exp` as
    the depth activation, plus the sky branch on the same resized features (conv, relu,
    1x1 conv, relu), as the official DPT head with `use_sky_head`."""

    def __init__(self, config) -> None:
        super().__init__(config)
        c, hidden = config.fusion_hidden_size, config.head_hidden_size
        self.sky_conv2 = nn.Conv2d(c // 2, hidden, 3, padding=1)
        self.sky_conv3 = nn.Conv2d(hidden, 1, 1)

    def forward(self, fused: list[torch.Tensor], grid: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1(fused[self.head_in_index])
        size = (grid[0] * self.patch_size, grid[1] * self.patch_size)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        depth = torch.exp(self.conv3(F.relu(self.conv2(x))))
        sky = F.relu(self.sky_conv3(F.relu(self.sky_conv2(x))))
        return depth.squeeze(1), sky.squeeze(1)


class DepthAnything3ForDepthEstimation(PretrainedModel, nn.Module):
    """DA3METRIC-LARGE / DA3MONO-LARGE (and any size of that network)."""

    config_class = DepthAnything3Config

    def __init__(self, config: DepthAnything3Config) -> None:
        super().__init__()
        self.config = config
        neck_config = config.neck_config
        self.backbone = DA3Backbone(config.backbone_config)
        self.neck = depth_anything_neck(neck_config)
        # The deepest fusion step has no lateral input, and DA3 stores no unit for one.
        self.neck.fusion_stage.layers[0].residual_layer1 = None
        self.head = DepthAnything3Head(neck_config)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> DepthEstimatorOutput | tuple[torch.Tensor, ...]:
        """pixel_values (B, 3, H, W), H and W multiples of 14 (the processor's sizes)."""
        reject_labels(labels)
        p = self.config.patch_size
        grid = (pixel_values.shape[2] // p, pixel_values.shape[3] // p)
        maps, states, probs = self.backbone.features(
            pixel_values, flag(output_hidden_states), flag(output_attentions))
        depth, sky = self.head(self.neck(maps, grid), grid)
        return finish(DepthEstimatorOutput(predicted_depth=depth, sky=sky,
                                           hidden_states=states, attentions=probs),
                      return_dict)

    # The loader's hooks: the official file layout in and out.
    checkpoint_to_model = staticmethod(checkpoint.to_model)
    model_to_checkpoint = staticmethod(checkpoint.to_checkpoint)
