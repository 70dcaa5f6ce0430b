"""DPTModel, DPTForDepthEstimation, DPTForSemanticSegmentation.

Same module tree (hence state-dict keys) as transformers: the ViT under `dpt.*` (the BiT of
DPT-Hybrid at `dpt.embeddings.backbone.*`), DINOv2 / BEiT / Swinv2 under `backbone.*`, then
`neck.*` and `head.*`. Any H, W that are multiples of the patch size work, for every variant:
the patch grid is passed down instead of being recovered from a square token count.

Forward signatures are transformers': `model(pixel_values, labels=None,
output_hidden_states=None, output_attentions=None, return_dict=None)`, so
`model(**processor(images=..., return_tensors="pt"))` works unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.model.backbones import build_backbone
from dpt_ros.model.backbones.vit import ViTBackbone
from dpt_ros.model.dpt.configuration import DPTConfig
from dpt_ros.model.dpt.heads import AuxiliaryHead, DepthHead, SemanticHead
from dpt_ros.model.dpt.neck import dpt_neck
from dpt_ros.model.errors import ConfigError
from dpt_ros.model.hf_api import PretrainedModel, finish, flag, reject_labels
from dpt_ros.model.layers.activations import activation
from dpt_ros.model.outputs import BaseModelOutput, DepthEstimatorOutput, SemanticSegmenterOutput
from dpt_ros.model.validation import CONFIG

# The classes that share the `dpt.`-prefixed ViT, so one's checkpoint seeds another
# (transformers' base-model-prefix rule); from_pretrained across them loads what they share.
DPT_ARCHITECTURES = ("DPTModel", "DPTForDepthEstimation", "DPTForSemanticSegmentation")


class _DPTPretrained(PretrainedModel):
    """What the three DPT classes share as checkpoints: DPTConfig, the `dpt.` prefix."""

    config_class = DPTConfig
    base_model_prefix = "dpt"

    @classmethod
    def shares_weights_with(cls, config: DPTConfig) -> bool:
        return (config.architecture in DPT_ARCHITECTURES
                and config.backbone_spec.model_type == "vit")


def _tuple(items: list[torch.Tensor] | tuple[torch.Tensor, ...], wanted: bool
           ) -> tuple[torch.Tensor, ...] | None:
    return tuple(items) if wanted else None


class Pooler(nn.Module):
    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.pooler_output_size)
        self.activation = activation(config.pooler_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(x[:, 0]))


class DPTModel(_DPTPretrained, ViTBackbone):
    """The (hybrid) ViT encoder alone: final layer-normed tokens, pooled [CLS], all hidden
    states and, for the hybrid, the two BiT maps the neck consumes. As a Backbone (what the
    DPT task models hold as `dpt.*`) its `features` are what the neck reads."""

    def __init__(self, config: DPTConfig, add_pooling_layer: bool = True) -> None:
        if config.backbone_spec.model_type != "vit":
            raise ConfigError(f"config field backbone_config: DPTModel is the ViT encoder; a "
                              f"{config.backbone_type} backbone is only built by "
                              "DPTForDepthEstimation (as in transformers)")
        super().__init__(config)
        self.pooler = Pooler(config) if add_pooling_layer else None

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput | tuple[torch.Tensor, ...]:
        want_states, want_attn = flag(output_hidden_states), flag(output_attentions)
        states, maps, probs = self.encode(pixel_values, attentions=want_attn)
        last = self.layernorm(states[-1])
        return finish(BaseModelOutput(
            last_hidden_state=last,
            pooler_output=self.pooler(last) if self.pooler is not None else None,
            hidden_states=_tuple(states, want_states),
            intermediate_activations=maps or None,
            attentions=_tuple(probs, want_attn),
        ), return_dict)


def _patch_grid(pixel_values: torch.Tensor, patch: tuple[int, int]) -> tuple[int, int]:
    return pixel_values.shape[2] // patch[0], pixel_values.shape[3] // patch[1]


class DPTForDepthEstimation(_DPTPretrained, nn.Module):
    """ViT / hybrid / DINOv2 / BEiT / Swinv2 backbone + DPT neck + depth head ->
    predicted_depth (B, H, W).

    `output_hidden_states` gives the ViT's hidden states, or the backbone's (embeddings and
    every block; Swinv2: embeddings and every stage), as the reference.
    """

    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        self.config = config
        if config.backbone_spec.standalone:
            self.backbone = build_backbone(config.backbone_config)
            self._patch = CONFIG.pair("patch_size", self.backbone.patch_size)
            in_channels = self.backbone.hidden_size
        else:
            self.dpt = DPTModel(config, add_pooling_layer=False)
            self._patch = (config.patch_size, config.patch_size)
            in_channels = config.hidden_size
        self.neck = dpt_neck(config, in_channels)
        self.head = DepthHead(config)

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
        backbone = self.backbone if hasattr(self, "backbone") else self.dpt
        features, states, probs = backbone.features(pixel_values, want_states, want_attn)
        fused = self.neck(features, _patch_grid(pixel_values, self._patch))
        return finish(DepthEstimatorOutput(
            predicted_depth=self.head(fused), hidden_states=states, attentions=probs,
        ), return_dict)


class DPTForSemanticSegmentation(_DPTPretrained, nn.Module):
    """ViT / hybrid + DPT neck + segmentation head (+ auxiliary head) -> logits."""

    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        if config.backbone_spec.model_type != "vit":
            raise ConfigError(f"config field backbone_config: {config.backbone_type} is only "
                              "supported by DPTForDepthEstimation; accepted: null or a BiT "
                              "(hybrid) config")
        self.config = config
        self.dpt = DPTModel(config, add_pooling_layer=False)
        self.neck = dpt_neck(config, config.hidden_size)
        self.head = SemanticHead(config)
        self.auxiliary_head = AuxiliaryHead(config) if config.use_auxiliary_head else None

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> SemanticSegmenterOutput | tuple[torch.Tensor, ...]:
        want_states, want_attn = flag(output_hidden_states), flag(output_attentions)
        features, states, probs = self.dpt.features(pixel_values, want_states, want_attn)
        p = self.config.patch_size
        fused = self.neck(features, _patch_grid(pixel_values, (p, p)))
        logits = self.head(fused)
        aux = self.auxiliary_head(fused[-1]) if self.auxiliary_head is not None else None
        loss = self._loss(logits, aux, labels) if labels is not None else None
        return finish(SemanticSegmenterOutput(
            logits=logits,
            auxiliary_logits=aux,
            loss=loss,
            hidden_states=states,
            attentions=probs,
        ), return_dict)

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
