"""BiT (Big Transfer) ResNet-v2 backbone, the convolutional half of DPT-Hybrid, in plain PyTorch.

Weight-standardised convolutions, optional TensorFlow-style dynamic "same" padding and
group-norm activations, with the parameter names of transformers' `BitBackbone` (everything
under `bit.`), so Hub checkpoints load with `strict=True` and the feature maps equal
transformers' `BitBackbone(...).feature_maps`.
"""

from __future__ import annotations

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
from dpt_ros.model.layers.drop_path import drop_path
from dpt_ros.model.validation import BACKBONE

MODEL_TYPE = "bit"
LAYER_TYPES = ("preactivation", "bottleneck")


def make_div(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor` (never down by more than 10 %)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


@dataclass
class BitConfig:
    """transformers' BitConfig fields and defaults; validated on construction.
    `global_padding` is stored upper-case ("SAME"/"VALID") as transformers does."""

    num_channels: int = 3
    embedding_size: int = 64
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 512, 1024, 2048])
    depths: list[int] = field(default_factory=lambda: [3, 4, 6, 3])
    layer_type: str = "preactivation"
    hidden_act: str = "relu"
    global_padding: str | None = None
    num_groups: int = 32
    drop_path_rate: float = 0.0
    embedding_dynamic_padding: bool = False
    output_stride: int = 32
    width_factor: int = 1
    out_features: list[str] | None = None
    out_indices: list[int] | None = None
    stage_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("num_channels", "embedding_size", "num_groups", "output_stride"):
            BACKBONE.integer(name, getattr(self, name))
        BACKBONE.integer("width_factor", self.width_factor)
        for name in ("hidden_sizes", "depths"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not value:
                BACKBONE.fail(name, value, "a non-empty list of integers")
            for v in value:
                BACKBONE.integer(name, v)
            setattr(self, name, list(value))
        if len(self.hidden_sizes) != len(self.depths):
            BACKBONE.fail("hidden_sizes", self.hidden_sizes, "one entry per entry of depths")
        BACKBONE.choice("layer_type", self.layer_type, LAYER_TYPES)
        BACKBONE.choice("hidden_act", self.hidden_act, ACTIVATION_NAMES)
        if isinstance(self.global_padding, str):
            self.global_padding = self.global_padding.upper()
        BACKBONE.choice("global_padding", self.global_padding, (None, "SAME", "VALID"))
        BACKBONE.probability("drop_path_rate", self.drop_path_rate)
        BACKBONE.flag("embedding_dynamic_padding", self.embedding_dynamic_padding)
        normed = {self.embedding_size}
        for width in self.widths:
            normed |= {width, make_div(width * 0.25)}
        if self.layer_type == "preactivation":
            normed.add(self.hidden_sizes[-1])
        if any(c % self.num_groups for c in normed):
            BACKBONE.fail("num_groups", self.num_groups,
                          f"a divisor of every normed width {sorted(normed)}")
        expected = ["stem"] + [f"stage{i}" for i in range(1, len(self.depths) + 1)]
        self.stage_names = check_stage_names(self.stage_names, expected)
        self.out_features, self.out_indices = align_outputs(
            self.stage_names, self.out_features, self.out_indices
        )

    @property
    def widths(self) -> list[int]:
        """Output channels of each stage."""
        return [make_div(h * self.width_factor) for h in self.hidden_sizes]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BitConfig:
        return config_from_dict(cls, d, MODEL_TYPE)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self, MODEL_TYPE)


def pad_same(x: torch.Tensor, kernel: int, stride: int, dilation: int = 1) -> torch.Tensor:
    """TensorFlow "SAME" padding for this input size (extra pixel at the bottom/right)."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads) if any(pads) else x


class StdConv2d(nn.Conv2d):
    """Weight-standardised conv (per output channel zero mean, unit variance). "SAME" becomes
    static symmetric padding where that is exact and dynamic padding otherwise."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        dilation: int = 1,
        padding: str | None = None,
        eps: float = 1e-8,
    ) -> None:
        symmetric = ((stride - 1) + dilation * (kernel - 1)) // 2
        dynamic = padding == "SAME" and (stride > 1 or (dilation * (kernel - 1)) % 2 == 1)
        static = 0 if padding == "VALID" or dynamic else symmetric
        super().__init__(cin, cout, kernel, stride, static, dilation, bias=False)
        self.dynamic = dynamic
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic:
            x = pad_same(x, self.kernel_size[0], self.stride[0], self.dilation[0])
        flat = self.weight.reshape(1, self.out_channels, -1)
        w = F.batch_norm(flat, None, None, training=True, momentum=0.0, eps=self.eps)
        w = w.reshape_as(self.weight)
        return F.conv2d(x, w, None, self.stride, self.padding, self.dilation)


class GroupNormAct(nn.GroupNorm):
    def __init__(self, cfg: BitConfig, channels: int, act: bool = True) -> None:
        super().__init__(cfg.num_groups, channels, eps=1e-5)
        self.act = activation(cfg.hidden_act) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps))


class Embedder(nn.Module):
    """Stem: 7x7/2 conv, (norm for v1 layers), 3x3/2 max-pool."""

    def __init__(self, cfg: BitConfig) -> None:
        super().__init__()
        self.convolution = StdConv2d(
            cfg.num_channels, cfg.embedding_size, 7, 2, padding=cfg.global_padding
        )
        self.norm = (
            GroupNormAct(cfg, cfg.embedding_size) if cfg.layer_type == "bottleneck" else None
        )
        self.same = cfg.global_padding == "SAME"
        self.dynamic_pool = cfg.embedding_dynamic_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convolution(x)
        if not self.same:
            x = F.pad(x, (1, 1, 1, 1))
        if self.norm is not None:
            x = self.norm(x)
        if self.dynamic_pool:
            x = pad_same(x, 3, 2)  # zero padding, as the reference (not -inf)
        return F.max_pool2d(x, 3, 2)


class Downsample(nn.Module):
    def __init__(self, cfg: BitConfig, cin: int, cout: int, stride: int, preact: bool) -> None:
        super().__init__()
        self.conv = StdConv2d(cin, cout, 1, stride, padding=cfg.global_padding)
        self.norm = None if preact else GroupNormAct(cfg, cout, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.norm is None else self.norm(x)


class PreActBottleneck(nn.Module):
    """ResNet-v2 block: norm-act before each conv, stride on the 3x3. Like the reference it
    ignores dilation."""

    def __init__(
        self,
        cfg: BitConfig,
        cin: int,
        cout: int,
        stride: int,
        dilation: int,
        first: bool,
        p_path: float,
    ) -> None:
        super().__init__()
        mid, pad = make_div(cout * 0.25), cfg.global_padding
        self.downsample = Downsample(cfg, cin, cout, stride, preact=True) if first else None
        self.norm1 = GroupNormAct(cfg, cin)
        self.conv1 = StdConv2d(cin, mid, 1, padding=pad)
        self.norm2 = GroupNormAct(cfg, mid)
        self.conv2 = StdConv2d(mid, mid, 3, stride, padding=pad)
        self.norm3 = GroupNormAct(cfg, mid)
        self.conv3 = StdConv2d(mid, cout, 1, padding=pad)
        self.p_path = p_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.norm1(x)
        shortcut = x if self.downsample is None else self.downsample(pre)
        x = self.conv3(self.norm3(self.conv2(self.norm2(self.conv1(pre)))))
        return drop_path(x, self.p_path, self.training) + shortcut


class Bottleneck(nn.Module):
    """ResNet-v1.5 block (conv then norm), the layout of DPT-Hybrid's backbone."""

    def __init__(
        self,
        cfg: BitConfig,
        cin: int,
        cout: int,
        stride: int,
        dilation: int,
        first: bool,
        p_path: float,
    ) -> None:
        super().__init__()
        mid, pad = make_div(cout * 0.25), cfg.global_padding
        self.downsample = Downsample(cfg, cin, cout, stride, preact=False) if first else None
        self.conv1 = StdConv2d(cin, mid, 1, padding=pad)
        self.norm1 = GroupNormAct(cfg, mid)
        self.conv2 = StdConv2d(mid, mid, 3, stride, dilation, padding=pad)
        self.norm2 = GroupNormAct(cfg, mid)
        self.conv3 = StdConv2d(mid, cout, 1, padding=pad)
        self.norm3 = GroupNormAct(cfg, cout, act=False)
        self.activation = activation(cfg.hidden_act)
        self.p_path = p_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.norm2(self.conv2(self.norm1(self.conv1(x))))
        x = drop_path(self.norm3(self.conv3(x)), self.p_path, self.training)
        return self.activation(x + shortcut)


class Stage(nn.Module):
    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Encoder(nn.Module):
    """Stages with stride 1, 2, 2, ...; once `output_stride` is reached, further stages
    dilate instead of striding (the 3x3 of a stage's first block keeps the previous
    dilation, as in the reference)."""

    def __init__(self, cfg: BitConfig) -> None:
        super().__init__()
        block = Bottleneck if cfg.layer_type == "bottleneck" else PreActBottleneck
        rates = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths)).tolist()
        cin, current_stride, dilation = cfg.embedding_size, 4, 1
        self.stages = nn.ModuleList()
        for i, (depth, cout) in enumerate(zip(cfg.depths, cfg.widths)):
            stride = 1 if i == 0 else 2
            if current_stride >= cfg.output_stride:
                dilation, stride = dilation * stride, 1
            first_dilation = 1 if dilation in (1, 2) else 2
            layers = []
            for j in range(depth):
                d = first_dilation if j == 0 else dilation
                p = rates[sum(cfg.depths[:i]) + j]
                c, s = (cin, stride) if j == 0 else (cout, 1)
                layers.append(block(cfg, c, cout, s, d, j == 0, p))
            self.stages.append(Stage(layers))
            cin, current_stride = cout, current_stride * stride

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        states = [x]
        for stage in self.stages:
            x = stage(x)
            states.append(x)
        return states


class BitModel(nn.Module):
    """Container matching the reference `BitModel` names (`embedder`, `encoder`, `norm`)."""

    def __init__(self, cfg: BitConfig) -> None:
        super().__init__()
        self.embedder = Embedder(cfg)
        self.encoder = Encoder(cfg)
        # The final v2 norm only feeds the classifier path; kept so checkpoints load strictly.
        self.norm = (
            GroupNormAct(cfg, cfg.hidden_sizes[-1]) if cfg.layer_type == "preactivation" else None
        )


class BitBackbone(nn.Module):
    """Feature maps of the selected stages ("stem" = after the stem pool, "stageN" = after
    stage N, before any final norm)."""

    # The stem (7x7/2 conv, 3x3/2 pool) maps 4x4 input pixels to one cell of its map.
    patch_size = 4

    def __init__(self, config: BitConfig) -> None:
        super().__init__()
        self.config = config
        self.bit = BitModel(config)
        widths = [config.embedding_size, *config.widths]
        n = len(config.stage_names)
        self._wanted = sorted(i % n for i in config.out_indices)
        self.channels = [widths[i] for i in self._wanted]
        self.hidden_size = widths[-1]

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return self.features(pixel_values)[0]

    def features(
        self, pixel_values: torch.Tensor, hidden_states: bool = False, attentions: bool = False
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...] | None, None]:
        """(feature maps, the stem's and every stage's maps if asked, None: a ResNet has no
        attention). Stages after the last requested one cannot change the maps, so they run
        only when all hidden states are wanted."""
        x = self.bit.embedder(pixel_values)
        states = [x]
        depth = None if hidden_states else self._wanted[-1]
        for stage in self.bit.encoder.stages[:depth]:
            x = stage(x)
            states.append(x)
        return [states[i] for i in self._wanted], tuple(states) if hidden_states else None, None


def config_from_backbone_dict(d: dict[str, Any]) -> BitConfig:
    """A DPT-Hybrid `backbone_config` as our BitConfig. transformers' BiT builds one stage per
    `depths` entry and ignores surplus `hidden_sizes` (DPT-Hybrid stores 4 widths for 3
    stages) unless a pre-activation model norms its output with the last one; drop the
    surplus so our BitConfig sees one width per stage."""
    depths, widths = d.get("depths", [3, 4, 6, 3]), d.get("hidden_sizes")
    surplus = isinstance(depths, list) and isinstance(widths, list) and len(widths) > len(depths)
    if surplus and d.get("layer_type", "preactivation") != "preactivation":
        d = {**d, "hidden_sizes": widths[: len(depths)]}
    return BitConfig.from_dict(d)


SPEC = BackboneSpec(MODEL_TYPE, BitBackbone, BitConfig, output="maps", standalone=False,
                    parse=config_from_backbone_dict)
