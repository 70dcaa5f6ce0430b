"""The one resampler of learned absolute position embeddings (ViT, DINOv2, BEiT).

Every ViT-style backbone here stores a [CLS] entry plus a square grid trained at the
config's image size, and resamples the grid to the input's patch grid. They differ only in
the interpolation mode (DPT's ViT: bilinear; DINOv2, BEiT: bicubic) and in whether the
interpolation runs in float32 (DINOv2: half-precision bicubic drifts), which are arguments
here; *when* to resample (each reference has its own shortcut for the trained size) stays
with the caller, so each model's output is bit-exact with its reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resample_position_embeddings(
    pos: torch.Tensor, grid: tuple[int, int], mode: str, float32: bool = False
) -> torch.Tensor:
    """(1, 1 + side², C) [CLS] + square grid → (1, 1 + h·w, C) for `grid` = (h, w):
    `F.interpolate(mode, align_corners=False)` of the grid (in float32 and cast back when
    `float32`), the [CLS] entry kept as is."""
    dim, side = pos.shape[-1], int((pos.shape[1] - 1) ** 0.5)
    x = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    if float32:
        x = F.interpolate(x.float(), size=grid, mode=mode, align_corners=False).to(pos.dtype)
    else:
        x = F.interpolate(x, size=grid, mode=mode, align_corners=False)
    return torch.cat([pos[:, :1], x.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)
