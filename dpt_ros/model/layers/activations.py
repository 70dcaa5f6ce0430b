"""The one table of activation functions, by transformers' `ACT2FN` names, for the
`hidden_act` / `pooler_act` values these checkpoints use. Configs check names against
`ACTIVATION_NAMES`; modules build them with `activation(name)`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), transformers' `quick_gelu`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "quick_gelu": QuickGELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
ACTIVATION_NAMES = tuple(ACTIVATIONS)


def activation(name: str) -> nn.Module:
    """A fresh activation module for a transformers activation name."""
    return ACTIVATIONS[name]()
