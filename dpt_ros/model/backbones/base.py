"""The backbone contract: the `Backbone` protocol every backbone implements, the
`BackboneSpec` each backbone module declares for the registry, and the Hugging Face
backbone-config rules they share (stage_names / out_features / out_indices, config-dict
plumbing).

Kept in one place so that DPT, Depth Anything and ZoeDepth can build any backbone through
`dpt_ros.model.backbones` without knowing which one it is, and every backbone reads a
Hugging Face `backbone_config` dict the same way, rejecting a bad one with a ConfigError that
names the offending field.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from dpt_ros.model.validation import BACKBONE

Features = tuple[list[torch.Tensor], tuple[torch.Tensor, ...] | None,
                 tuple[torch.Tensor, ...] | None]


@runtime_checkable
class Backbone(Protocol):
    """What the necks and models read from a backbone.

    `features(pixel_values, hidden_states, attentions)` returns (one map or token tensor per
    selected stage, every hidden state if asked, every attention map if asked: None when not
    asked); `forward` returns the first of these alone. `channels` are the widths of the
    selected stages, `hidden_size` the width of the last stage, `patch_size` the input
    stride of the first ("stem") stage, which the models use to compute the patch grid.
    """

    config: Any
    patch_size: int | tuple[int, int]
    hidden_size: int
    channels: list[int]

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]: ...

    def features(self, pixel_values: torch.Tensor, hidden_states: bool = False,
                 attentions: bool = False) -> Features: ...


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone as the registry knows it; each backbone module declares its `SPEC`.

    `output` says what its stages hand the neck: "tokens" ([CLS] + patch tokens, through
    DPT's reassemble stage) or "maps" (hierarchical (B, C, h, w) maps, straight into the
    neck's convolutions). `standalone` backbones are built by the models as their own
    `backbone.*` module; the others are parts of DPT's ViT (`dpt.*`: the ViT itself, and
    BiT as DPT-Hybrid's convolutional stem).
    """

    model_type: str  # backbone_config.model_type; "vit": DPT's own, no backbone_config
    backbone_class: type[nn.Module]
    config_class: type | None  # None: built from the model's own config (the ViT)
    output: Literal["tokens", "maps"]
    standalone: bool = True
    # backbone_config dict -> config_class (default: config_class.from_dict)
    parse: Callable[[dict[str, Any]], Any] | None = None

    def config_from_dict(self, d: dict[str, Any]) -> Any:
        if self.config_class is None:
            raise TypeError(f"the {self.model_type} backbone has no backbone_config")
        return (self.parse or self.config_class.from_dict)(d)


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
            BACKBONE.fail("out_features", out_features, f"a list of stage names {stage_names}")
        out_features = list(out_features)
        if len(set(out_features)) != len(out_features):
            BACKBONE.fail("out_features", out_features, "no duplicates")
        if out_features != [s for s in stage_names if s in out_features]:
            BACKBONE.fail("out_features", out_features, "stages in the order of stage_names")
    if out_indices is not None:
        if not isinstance(out_indices, (list, tuple)) or any(
            isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n for i in out_indices
        ):
            BACKBONE.fail("out_indices", out_indices, f"a list of indices into {stage_names}")
        out_indices = list(out_indices)
        positive = [i % n for i in out_indices]
        if len(set(positive)) != len(positive):
            BACKBONE.fail("out_indices", out_indices, "no duplicates")
        if positive != sorted(positive):
            BACKBONE.fail("out_indices", out_indices, "stages in the order of stage_names")
    if out_features is None and out_indices is None:
        return [stage_names[-1]], [n - 1]
    if out_indices is None:
        return out_features, [stage_names.index(f) for f in out_features]
    from_indices = [stage_names[i] for i in out_indices]
    if out_features is not None and out_features != from_indices:
        BACKBONE.fail("out_indices", out_indices, f"the stages of out_features {out_features}")
    return from_indices, out_indices


def check_stage_names(given: list[str] | None, expected: list[str]) -> list[str]:
    """stage_names is derived from the depth; a stored one must agree with it."""
    if given is not None and list(given) != expected:
        BACKBONE.fail("stage_names", given, f"{expected} for this depth")
    return expected


def config_from_dict(cls: type, d: dict[str, Any], model_type: str) -> Any:
    """Build a config dataclass from a Hugging Face config dict; keys it does not model (ids,
    labels, transformers bookkeeping) are kept in `extra` so `to_dict` gives them back."""
    if d.get("model_type", model_type) != model_type:
        BACKBONE.fail("model_type", d["model_type"], repr(model_type))
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
