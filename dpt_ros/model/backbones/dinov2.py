"""DINOv2 ViT backbone (DPT-DINOv2, Depth Anything V1/V2) in plain PyTorch.

Parameter names follow the Hugging Face Hub checkpoints (`attention.attention.query`,
`attention.output.dense`, `mlp.fc1` or SwiGLU `mlp.weights_in`/`weights_out`), so a
checkpoint's `backbone.*` tensors load with `strict=True`. Outputs equal transformers'
`Dinov2Backbone(...).feature_maps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.model.backbones.base import (
    BackboneSpec,
    align_outputs,
    check_stage_names,
    config_from_dict,
    config_to_dict,
)
from dpt_ros.model.layers.activations import ACTIVATION_NAMES, activation
from dpt_ros.model.layers.attention import attend
from dpt_ros.model.layers.drop_path import drop_path, dropout
from dpt_ros.model.layers.position_embeddings import resample_position_embeddings
from dpt_ros.model.validation import BACKBONE

MODEL_TYPE = "dinov2"


@dataclass
class Dinov2Config:
    """transformers' Dinov2Config fields and defaults; validated on construction."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    mlp_ratio: float = 4
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    image_size: int | list[int] = 224
    patch_size: int | list[int] = 14
    num_channels: int = 3
    qkv_bias: bool = True
    layerscale_value: float = 1.0
    drop_path_rate: float = 0.0
    use_swiglu_ffn: bool = False
    out_features: list[str] | None = None
    out_indices: list[int] | None = None
    apply_layernorm: bool = True
    reshape_hidden_states: bool = True
    use_mask_token: bool = True
    stage_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_channels"):
            BACKBONE.integer(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            BACKBONE.fail("num_attention_heads", self.num_attention_heads,
                          "a divisor of hidden_size")
        BACKBONE.number("mlp_ratio", self.mlp_ratio, exclusive=True)
        BACKBONE.choice("hidden_act", self.hidden_act, ACTIVATION_NAMES)
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate"):
            BACKBONE.probability(name, getattr(self, name))
        BACKBONE.number("initializer_range", self.initializer_range)
        BACKBONE.number("layer_norm_eps", self.layer_norm_eps, exclusive=True)
        BACKBONE.number("layerscale_value", self.layerscale_value, minimum=float("-inf"))
        BACKBONE.pair("image_size", self.image_size)
        BACKBONE.pair("patch_size", self.patch_size)
        flags = ("qkv_bias", "use_swiglu_ffn", "apply_layernorm", "reshape_hidden_states")
        for name in (*flags, "use_mask_token"):
            BACKBONE.flag(name, getattr(self, name))
        expected = ["stem"] + [f"stage{i}" for i in range(1, self.num_hidden_layers + 1)]
        self.stage_names = check_stage_names(self.stage_names, expected)
        self.out_features, self.out_indices = align_outputs(
            self.stage_names, self.out_features, self.out_indices
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Dinov2Config:
        return config_from_dict(cls, d, MODEL_TYPE)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self, MODEL_TYPE)


class PatchEmbeddings(nn.Module):
    def __init__(self, cfg: Dinov2Config) -> None:
        super().__init__()
        patch = BACKBONE.pair("patch_size", cfg.patch_size)
        self.projection = nn.Conv2d(cfg.num_channels, cfg.hidden_size, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x.to(self.projection.weight.dtype)).flatten(2).transpose(1, 2)


class Embeddings(nn.Module):
    """CLS token + patch tokens + position embeddings resampled to the input's patch grid."""

    def __init__(self, cfg: Dinov2Config) -> None:
        super().__init__()
        (ih, iw), (ph, pw) = (
            BACKBONE.pair("image_size", cfg.image_size),
            BACKBONE.pair("patch_size", cfg.patch_size),
        )
        self.patch = (ph, pw)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.hidden_size))
        # Only used for masked pre-training; kept so checkpoints load strictly.
        self.mask_token = (
            nn.Parameter(torch.zeros(1, cfg.hidden_size)) if cfg.use_mask_token else None
        )
        self.patch_embeddings = PatchEmbeddings(cfg)
        n_pos = (ih // ph) * (iw // pw) + 1
        self.position_embeddings = nn.Parameter(torch.zeros(1, n_pos, cfg.hidden_size))
        self.p_drop = cfg.hidden_dropout_prob

    def interpolate_pos_encoding(self, n_patches: int, height: int, width: int) -> torch.Tensor:
        """Bicubic resampling of the square trained grid, computed in float32 (half-precision
        bicubic drifts) and cast back, exactly as the reference does."""
        pos = self.position_embeddings
        if not torch.jit.is_tracing() and n_patches == pos.shape[1] - 1 and height == width:
            return pos
        grid = (height // self.patch[0], width // self.patch[1])
        return resample_position_embeddings(pos, grid, "bicubic", float32=True)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        height, width = pixel_values.shape[-2:]
        x = self.patch_embeddings(pixel_values)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.interpolate_pos_encoding(x.shape[1] - 1, height, width)
        return dropout(x, self.p_drop, self.training)


class Attention(nn.Module):
    """Multi-head self-attention on SDPA; submodule names mirror the Hub layout."""

    def __init__(self, cfg: Dinov2Config) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.p_drop = cfg.attention_probs_dropout_prob
        self.attention = nn.ModuleDict(
            {k: nn.Linear(d, d, bias=cfg.qkv_bias) for k in ("query", "key", "value")}
        )
        self.output = nn.ModuleDict({"dense": nn.Linear(d, d)})

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, d = x.shape
        q, k, v = (
            self.attention[name](x).view(b, n, self.heads, -1).transpose(1, 2)
            for name in ("query", "key", "value")
        )
        p = self.p_drop if self.training else 0.0
        out, probs = attend(q, k, v, dropout_p=p, need_weights=need_weights)
        return self.output["dense"](out.transpose(1, 2).reshape(b, n, d)), probs


class LayerScale(nn.Module):
    def __init__(self, dim: int, value: float) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.full((dim,), float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.lambda1


class Mlp(nn.Module):
    def __init__(self, cfg: Dinov2Config) -> None:
        super().__init__()
        hidden = int(cfg.hidden_size * cfg.mlp_ratio)
        self.fc1 = nn.Linear(cfg.hidden_size, hidden)
        self.act = activation(cfg.hidden_act)
        self.fc2 = nn.Linear(hidden, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """SwiGLU FFN with gate and value packed in one `weights_in` (gate first), as stored."""

    def __init__(self, cfg: Dinov2Config) -> None:
        super().__init__()
        hidden = int(cfg.hidden_size * cfg.mlp_ratio)
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.weights_in = nn.Linear(cfg.hidden_size, 2 * hidden)
        self.weights_out = nn.Linear(hidden, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.weights_in(x).chunk(2, dim=-1)
        return self.weights_out(F.silu(gate) * value)


class Block(nn.Module):
    def __init__(self, cfg: Dinov2Config, drop_path_rate: float) -> None:
        super().__init__()
        d, eps = cfg.hidden_size, cfg.layer_norm_eps
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.attention = Attention(cfg)
        self.layer_scale1 = LayerScale(d, cfg.layerscale_value)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = SwiGLU(cfg) if cfg.use_swiglu_ffn else Mlp(cfg)
        self.layer_scale2 = LayerScale(d, cfg.layerscale_value)
        self.p_path = drop_path_rate

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        y, probs = self.attention(self.norm1(x), need_weights)
        x = x + drop_path(self.layer_scale1(y), self.p_path, self.training)
        y = self.layer_scale2(self.mlp(self.norm2(x)))
        return x + drop_path(y, self.p_path, self.training), probs


class Encoder(nn.Module):
    def __init__(self, cfg: Dinov2Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(
            Block(cfg, cfg.drop_path_rate) for _ in range(cfg.num_hidden_layers)
        )


class Dinov2Backbone(nn.Module):
    """Hidden states of the selected stages ("stem" = embeddings, "stageN" = after block N),
    optionally layer-normed and reshaped to (B, C, H/patch, W/patch) maps."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        ph, pw = self.embeddings.patch
        self.patch_size: int | tuple[int, int] = ph if ph == pw else (ph, pw)
        self.hidden_size = config.hidden_size
        self.channels = [config.hidden_size] * len(config.out_features)
        n = len(config.stage_names)
        self._wanted = sorted(i % n for i in config.out_indices)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return self.features(pixel_values)[0]

    def features(
        self, pixel_values: torch.Tensor, hidden_states: bool = False, attentions: bool = False
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...] | None,
               tuple[torch.Tensor, ...] | None]:
        """(feature maps, all hidden states (embeddings, block 1..N) if asked, every block's
        attention probabilities if asked). Blocks after the last requested stage cannot
        change the maps, so they run only when hidden states or attentions are wanted."""
        b, _, height, width = pixel_values.shape
        ph, pw = self.embeddings.patch
        x = self.embeddings(pixel_values)
        states, probs = [x], []
        depth = None if hidden_states or attentions else self._wanted[-1]
        for block in self.encoder.layer[:depth]:
            x, p = block(x, attentions)
            states.append(x)
            if p is not None:
                probs.append(p)
        maps = []
        for i in self._wanted:
            h = states[i]
            if self.config.apply_layernorm:
                h = self.layernorm(h)
            if self.config.reshape_hidden_states:
                h = h[:, 1:].reshape(b, height // ph, width // pw, -1).permute(0, 3, 1, 2)
                h = h.contiguous()
            maps.append(h)
        return (maps, tuple(states) if hidden_states else None,
                tuple(probs) if attentions else None)


SPEC = BackboneSpec(MODEL_TYPE, Dinov2Backbone, Dinov2Config, output="tokens")
