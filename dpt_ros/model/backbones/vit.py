"""The DPT ViT encoder: plain and hybrid (BiT) embeddings, pre-norm blocks, and
`ViTBackbone`, the encoder as a `Backbone` (DPTModel is this plus a pooler).

Attribute names reproduce transformers' DPT keys (`embeddings.patch_embeddings.projection`,
`encoder.layer.N.attention.attention.query`, ...) so Hub checkpoints load unchanged; the
computation is timm-style and uses scaled_dot_product_attention. Unlike the other backbones
the ViT has no backbone_config: it reads the DPT config's own fields (`ViTConfig` lists them).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from dpt_ros.model.backbones.base import BackboneSpec, Features
from dpt_ros.model.backbones.bit import BitBackbone
from dpt_ros.model.errors import ConfigError
from dpt_ros.model.layers.activations import activation
from dpt_ros.model.layers.attention import attend
from dpt_ros.model.layers.dense import Dense
from dpt_ros.model.layers.position_embeddings import resample_position_embeddings


class ViTConfig(Protocol):
    """The fields of a DPTConfig the ViT reads (the ViT has no config of its own)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str
    hidden_dropout_prob: float
    attention_probs_dropout_prob: float
    layer_norm_eps: float
    image_size: int
    patch_size: int
    num_channels: int
    is_hybrid: bool
    qkv_bias: bool
    backbone_config: Any
    backbone_featmap_shape: list[int] | None
    neck_hidden_sizes: list[int]

    @property
    def vit_out_indices(self) -> list[int]: ...


def resize_pos_embed(posemb: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Bilinearly resample the square position grid to (grid_h, grid_w), keeping the [CLS]
    entry, exactly as transformers' DPT `_resize_pos_embed` (align_corners=False; the
    trained grid is returned as is)."""
    old = int((posemb.shape[1] - 1) ** 0.5)
    if (grid_h, grid_w) == (old, old):
        return posemb
    return resample_position_embeddings(posemb, (grid_h, grid_w), "bilinear")


def _check_channels(pixel_values: torch.Tensor, expected: int) -> None:
    if pixel_values.ndim != 4 or pixel_values.shape[1] != expected:
        raise ValueError(
            f"pixel_values must be (B, {expected}, H, W), got {tuple(pixel_values.shape)}"
        )


class PatchEmbeddings(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        p = config.patch_size
        self.projection = nn.Conv2d(config.num_channels, config.hidden_size, p, stride=p)


class ViTEmbeddings(nn.Module):
    """[CLS] + patch tokens + position embeddings resampled to the input's patch grid."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        grid = config.image_size // config.patch_size
        self.patch_size = config.patch_size
        self.num_channels = config.num_channels
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.patch_embeddings = PatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(torch.zeros(1, grid * grid + 1, config.hidden_size))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        _check_channels(pixel_values, self.num_channels)
        b, _, h, w = pixel_values.shape
        tokens = self.patch_embeddings.projection(pixel_values).flatten(2).transpose(1, 2)
        pos = resize_pos_embed(self.position_embeddings, h // self.patch_size, w // self.patch_size)
        x = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1) + pos
        return self.dropout(x), []


class HybridEmbeddings(nn.Module):
    """DPT-Hybrid: BiT stages 1-2 go to the neck, stage 3 is projected into ViT tokens.

    Unlike the reference (384x384 only) the position grid is resampled for any input size.
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.backbone = BitBackbone(config.backbone_config)
        if len(self.backbone.channels) != 3:
            raise ConfigError(
                f"config field backbone_config.out_features gives {len(self.backbone.channels)} "
                "BiT stages; accepted: 3"
            )
        grid = config.image_size // config.patch_size
        self.patch_size = config.patch_size
        self.num_channels = config.num_channels
        # The reference sizes the projection from backbone_featmap_shape, not the backbone.
        self.projection = nn.Conv2d(config.backbone_featmap_shape[1], config.hidden_size, 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, grid * grid + 1, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        _check_channels(pixel_values, self.num_channels)
        b, _, h, w = pixel_values.shape
        maps = self.backbone(pixel_values)
        tokens = self.projection(maps[-1]).flatten(2).transpose(1, 2)
        pos = resize_pos_embed(self.position_embeddings, h // self.patch_size, w // self.patch_size)
        x = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1) + pos
        return x, list(maps[:2])


class _QKV(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        c, bias = config.hidden_size, config.qkv_bias
        self.query = nn.Linear(c, c, bias=bias)
        self.key = nn.Linear(c, c, bias=bias)
        self.value = nn.Linear(c, c, bias=bias)


class _Attention(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.attention = _QKV(config)
        self.output = Dense(config.hidden_size, config.hidden_size)


class Block(nn.Module):
    """Pre-norm ViT block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.attn_drop = config.attention_probs_dropout_prob
        self.attention = _Attention(config)
        self.intermediate = Dense(config.hidden_size, config.intermediate_size)
        self.output = Dense(config.intermediate_size, config.hidden_size)
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.act = activation(config.hidden_act)
        self.drop = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(new x, attention probabilities if `need_weights`)."""
        b, n, c = x.shape
        h = self.layernorm_before(x)
        qkv = self.attention.attention
        shape = (b, n, self.num_heads, c // self.num_heads)
        q = qkv.query(h).view(shape).transpose(1, 2)
        k = qkv.key(h).view(shape).transpose(1, 2)
        v = qkv.value(h).view(shape).transpose(1, 2)
        a, probs = attend(q, k, v, dropout_p=self.attn_drop if self.training else 0.0,
                          need_weights=need_weights)
        a = a.transpose(1, 2).reshape(b, n, c)
        x = x + self.drop(self.attention.output.dense(a))
        h = self.act(self.intermediate.dense(self.layernorm_after(x)))
        return x + self.drop(self.output.dense(h)), probs


class Encoder(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))

    def forward(
        self, x: torch.Tensor, depth: int | None = None, attentions: bool = False
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """([input, after block 1, ..., after block `depth`] (all blocks by default),
        the blocks' attention probabilities when asked, else [])."""
        states, probs = [x], []
        for block in self.layer[:depth]:
            x, p = block(x, attentions)
            states.append(x)
            if p is not None:
                probs.append(p)
        return states, probs


class ViTBackbone(nn.Module):
    """The (hybrid) ViT encoder as a Backbone: the hidden states the DPT neck reads ([CLS] +
    patch tokens; for the hybrid, the two BiT maps first). `dpt.*` in the checkpoints."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = HybridEmbeddings(config) if config.is_hybrid else ViTEmbeddings(config)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.patch_size = config.patch_size
        self.hidden_size = config.hidden_size
        n_vit = len(config.vit_out_indices)
        bit = list(self.embeddings.backbone.channels[:2]) if config.is_hybrid else []
        self.channels = bit + [config.hidden_size] * n_vit

    def encode(
        self, pixel_values: torch.Tensor, depth: int | None = None, attentions: bool = False
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """(hidden states [embeddings, block 1..depth], BiT maps or [], attention probs or [])."""
        x, maps = self.embeddings(pixel_values)
        states, probs = self.encoder(x, depth, attentions)
        return states, maps, probs

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return self.features(pixel_values)[0]

    def features(
        self, pixel_values: torch.Tensor, hidden_states: bool = False, attentions: bool = False
    ) -> Features:
        """(the states the neck reads, all hidden states if asked, attention probs if
        asked). Blocks after the last one the neck reads cannot change the prediction, so
        they run only when their states or attentions are asked for."""
        wanted = self.config.vit_out_indices
        full = hidden_states or attentions
        states, maps, probs = self.encode(pixel_values, None if full else wanted[-1] + 1,
                                          attentions)
        return (maps + [states[i + 1] for i in wanted], tuple(states) if hidden_states else None,
                tuple(probs) if attentions else None)


SPEC = BackboneSpec("vit", ViTBackbone, None, output="tokens", standalone=False)
