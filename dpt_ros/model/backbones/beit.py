"""BEiT backbone (DPT-BEiT of MiDaS v3.1, ZoeDepth) in plain PyTorch.

Module names follow the Hub checkpoints (`embeddings.cls_token`,
`encoder.layer.N.attention.attention.{query,key,value}`,
`...attention.attention.relative_position_bias.relative_position_bias_table`, `lambda_1`), so
`backbone.*` tensors of Intel/dpt-beit-* and Intel/zoedepth-* load with `strict=True`.

Any input whose sides are multiples of the patch size works: the relative position bias
table, trained for the config's `image_size` grid, is resampled bilinearly to the input's
grid (MiDaS v3.1's rule, as transformers does) and indexed for that grid; at the trained
size the table is used as stored.
"""

from __future__ import annotations

import functools
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
from dpt_ros.model.layers.dense import Dense
from dpt_ros.model.layers.drop_path import drop_path, drop_path_rates, dropout
from dpt_ros.model.layers.position_embeddings import resample_position_embeddings
from dpt_ros.model.validation import BACKBONE

MODEL_TYPE = "beit"


@dataclass
class BeitConfig:
    """transformers' BeitConfig fields (those the backbone uses) and defaults; validated.

    The image-classification / segmentation-head fields of the reference (vocab_size,
    pool_scales, auxiliary_*) are kept in `extra` and given back by `to_dict`.
    """

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    image_size: int | list[int] = 224
    patch_size: int | list[int] = 16
    num_channels: int = 3
    use_mask_token: bool = False
    use_absolute_position_embeddings: bool = False
    use_relative_position_bias: bool = False
    use_shared_relative_position_bias: bool = False
    layer_scale_init_value: float = 0.1
    drop_path_rate: float = 0.1
    use_mean_pooling: bool = True
    add_fpn: bool = False
    reshape_hidden_states: bool = True
    out_features: list[str] | None = None
    out_indices: list[int] | None = None
    stage_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "num_channels"):
            BACKBONE.integer(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            BACKBONE.fail("num_attention_heads", self.num_attention_heads,
                          "a divisor of hidden_size")
        BACKBONE.choice("hidden_act", self.hidden_act, ACTIVATION_NAMES)
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate"):
            BACKBONE.probability(name, getattr(self, name))
        BACKBONE.number("initializer_range", self.initializer_range)
        BACKBONE.number("layer_norm_eps", self.layer_norm_eps, exclusive=True)
        BACKBONE.number("layer_scale_init_value", self.layer_scale_init_value)
        BACKBONE.pair("image_size", self.image_size)
        patch = BACKBONE.pair("patch_size", self.patch_size)
        if patch[0] != patch[1]:
            BACKBONE.fail("patch_size", self.patch_size,
                          "a square patch (the reference uses one int)")
        for name in ("use_mask_token", "use_absolute_position_embeddings",
                     "use_relative_position_bias", "use_shared_relative_position_bias",
                     "use_mean_pooling", "add_fpn", "reshape_hidden_states"):
            BACKBONE.flag(name, getattr(self, name))
        if self.add_fpn:
            BACKBONE.fail("add_fpn", True,
                          "false (the FPN of BEiT segmentation is not supported for DPT)")
        if not self.use_mean_pooling:
            BACKBONE.fail("use_mean_pooling", False,
                          "true (DPT reads hidden states; the final layernorm is not supported)")
        legacy = self.extra.pop("segmentation_indices", None)
        if self.out_indices is None and self.out_features is None and legacy is not None:
            self.out_indices = list(legacy)
        expected = ["stem"] + [f"stage{i}" for i in range(1, self.num_hidden_layers + 1)]
        self.stage_names = check_stage_names(self.stage_names, expected)
        self.out_features, self.out_indices = align_outputs(
            self.stage_names, self.out_features, self.out_indices)

    @property
    def patch(self) -> int:
        return BACKBONE.pair("patch_size", self.patch_size)[0]

    @property
    def grid(self) -> tuple[int, int]:
        """The patch grid of `image_size`: what the bias table was trained for."""
        h, w = BACKBONE.pair("image_size", self.image_size)
        return h // self.patch, w // self.patch

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BeitConfig:
        return config_from_dict(cls, d, MODEL_TYPE)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self, MODEL_TYPE)


@functools.lru_cache(maxsize=32)
def _relative_index(grid_h: int, grid_w: int, device: str) -> torch.Tensor:
    """(N+1)^2 indices into the (2h-1)(2w-1)+3 bias table for an h x w grid plus [CLS]: the
    pairwise offset for token pairs, then the three [CLS] entries (cls->token, token->cls,
    cls->cls) at the end of the table."""
    n_rel = (2 * grid_h - 1) * (2 * grid_w - 1) + 3
    ys, xs = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    dy = ys[:, None] - ys[None, :] + grid_h - 1
    dx = xs[:, None] - xs[None, :] + grid_w - 1
    n = grid_h * grid_w + 1
    index = torch.empty(n, n, dtype=torch.long)
    index[1:, 1:] = dy * (2 * grid_w - 1) + dx
    index[0, :] = n_rel - 3
    index[:, 0] = n_rel - 2
    index[0, 0] = n_rel - 1
    return index.reshape(-1).to(device)


class RelativePositionBias(nn.Module):
    """Learned per-head bias for every (query, key) offset on the trained grid."""

    def __init__(self, cfg: BeitConfig) -> None:
        super().__init__()
        self.grid = cfg.grid
        n_rel = (2 * self.grid[0] - 1) * (2 * self.grid[1] - 1) + 3
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(n_rel, cfg.num_attention_heads))

    def forward(self, grid: tuple[int, int]) -> torch.Tensor:
        """(1, heads, N+1, N+1) for an input patch grid `grid`."""
        table = self.relative_position_bias_table
        if grid != self.grid:
            old_h, old_w = 2 * self.grid[0] - 1, 2 * self.grid[1] - 1
            new_h, new_w = 2 * grid[0] - 1, 2 * grid[1] - 1
            # The reference lays the trained table out as (old_w, old_h) before resampling
            # (the same thing for the square grids every checkpoint has); so do we.
            sub = table[: old_h * old_w].reshape(1, old_w, old_h, -1).permute(0, 3, 1, 2)
            sub = F.interpolate(sub, size=(new_h, new_w), mode="bilinear")
            sub = sub.permute(0, 2, 3, 1).reshape(new_h * new_w, -1)
            table = torch.cat([sub, table[old_h * old_w:]])
        n = grid[0] * grid[1] + 1
        index = _relative_index(grid[0], grid[1], str(table.device))
        return table[index].view(n, n, -1).permute(2, 0, 1).unsqueeze(0)


class PatchEmbeddings(nn.Module):
    def __init__(self, cfg: BeitConfig) -> None:
        super().__init__()
        p = cfg.patch
        self.num_channels = cfg.num_channels
        self.projection = nn.Conv2d(cfg.num_channels, cfg.hidden_size, p, stride=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_channels:
            raise ValueError(f"pixel_values must be (B, {self.num_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        return self.projection(x).flatten(2).transpose(1, 2)


class Embeddings(nn.Module):
    """[CLS] + patch tokens (+ absolute position embeddings, bicubically resampled to the
    input grid, when the config has them; DPT-BEiT uses the relative bias instead)."""

    def __init__(self, cfg: BeitConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.patch = cfg.patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d)) if cfg.use_mask_token else None
        self.patch_embeddings = PatchEmbeddings(cfg)
        gh, gw = cfg.grid
        self.position_embeddings = (
            nn.Parameter(torch.zeros(1, gh * gw + 1, d))
            if cfg.use_absolute_position_embeddings else None)
        self.p_drop = cfg.hidden_dropout_prob

    def _positions(self, n_patches: int, height: int, width: int) -> torch.Tensor:
        pos = self.position_embeddings
        if n_patches == pos.shape[1] - 1 and height == width:
            return pos
        grid = (height // self.patch, width // self.patch)
        return resample_position_embeddings(pos, grid, "bicubic")

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        height, width = pixel_values.shape[-2:]
        x = self.patch_embeddings(pixel_values)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        if self.position_embeddings is not None:
            x = x + self._positions(x.shape[1] - 1, height, width)
        return dropout(x, self.p_drop, self.training)


class SelfAttention(nn.Module):
    """query and value with bias, key without (BEiT's q_bias / v_bias); optional per-layer
    relative position bias."""

    def __init__(self, cfg: BeitConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d)
        self.relative_position_bias = (
            RelativePositionBias(cfg) if cfg.use_relative_position_bias else None)


class Attention(nn.Module):
    def __init__(self, cfg: BeitConfig) -> None:
        super().__init__()
        self.attention = SelfAttention(cfg)
        self.output = Dense(cfg.hidden_size, cfg.hidden_size)
        self.p_drop = cfg.attention_probs_dropout_prob

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, d = x.shape
        sa = self.attention
        q, k, v = (lin(x).view(b, n, sa.heads, -1).transpose(1, 2)
                   for lin in (sa.query, sa.key, sa.value))
        p = self.p_drop if self.training else 0.0
        out, probs = attend(q, k, v, bias=bias, dropout_p=p, need_weights=need_weights)
        return self.output.dense(out.transpose(1, 2).reshape(b, n, d)), probs


class Layer(nn.Module):
    """Pre-norm block with layer scale: x + lambda_1 * attn(ln(x)), x + lambda_2 * mlp(ln(x))."""

    def __init__(self, cfg: BeitConfig, drop_path_rate: float) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.attention = Attention(cfg)
        self.intermediate = Dense(d, cfg.intermediate_size)
        self.output = Dense(cfg.intermediate_size, d)
        self.layernorm_before = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.act = activation(cfg.hidden_act)
        init = cfg.layer_scale_init_value
        self.lambda_1 = nn.Parameter(torch.full((d,), float(init))) if init > 0 else None
        self.lambda_2 = nn.Parameter(torch.full((d,), float(init))) if init > 0 else None
        self.p_drop, self.p_path = cfg.hidden_dropout_prob, drop_path_rate

    def _branch(self, y: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        y = dropout(y, self.p_drop, self.training)
        y = y * scale if scale is not None else y
        return drop_path(y, self.p_path, self.training)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        y, probs = self.attention(self.layernorm_before(x), bias, need_weights)
        x = x + self._branch(y, self.lambda_1)
        y = self.output.dense(self.act(self.intermediate.dense(self.layernorm_after(x))))
        return x + self._branch(y, self.lambda_2), probs


class Encoder(nn.Module):
    def __init__(self, cfg: BeitConfig) -> None:
        super().__init__()
        rates = drop_path_rates(cfg.drop_path_rate, cfg.num_hidden_layers)
        self.layer = nn.ModuleList(Layer(cfg, r) for r in rates)
        self.relative_position_bias = (
            RelativePositionBias(cfg) if cfg.use_shared_relative_position_bias else None)


class BeitBackbone(nn.Module):
    """Hidden states of the selected stages ("stem" = embeddings, "stageN" = after block N),
    as tokens with [CLS] (what DPT's reassemble stage reads) or, with
    reshape_hidden_states, as (B, C, H/16, W/16) maps."""

    def __init__(self, config: BeitConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.patch_size = config.patch
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
        """(feature maps, hidden states (embeddings, block 1..N) if asked, every block's
        attention probabilities if asked)."""
        b, _, height, width = pixel_values.shape
        grid = (height // self.patch_size, width // self.patch_size)
        x = self.embeddings(pixel_values)
        shared = self.encoder.relative_position_bias
        shared_bias = shared(grid) if shared is not None else None
        states, probs = [x], []
        depth = None if hidden_states or attentions else self._wanted[-1]
        for layer in self.encoder.layer[:depth]:
            own = layer.attention.attention.relative_position_bias
            bias = own(grid) if own is not None else None
            if shared_bias is not None:
                bias = shared_bias if bias is None else bias + shared_bias
            x, p = layer(x, bias, attentions)
            states.append(x)
            if p is not None:
                probs.append(p)
        maps = []
        for i in self._wanted:
            h = states[i]
            if self.config.reshape_hidden_states:
                h = h[:, 1:].transpose(1, 2).reshape(b, -1, grid[0], grid[1])
            maps.append(h)
        return (maps, tuple(states) if hidden_states else None,
                tuple(probs) if attentions else None)


SPEC = BackboneSpec(MODEL_TYPE, BeitBackbone, BeitConfig, output="tokens")
