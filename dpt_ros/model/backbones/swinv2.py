"""Swin Transformer V2 backbone (DPT-Swinv2 of MiDaS v3.1) in plain PyTorch.

Module names follow the Hub checkpoints (`embeddings.patch_embeddings.projection`,
`encoder.layers.S.blocks.B.attention.self.{query,key,value,logit_scale,
continuous_position_bias_mlp}`, `encoder.layers.S.downsample.{reduction,norm}`), so
`backbone.*` tensors of Intel/dpt-swinv2-* load with `strict=True`. Its stages are
hierarchical (strides 4, 8, 16, 32): their maps feed DPT's neck directly, with no reassemble.

Input sizes, as the reference: the window of each stage and whether its odd blocks shift are
fixed by the config's `image_size` (window = min(window_size, that stage's grid)). Any input
whose sides are multiples of the patch size (4) runs; a stage grid that the window does not
tile is zero-padded bottom/right for the attention, and an odd grid is padded before patch
merging, exactly as transformers does. Sides that are multiples of 32 (patch 4 x three 2x
merges) need no merging pad and give a depth map of the input's size.
"""

from __future__ import annotations

import functools
import math
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
from dpt_ros.model.layers.dense import Dense
from dpt_ros.model.layers.drop_path import drop_path, drop_path_rates, dropout
from dpt_ros.model.validation import BACKBONE

MODEL_TYPE = "swinv2"
# transformers' shifted-window mask value; its attention adds the mask twice (see _attention).
_MASK = -100.0


@dataclass
class Swinv2Config:
    """transformers' Swinv2Config fields and defaults; validated on construction."""

    image_size: int | list[int] = 224
    patch_size: int | list[int] = 4
    num_channels: int = 3
    embed_dim: int = 96
    depths: list[int] = field(default_factory=lambda: [2, 2, 6, 2])
    num_heads: list[int] = field(default_factory=lambda: [3, 6, 12, 24])
    window_size: int = 7
    pretrained_window_sizes: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    drop_path_rate: float = 0.1
    hidden_act: str = "gelu"
    use_absolute_embeddings: bool = False
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    encoder_stride: int = 32
    out_features: list[str] | None = None
    out_indices: list[int] | None = None
    stage_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("num_channels", "embed_dim", "window_size", "encoder_stride"):
            BACKBONE.integer(name, getattr(self, name))
        BACKBONE.pair("image_size", self.image_size)
        BACKBONE.pair("patch_size", self.patch_size)
        for name in ("depths", "num_heads", "pretrained_window_sizes"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not value:
                BACKBONE.fail(name, value, "a non-empty list of integers")
            for v in value:
                BACKBONE.integer(name, v, minimum=0 if name == "pretrained_window_sizes" else 1)
            setattr(self, name, list(value))
        n = len(self.depths)
        for name in ("num_heads", "pretrained_window_sizes"):
            if len(getattr(self, name)) != n:
                BACKBONE.fail(name, getattr(self, name), f"one entry per stage ({n})")
        for i, heads in enumerate(self.num_heads):
            if (self.embed_dim * 2**i) % heads:
                BACKBONE.fail("num_heads", self.num_heads,
                              f"divisors of each stage's width (stage {i}: "
                              f"{self.embed_dim * 2**i}, not divisible by {heads})")
        BACKBONE.number("mlp_ratio", self.mlp_ratio, exclusive=True)
        BACKBONE.choice("hidden_act", self.hidden_act, ACTIVATION_NAMES)
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate"):
            BACKBONE.probability(name, getattr(self, name))
        BACKBONE.number("initializer_range", self.initializer_range)
        BACKBONE.number("layer_norm_eps", self.layer_norm_eps, exclusive=True)
        BACKBONE.flag("qkv_bias", self.qkv_bias)
        BACKBONE.flag("use_absolute_embeddings", self.use_absolute_embeddings)
        if self.use_absolute_embeddings:
            # The reference adds (1, N+1, C) embeddings to N tokens: it cannot run either.
            BACKBONE.fail("use_absolute_embeddings", True,
                          "false (absolute embeddings are not supported)")
        expected = ["stem"] + [f"stage{i}" for i in range(1, n + 1)]
        self.stage_names = check_stage_names(self.stage_names, expected)
        self.out_features, self.out_indices = align_outputs(
            self.stage_names, self.out_features, self.out_indices)

    @property
    def hidden_size(self) -> int:
        """Width of the last stage (transformers sets the same attribute)."""
        return int(self.embed_dim * 2 ** (len(self.depths) - 1))

    def stage_channels(self) -> list[int]:
        """Channels of stem, stage1, ...: embed_dim, then the width of each stage."""
        return [self.embed_dim] + [self.embed_dim * 2**i for i in range(len(self.depths))]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Swinv2Config:
        d = dict(d)
        # transformers' attribute_map aliases, as written by some configs
        for alias, name in (("num_attention_heads", "num_heads"),
                            ("num_hidden_layers", None), ("num_layers", None),
                            ("hidden_size", None)):
            if alias in d:
                value = d.pop(alias)
                if name is not None and name not in d:
                    d[name] = value
        return config_from_dict(cls, d, MODEL_TYPE)

    def to_dict(self) -> dict[str, Any]:
        out = config_to_dict(self, MODEL_TYPE)
        out["hidden_size"] = self.hidden_size
        out["num_layers"] = len(self.depths)
        return out


@functools.lru_cache(maxsize=64)
def _relative_tables(window: int, pretrained: int, device: str
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-spaced coordinates (2w-1)^2 x 2 fed to the position-bias MLP, w^4 indices into
    its output): Swin V2's continuous position bias, normalised by the pretraining window
    when there was one."""
    r = torch.arange(-(window - 1), window, dtype=torch.float32)
    table = torch.stack(torch.meshgrid(r, r, indexing="ij"), dim=-1)  # (2w-1, 2w-1, 2)
    norm = pretrained - 1 if pretrained > 0 else window - 1
    if pretrained > 0 or window > 1:
        table = table / norm
    table = table * 8
    table = torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    index = (ys[:, None] - ys[None, :] + window - 1) * (2 * window - 1) + (
        xs[:, None] - xs[None, :] + window - 1)
    return table.reshape(-1, 2).to(device), index.reshape(-1).to(device)


@functools.lru_cache(maxsize=64)
def _shift_mask(height: int, width: int, window: int, shift: int, device: str) -> torch.Tensor:
    """(windows, w^2, w^2) mask of the cyclically shifted grid: 0 within one original
    region, _MASK across regions (3 bands per axis, as the reference numbers them)."""
    def bands(n: int) -> torch.Tensor:
        i = torch.arange(n)
        return (i >= n - window).long() + (i >= n - shift).long()

    region = (bands(height)[:, None] * 3 + bands(width)[None, :]).float()
    win = region.view(height // window, window, width // window, window).transpose(1, 2)
    win = win.reshape(-1, window * window)
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, _MASK, 0.0).to(device)


class PatchEmbeddings(nn.Module):
    def __init__(self, cfg: Swinv2Config) -> None:
        super().__init__()
        self.patch = BACKBONE.pair("patch_size", cfg.patch_size)
        self.num_channels = cfg.num_channels
        self.projection = nn.Conv2d(cfg.num_channels, cfg.embed_dim, self.patch,
                                    stride=self.patch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if x.ndim != 4 or x.shape[1] != self.num_channels:
            raise ValueError(f"pixel_values must be (B, {self.num_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        ph, pw = self.patch
        x = F.pad(x, (0, -x.shape[3] % pw, 0, -x.shape[2] % ph))
        x = self.projection(x)
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


class Embeddings(nn.Module):
    def __init__(self, cfg: Swinv2Config) -> None:
        super().__init__()
        self.patch_embeddings = PatchEmbeddings(cfg)
        self.norm = nn.LayerNorm(cfg.embed_dim)  # default eps, as the reference
        self.p_drop = cfg.hidden_dropout_prob

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x, size = self.patch_embeddings(x)
        return dropout(self.norm(x), self.p_drop, self.training), size


class SelfAttention(nn.Module):
    """Scaled cosine attention with a learned temperature and an MLP position bias."""

    def __init__(self, cfg: Swinv2Config, dim: int, heads: int, window: int,
                 pretrained: int) -> None:
        super().__init__()
        self.heads, self.window, self.pretrained = heads, window, pretrained
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))
        self.continuous_position_bias_mlp = nn.Sequential(
            nn.Linear(2, 512, bias=True), nn.ReLU(inplace=True), nn.Linear(512, heads, bias=False))
        self.query = nn.Linear(dim, dim, bias=cfg.qkv_bias)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=cfg.qkv_bias)
        self.p_drop = cfg.attention_probs_dropout_prob

    def position_bias(self) -> torch.Tensor:
        """(heads, w^2, w^2): 16 * sigmoid(MLP(log-spaced relative coordinates))."""
        weight = self.continuous_position_bias_mlp[0].weight
        coords, index = _relative_tables(self.window, self.pretrained, str(weight.device))
        table = self.continuous_position_bias_mlp(coords.to(weight.dtype))
        n = self.window * self.window
        return 16 * torch.sigmoid(table[index].view(n, n, -1).permute(2, 0, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, need_weights: bool
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (windows*B, w^2, C); mask: (windows, w^2, w^2) or None."""
        b, n, c = x.shape
        q, k, v = (lin(x).view(b, n, self.heads, -1).transpose(1, 2)
                   for lin in (self.query, self.key, self.value))
        scores = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        scale = torch.clamp(self.logit_scale, max=math.log(1.0 / 0.01)).exp()
        scores = scores * scale + self.position_bias().unsqueeze(0)
        if mask is not None:
            # transformers adds the (windows, N, N) mask twice; kept for equal outputs.
            w = mask.shape[0]
            scores = scores.view(b // w, w, self.heads, n, n) + 2 * mask[None, :, None]
            scores = scores.view(b, self.heads, n, n)
        probs = torch.softmax(scores, dim=-1)
        out = dropout(probs, self.p_drop, self.training) @ v
        return out.transpose(1, 2).reshape(b, n, c), probs if need_weights else None


class Attention(nn.Module):
    def __init__(self, cfg: Swinv2Config, dim: int, heads: int, window: int,
                 pretrained: int) -> None:
        super().__init__()
        self.self = SelfAttention(cfg, dim, heads, window, pretrained)
        self.output = Dense(dim, dim)


class Layer(nn.Module):
    """Post-norm Swin V2 block: x + ln(attn(x)), then x + ln(mlp(x)), the attention in
    (shifted) windows."""

    def __init__(self, cfg: Swinv2Config, dim: int, resolution: tuple[int, int], heads: int,
                 shift: int, pretrained: int, drop_path_rate: float) -> None:
        super().__init__()
        # window and shift from the configured grid (axis 0, as the reference)
        self.window = min(resolution[0], cfg.window_size)
        self.shift = 0 if resolution[0] <= self.window else shift
        self.attention = Attention(cfg, dim, heads, self.window, pretrained)
        self.layernorm_before = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.intermediate = Dense(dim, int(cfg.mlp_ratio * dim))
        self.output = Dense(int(cfg.mlp_ratio * dim), dim)
        self.layernorm_after = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.act = activation(cfg.hidden_act)
        self.p_drop, self.p_path = cfg.hidden_dropout_prob, drop_path_rate
        self.p_attn = cfg.attention_probs_dropout_prob  # the reference's output dropout

    def forward(self, x: torch.Tensor, size: tuple[int, int], need_weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        height, width = size
        b, _, c = x.shape
        w, s = self.window, self.shift
        h = F.pad(x.view(b, height, width, c), (0, 0, 0, -width % w, 0, -height % w))
        hp, wp = h.shape[1:3]
        if s > 0:
            h = torch.roll(h, shifts=(-s, -s), dims=(1, 2))
        windows = h.view(b, hp // w, w, wp // w, w, c).transpose(2, 3).reshape(-1, w * w, c)
        mask = _shift_mask(hp, wp, w, s, str(x.device)).to(x.dtype) if s > 0 else None
        a, probs = self.attention.self(windows, mask, need_weights)
        a = dropout(self.attention.output.dense(a), self.p_attn, self.training)
        h = a.view(b, hp // w, wp // w, w, w, c).transpose(2, 3).reshape(b, hp, wp, c)
        if s > 0:
            h = torch.roll(h, shifts=(s, s), dims=(1, 2))
        h = h[:, :height, :width].reshape(b, height * width, c)
        x = x + drop_path(self.layernorm_before(h), self.p_path, self.training)
        y = self.output.dense(self.act(self.intermediate.dense(x)))
        y = dropout(y, self.p_drop, self.training)
        return x + drop_path(self.layernorm_after(y), self.p_path, self.training), probs


class PatchMerging(nn.Module):
    """2x2 neighbourhoods concatenated (4C) -> Linear to 2C -> LayerNorm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        b, _, c = x.shape
        x = F.pad(x.view(b, height, width, c), (0, 0, 0, width % 2, 0, height % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]],
                      dim=-1)
        return self.norm(self.reduction(x.view(b, -1, 4 * c)))


class Stage(nn.Module):
    def __init__(self, cfg: Swinv2Config, i: int, grid: tuple[int, int],
                 rates: list[float]) -> None:
        super().__init__()
        dim = cfg.embed_dim * 2**i
        resolution = (grid[0] // 2**i, grid[1] // 2**i)
        self.blocks = nn.ModuleList(
            Layer(cfg, dim, resolution, cfg.num_heads[i], 0 if j % 2 == 0 else cfg.window_size // 2,
                  cfg.pretrained_window_sizes[i], rates[j])
            for j in range(cfg.depths[i]))
        self.downsample = PatchMerging(dim) if i < len(cfg.depths) - 1 else None


class Encoder(nn.Module):
    def __init__(self, cfg: Swinv2Config) -> None:
        super().__init__()
        ih, iw = BACKBONE.pair("image_size", cfg.image_size)
        ph, pw = BACKBONE.pair("patch_size", cfg.patch_size)
        total = sum(cfg.depths)
        rates = drop_path_rates(cfg.drop_path_rate, total)
        starts = [sum(cfg.depths[:i]) for i in range(len(cfg.depths))]
        self.layers = nn.ModuleList(
            Stage(cfg, i, (ih // ph, iw // pw), rates[starts[i]:starts[i] + cfg.depths[i]])
            for i in range(len(cfg.depths)))


class Swinv2Backbone(nn.Module):
    """Maps (B, C, h, w) of the selected stages ("stem" = embeddings, "stageN" = stage N
    before its patch merging), as transformers' Swinv2Backbone.feature_maps."""

    def __init__(self, config: Swinv2Config) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.patch_size = BACKBONE.pair("patch_size", config.patch_size)[0]
        self.hidden_size = config.hidden_size
        channels = config.stage_channels()
        n = len(config.stage_names)
        self._wanted = sorted(i % n for i in config.out_indices)
        self.channels = [channels[i] for i in self._wanted]

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return self.features(pixel_values)[0]

    def features(
        self, pixel_values: torch.Tensor, hidden_states: bool = False, attentions: bool = False
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...] | None,
               tuple[torch.Tensor, ...] | None]:
        """(feature maps, token states (embeddings, each stage before merging) if asked, the
        last block's attention probabilities of each stage if asked — what the reference
        returns)."""
        x, size = self.embeddings(pixel_values)
        states, sizes, probs = [x], [size], []
        depth = None if hidden_states or attentions else self._wanted[-1]
        stages = self.encoder.layers[:depth]
        for k, stage in enumerate(stages):
            p = None
            for block in stage.blocks:
                x, p = block(x, size, attentions)
            states.append(x)
            sizes.append(size)
            if p is not None:
                probs.append(p)
            if stage.downsample is not None and k < len(stages) - 1:
                x = stage.downsample(x, size)
                size = ((size[0] + 1) // 2, (size[1] + 1) // 2)
        b = pixel_values.shape[0]
        maps = [states[i].view(b, *sizes[i], -1).permute(0, 3, 1, 2) for i in self._wanted]
        return (maps, tuple(states) if hidden_states else None,
                tuple(probs) if attentions else None)


SPEC = BackboneSpec(MODEL_TYPE, Swinv2Backbone, Swinv2Config, output="maps")
