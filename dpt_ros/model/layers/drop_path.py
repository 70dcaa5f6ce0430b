"""Stochastic depth and dropout as the reference models apply them (identity at inference,
so inference never pays for them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def drop_path_rates(rate: float, n: int) -> list[float]:
    """Stochastic-depth rate of each of `n` blocks: 0 rising linearly to `rate`."""
    return [rate * i / max(n - 1, 1) for i in range(n)]


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample (identity at inference), as the reference models."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
    return x.div(keep) * torch.floor(mask + keep)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout, skipped entirely when the rate is 0."""
    return F.dropout(x, p, training) if p > 0.0 else x
