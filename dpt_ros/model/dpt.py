"""DPTModel, DPTForDepthEstimation, DPTForSemanticSegmentation.

Same module tree (hence state-dict keys) as transformers: the ViT under `dpt.*` (the BiT of
DPT-Hybrid at `dpt.embeddings.backbone.*`), DINOv2 under `backbone.*`, then `neck.*` and
`head.*`. Any H, W that are multiples of the patch size work, for every variant: the patch
grid is passed down instead of being recovered from a square token count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.model.config import ConfigError, DPTConfig
from dpt_ros.model.heads import AuxiliaryHead, DepthHead, SemanticHead
from dpt_ros.model.neck import dpt_neck
from dpt_ros.model.outputs import BaseModelOutput, DepthEstimatorOutput, SemanticSegmenterOutput
from dpt_ros.model.vit import Encoder, HybridEmbeddings, ViTEmbeddings, make_activation


def _pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class Pooler(nn.Module):
    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.pooler_output_size)
        self.activation = make_activation(config.pooler_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(x[:, 0]))


class DPTModel(nn.Module):
    """The (hybrid) ViT encoder alone: final layer-normed tokens, pooled [CLS], all hidden
    states and, for the hybrid, the two BiT maps the neck consumes."""

    def __init__(self, config: DPTConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = HybridEmbeddings(config) if config.is_hybrid else ViTEmbeddings(config)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pooler = Pooler(config) if add_pooling_layer else None

    def encode(
        self, pixel_values: torch.Tensor, depth: int | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(hidden states [embeddings, block 1..depth], BiT maps or [])."""
        x, maps = self.embeddings(pixel_values)
        return self.encoder(x, depth), maps

    def neck_inputs(
        self, pixel_values: torch.Tensor, all_states: bool = False
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(the states the neck reads, the hidden states computed). Blocks after the last one
        the neck reads cannot change the prediction, so they run only when asked for."""
        wanted = self.config.vit_out_indices
        states, maps = self.encode(pixel_values, None if all_states else wanted[-1] + 1)
        return maps + [states[i + 1] for i in wanted], states

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False
    ) -> BaseModelOutput:
        states, maps = self.encode(pixel_values)
        last = self.layernorm(states[-1])
        return BaseModelOutput(
            last_hidden_state=last,
            pooler_output=self.pooler(last) if self.pooler is not None else None,
            hidden_states=tuple(states) if output_hidden_states else None,
            intermediate_activations=maps or None,
        )


def _patch_grid(pixel_values: torch.Tensor, patch: tuple[int, int]) -> tuple[int, int]:
    return pixel_values.shape[2] // patch[0], pixel_values.shape[3] // patch[1]


class DPTForDepthEstimation(nn.Module):
    """ViT / hybrid / DINOv2 backbone + DPT neck + depth head -> predicted_depth (B, H, W).

    `output_hidden_states` returns the ViT hidden states; the DINOv2 backbone only yields the
    maps the neck reads, so there it gives None.
    """

    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        self.config = config
        if config.backbone_type == "dinov2":
            from dpt_ros.model.dinov2 import Dinov2Backbone

            self.backbone = Dinov2Backbone(config.backbone_config)
            self._patch = _pair(config.backbone_config.patch_size)
            in_channels = config.backbone_config.hidden_size
        else:
            self.dpt = DPTModel(config, add_pooling_layer=False)
            self._patch = (config.patch_size, config.patch_size)
            in_channels = config.hidden_size
        self.neck = dpt_neck(config, in_channels)
        self.head = DepthHead(config)

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False
    ) -> DepthEstimatorOutput:
        states = None
        if hasattr(self, "backbone"):
            features = self.backbone(pixel_values)
        else:
            features, all_states = self.dpt.neck_inputs(pixel_values, output_hidden_states)
            states = tuple(all_states) if output_hidden_states else None
        fused = self.neck(features, _patch_grid(pixel_values, self._patch))
        return DepthEstimatorOutput(predicted_depth=self.head(fused), hidden_states=states)


class DPTForSemanticSegmentation(nn.Module):
    """ViT / hybrid + DPT neck + segmentation head (+ auxiliary head) -> logits."""

    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        if config.backbone_type == "dinov2":
            raise ConfigError("config field backbone_config: DINOv2 is only supported by "
                              "DPTForDepthEstimation; accepted: null or a BiT (hybrid) config")
        self.config = config
        self.dpt = DPTModel(config, add_pooling_layer=False)
        self.neck = dpt_neck(config, config.hidden_size)
        self.head = SemanticHead(config)
        self.auxiliary_head = AuxiliaryHead(config) if config.use_auxiliary_head else None

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> SemanticSegmenterOutput:
        features, all_states = self.dpt.neck_inputs(pixel_values, output_hidden_states)
        p = self.config.patch_size
        fused = self.neck(features, _patch_grid(pixel_values, (p, p)))
        logits = self.head(fused)
        aux = self.auxiliary_head(fused[-1]) if self.auxiliary_head is not None else None
        loss = self._loss(logits, aux, labels) if labels is not None else None
        return SemanticSegmenterOutput(
            logits=logits,
            auxiliary_logits=aux,
            loss=loss,
            hidden_states=tuple(all_states) if output_hidden_states else None,
        )

    def _loss(
        self, logits: torch.Tensor, aux: torch.Tensor | None, labels: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy at the labels' resolution (+ weighted auxiliary term), as the
        reference: bilinear upsampling, align_corners=False, semantic_loss_ignore_index."""
        if self.config.num_labels == 1:
            raise ValueError("The number of labels should be greater than one")
        size = labels.shape[-2:]
        ignore = self.config.semantic_loss_ignore_index

        def ce(x: torch.Tensor) -> torch.Tensor:
            up = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            return F.cross_entropy(up, labels, ignore_index=ignore)

        loss = ce(logits)
        if aux is not None:
            loss = loss + self.config.auxiliary_loss_weight * ce(aux)
        return loss
