"""What the BiT and DINOv2 backbones share: Hugging Face backbone-config semantics
(stage_names / out_features / out_indices), config-dict plumbing, activations, stochastic depth.

Kept separate so both backbones read a Hugging Face `backbone_config` dict the same way and
reject a bad one with a `ValueError` that names the offending field.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Names as in transformers' ACT2FN, for the activations these checkpoints use.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module for a transformers `hidden_act` name."""
    return ACTIVATIONS[name]()


def fail(field: str, value: Any, why: str) -> None:
    """Raise the one error type configs use, always naming the field."""
    raise ValueError(f"{field}={value!r}: {why}")


def check_int(field: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(field, value, f"must be an integer >= {minimum}")


def check_pair(name: str, value: Any) -> tuple[int, int]:
    """An int or an (h, w) pair, as transformers accepts for image_size / patch_size."""
    pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(pair) != 2:
        fail(name, value, "must be an integer or a pair of integers")
    for v in pair:
        check_int(name, v)
    return pair


def check_float(field: str, value: Any, minimum: float = 0.0, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < minimum or (strict and value == minimum):
        fail(field, value, f"must be a number {'>' if strict else '>='} {minimum}")


def check_probability(field: str, value: Any) -> None:
    """A dropout / drop-path rate: a number in [0, 1)."""
    check_float(field, value)
    if value >= 1:
        fail(field, value, "must be < 1")


def check_bool(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        fail(field, value, "must be true or false")


def check_choice(field: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        fail(field, value, f"must be one of {list(choices)}")


def align_outputs(
    stage_names: list[str], out_features: list[str] | None, out_indices: list[int] | None
) -> tuple[list[str], list[int]]:
    """transformers' BackboneConfigMixin rules: fill the missing one of out_features /
    out_indices from the other (default: the last stage), both in stage order, no duplicates,
    and consistent when both are given. Negative indices are kept as given."""
    n = len(stage_names)
    if out_features is not None:
        if not isinstance(out_features, (list, tuple)) or any(
            f not in stage_names for f in out_features
        ):
            fail("out_features", out_features, f"must be a list of stage names {stage_names}")
        out_features = list(out_features)
        if len(set(out_features)) != len(out_features):
            fail("out_features", out_features, "must not contain duplicates")
        if out_features != [s for s in stage_names if s in out_features]:
            fail("out_features", out_features, "must be in the order of stage_names")
    if out_indices is not None:
        if not isinstance(out_indices, (list, tuple)) or any(
            isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n for i in out_indices
        ):
            fail("out_indices", out_indices, f"must be a list of indices into {stage_names}")
        out_indices = list(out_indices)
        positive = [i % n for i in out_indices]
        if len(set(positive)) != len(positive):
            fail("out_indices", out_indices, "must not contain duplicates")
        if positive != sorted(positive):
            fail("out_indices", out_indices, "must be in the order of stage_names")
    if out_features is None and out_indices is None:
        return [stage_names[-1]], [n - 1]
    if out_indices is None:
        return out_features, [stage_names.index(f) for f in out_features]
    from_indices = [stage_names[i] for i in out_indices]
    if out_features is not None and out_features != from_indices:
        fail("out_indices", out_indices, f"does not select the same stages as {out_features}")
    return from_indices, out_indices


def check_stage_names(given: list[str] | None, expected: list[str]) -> list[str]:
    """stage_names is derived from the depth; a stored one must agree with it."""
    if given is not None and list(given) != expected:
        fail("stage_names", given, f"expected {expected} for this depth")
    return expected


def config_from_dict(cls: type, d: dict[str, Any], model_type: str) -> Any:
    """Build a config dataclass from a Hugging Face config dict; keys it does not model (ids,
    labels, transformers bookkeeping) are kept in `extra` so `to_dict` gives them back."""
    if d.get("model_type", model_type) != model_type:
        fail("model_type", d["model_type"], f"expected {model_type!r}")
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    known = {k: v for k, v in d.items() if k in names}
    extra = {k: v for k, v in d.items() if k not in names and k != "model_type"}
    return cls(**known, extra=extra)


def config_to_dict(cfg: Any, model_type: str) -> dict[str, Any]:
    """The Hugging Face dict form: extras first, modelled fields override, plus model_type."""
    out = copy.deepcopy(cfg.extra)
    for f in dataclasses.fields(cfg):
        if f.name != "extra":
            value = getattr(cfg, f.name)
            out[f.name] = list(value) if isinstance(value, (list, tuple)) else value
    out["model_type"] = model_type
    return out


class Dense(nn.Module):
    """A Linear stored under `dense`, the name transformers' checkpoints use
    (`...attention.output.dense`, `...intermediate.dense`, `...output.dense`)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.dense = nn.Linear(cin, cout)


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
    return F.dropout(x, p, training) if p > 0.0 else x


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention over (B, heads, N, d) with an optional additive bias.

    Fused SDPA when nobody wants the weights; otherwise the reference's eager arithmetic
    (scores * d^-0.5 + bias, softmax in float32, dropout), so `output_attentions` returns
    the same probabilities transformers' eager attention does.
    """
    if not need_weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p), None
    scores = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if bias is not None:
        scores = scores + bias
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(dropout(probs, dropout_p, True), v), probs
