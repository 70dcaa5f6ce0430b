"""Dense: a Linear under the attribute name transformers' checkpoints use."""

from __future__ import annotations

from torch import nn


class Dense(nn.Module):
    """A Linear stored under `dense`, the name transformers' checkpoints use
    (`...attention.output.dense`, `...intermediate.dense`, `...output.dense`), so the keys
    match without a wrapper class per call site."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.dense = nn.Linear(cin, cout)
