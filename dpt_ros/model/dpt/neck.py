"""DPT neck: reassemble backbone tokens into multi-scale maps, then fuse them top-down.

Shared by DPT (ViT, hybrid, DINOv2), Depth Anything and Prompt Depth Anything; the
differences are parameters: the readout handling, the stages the hybrid passes through
untouched, batch norm / bias in the residual units, whether each fusion step upsamples x2
(DPT) or to the next stage's size (Depth Anything), and whether each fusion step adds a
metric depth prompt (Prompt Depth Anything). Keys follow transformers'
`neck.reassemble_stage.*`, `neck.convs.*`, `neck.fusion_stage.*`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.model.dpt.configuration import DPTConfig
from dpt_ros.model.layers.activations import activation


class ReassembleLayer(nn.Module):
    def __init__(self, in_channels: int, channels: int, factor: float) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_channels, channels, kernel_size=1)
        if factor > 1:
            f = int(factor)
            self.resize: nn.Module = nn.ConvTranspose2d(channels, channels, f, stride=f)
        elif factor == 1:
            self.resize = nn.Identity()
        else:
            self.resize = nn.Conv2d(channels, channels, 3, stride=int(1 / factor), padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resize(self.projection(x))


class ReassembleStage(nn.Module):
    """Tokens (B, 1+N, C) -> maps (B, C', h*f, w*f). Stages in `skip` (the hybrid's BiT maps)
    pass through; their slots hold parameter-free placeholders so indices match the keys."""

    def __init__(
        self,
        in_channels: int,
        config: DPTConfig,
        readout_type: str,
        skip: list[int],
    ) -> None:
        super().__init__()
        self.readout_type = readout_type
        self.skip = set(skip)
        sizes, factors = config.neck_hidden_sizes, config.reassemble_factors
        self.layers = nn.ModuleList(
            nn.Identity() if i in self.skip else ReassembleLayer(in_channels, c, f)
            for i, (c, f) in enumerate(zip(sizes, factors))
        )
        if readout_type == "project":
            self.readout_projects = nn.ModuleList(
                nn.Sequential(nn.Identity()) if i in self.skip else nn.Sequential(
                    nn.Linear(2 * in_channels, in_channels), activation(config.hidden_act)
                )
                for i in range(len(sizes))
            )

    def _readout(self, i: int, tokens: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        if self.readout_type == "project":
            # Linear(cat(token, cls)) split in two so the [CLS] half is computed once.
            linear, act = self.readout_projects[i][0], self.readout_projects[i][1]
            c = tokens.shape[-1]
            w = linear.weight
            cls_part = F.linear(cls, w[:, c:], linear.bias).unsqueeze(1)
            return act(F.linear(tokens, w[:, :c]) + cls_part)
        if self.readout_type == "add":
            return tokens + cls.unsqueeze(1)
        return tokens

    def forward(self, states: list[torch.Tensor], grid: tuple[int, int]) -> list[torch.Tensor]:
        out = []
        for i, x in enumerate(states):
            if i in self.skip:
                out.append(x)
                continue
            tokens = self._readout(i, x[:, 1:], x[:, 0])
            b, _, c = tokens.shape
            fmap = tokens.transpose(1, 2).reshape(b, c, grid[0], grid[1])
            out.append(self.layers[i](fmap))
        return out


class PreActResidualLayer(nn.Module):
    """relu -> conv3x3 [-> bn] -> relu -> conv3x3 [-> bn], plus the input."""

    def __init__(self, channels: int, batch_norm: bool, bias: bool, eps: float = 1e-5) -> None:
        super().__init__()
        self.use_batch_norm = batch_norm
        self.convolution1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.convolution2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        if batch_norm:
            self.batch_norm1 = nn.BatchNorm2d(channels, eps=eps)
            self.batch_norm2 = nn.BatchNorm2d(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convolution1(F.relu(x))
        if self.use_batch_norm:
            h = self.batch_norm1(h)
        h = self.convolution2(F.relu(h))
        if self.use_batch_norm:
            h = self.batch_norm2(h)
        return h + x


class PromptDepthLayer(nn.Module):
    """Prompt Depth Anything: conv(1 -> C), relu, conv, relu, conv on the normalised prompt
    depth resized to the fusion map; its output is added to the map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.convolution1 = nn.Conv2d(1, channels, 3, padding=1)
        self.convolution2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.convolution3 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, prompt: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        prompt = F.interpolate(prompt, size=size, mode="bilinear", align_corners=False)
        x = F.relu(self.convolution1(prompt.to(self.convolution1.weight.dtype)))
        return self.convolution3(F.relu(self.convolution2(x)))


class FusionLayer(nn.Module):
    def __init__(self, channels: int, batch_norm: bool, bias: bool, eps: float = 1e-5,
                 prompt: bool = False) -> None:
        super().__init__()
        self.projection = nn.Conv2d(channels, channels, kernel_size=1)
        self.residual_layer1 = PreActResidualLayer(channels, batch_norm, bias, eps)
        self.residual_layer2 = PreActResidualLayer(channels, batch_norm, bias, eps)
        if prompt:
            self.prompt_depth_layer = PromptDepthLayer(channels)

    def forward(
        self,
        x: torch.Tensor,
        residual: torch.Tensor | None = None,
        size: tuple[int, int] | None = None,
        prompt_depth: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if residual is not None:
            if residual.shape != x.shape:
                residual = F.interpolate(residual, size=x.shape[2:], mode="bilinear")
            x = x + self.residual_layer1(residual)
        x = self.residual_layer2(x)
        if prompt_depth is not None:
            x = x + self.prompt_depth_layer(prompt_depth, tuple(x.shape[2:]))
        # The 1x1 projection commutes with bilinear resampling (weights sum to one), so it is
        # applied on the smaller map: same result, a quarter of the work.
        x = self.projection(x)
        if size is None:
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class FusionStage(nn.Module):
    """Deepest stage first; each step adds the next shallower map and upsamples."""

    def __init__(self, config: DPTConfig, batch_norm: bool, bias: bool, sized: bool,
                 eps: float = 1e-5, prompt: bool = False) -> None:
        super().__init__()
        self.sized = sized
        self.layers = nn.ModuleList(
            FusionLayer(config.fusion_hidden_size, batch_norm, bias, eps, prompt)
            for _ in config.neck_hidden_sizes
        )

    def forward(self, features: list[torch.Tensor], prompt_depth: torch.Tensor | None = None
                ) -> list[torch.Tensor]:
        features = features[::-1]
        fused: list[torch.Tensor] = []
        x = None
        for i, (feature, layer) in enumerate(zip(features, self.layers)):
            last = i == len(features) - 1
            size = None if not self.sized or last else tuple(features[i + 1].shape[2:])
            if x is None:
                x = layer(feature, size=size, prompt_depth=prompt_depth)
            else:
                x = layer(x, feature, size=size, prompt_depth=prompt_depth)
            fused.append(x)
        return fused


class Neck(nn.Module):
    """Reassemble (token backbones; hierarchical ones such as Swinv2 hand over maps and have
    none), 3x3 convs to the fusion width, then top-down fusion."""

    def __init__(
        self,
        config: DPTConfig,
        in_channels: int,
        readout_type: str,
        skip: list[int],
        batch_norm: bool,
        bias: bool,
        sized: bool,
        reassemble: bool = True,
        eps: float = 1e-5,
        prompt: bool = False,
    ) -> None:
        super().__init__()
        self.reassemble_stage = (
            ReassembleStage(in_channels, config, readout_type, skip) if reassemble else None)
        self.convs = nn.ModuleList(
            nn.Conv2d(c, config.fusion_hidden_size, 3, padding=1, bias=False)
            for c in config.neck_hidden_sizes
        )
        self.fusion_stage = FusionStage(config, batch_norm, bias, sized, eps, prompt)

    def project(self, states: list[torch.Tensor], grid: tuple[int, int]) -> list[torch.Tensor]:
        """The maps at the fusion width, before fusion (ZoeDepth reads the deepest one)."""
        if len(states) != len(self.convs):
            raise ValueError(f"the neck takes {len(self.convs)} backbone stages, "
                             f"got {len(states)}")
        maps = self.reassemble_stage(states, grid) if self.reassemble_stage is not None else states
        return [conv(m) for conv, m in zip(self.convs, maps)]

    def forward(self, states: list[torch.Tensor], grid: tuple[int, int],
                prompt_depth: torch.Tensor | None = None) -> list[torch.Tensor]:
        """`prompt_depth` (B, 1, h, w), normalised, only for a neck built with `prompt`."""
        return self.fusion_stage(self.project(states, grid), prompt_depth)


def fusion_bias(config: DPTConfig) -> bool:
    """use_bias_in_fusion_residual, defaulting to 'no bias when batch-normed' (reference)."""
    bias = config.use_bias_in_fusion_residual
    return (not config.use_batch_norm_in_fusion_residual) if bias is None else bias


def dpt_neck(config: DPTConfig, in_channels: int) -> Neck:
    return Neck(
        config,
        in_channels,
        config.readout_type,
        config.neck_ignore_stages,
        config.use_batch_norm_in_fusion_residual,
        fusion_bias(config),
        sized=False,
        reassemble=config.backbone_spec.output == "tokens",
    )


def depth_anything_neck(config: DPTConfig, prompt: bool = False) -> Neck:
    """Depth Anything's neck; with `prompt`, Prompt Depth Anything's (a prompt layer per
    fusion step)."""
    return Neck(config, config.reassemble_hidden_size, "ignore", [], False, True, sized=True,
                prompt=prompt)
