"""A test double for half-precision overflow, shared by the finite-guard and alignment tests:
the real model, whose output gets +inf and NaN in half precision as an fp16 overflow leaves it."""

from __future__ import annotations

import torch

from dpt_ros.core.pipeline.finite_guard import main_output
from dpt_ros.core.pipeline.pipeline import Pipeline


class OverflowsInHalf(torch.nn.Module):
    """The real model; in half precision (or always, with `always`) samples `bad` of its
    output get +inf in a corner and a NaN, as an fp16 overflow leaves them."""

    def __init__(self, inner: torch.nn.Module, bad: tuple[int, ...], always: bool = False):
        super().__init__()
        self.inner, self.config, self.bad, self.always = inner, inner.config, bad, always
        self.calls: list[torch.dtype] = []
        self._log = self.calls.append  # shared with the guard's fp32 deep copy

    def forward(self, pixel_values: torch.Tensor):
        out = self.inner(pixel_values)
        dtype = next(self.inner.parameters()).dtype
        self._log(dtype)
        if self.always or dtype != torch.float32:
            t = main_output(out)
            t[list(self.bad), ..., :2, :3] = float("inf")
            t[list(self.bad), ..., -1, -1] = float("nan")
        return out


def inject(pipe: Pipeline, task: str, **kwargs) -> OverflowsInHalf:
    t = pipe._depth if task == "depth" else pipe._seg
    t.model = t.forward = OverflowsInHalf(t.model, **kwargs)
    return t.model
