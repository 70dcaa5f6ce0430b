"""The output records, with transformers' attribute names so callers written against
transformers (`outputs.predicted_depth`, `outputs.logits`, `outputs[0]`, `return_dict=False`)
work unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch


class _Record:
    """transformers' ModelOutput access rules: by name, or by position among the fields that
    are set (`_ORDER`, the reference's field order); `to_tuple` is the `return_dict=False`
    form."""

    _ORDER: ClassVar[tuple[str, ...]] = ()

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(v for v in (getattr(self, k) for k in self._ORDER) if v is not None)

    def keys(self) -> list[str]:
        return [k for k in self._ORDER if getattr(self, k) is not None]

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]


@dataclass
class BaseModelOutput(_Record):
    """Bare DPT encoder output; hidden_states = (embeddings, block 1, ..., block N)."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    intermediate_activations: list[torch.Tensor] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None

    _ORDER: ClassVar[tuple[str, ...]] = (
        "last_hidden_state", "pooler_output", "hidden_states", "attentions",
        "intermediate_activations")


@dataclass
class DepthEstimatorOutput(_Record):
    """predicted_depth is (B, H, W): relative inverse depth, or metres for metric models.
    domain_logits (B, 2): ZoeDepth's NYU / KITTI router, when the model has one.
    sky (B, H, W): Depth Anything 3's sky head (sky where >= config.sky_threshold).
    field_of_view (B,): Depth Pro's FOV model, horizontal, in degrees."""

    predicted_depth: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    domain_logits: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    sky: torch.Tensor | None = None
    field_of_view: torch.Tensor | None = None

    _ORDER: ClassVar[tuple[str, ...]] = (
        "loss", "predicted_depth", "field_of_view", "domain_logits", "sky", "hidden_states",
        "attentions")


@dataclass
class SemanticSegmenterOutput(_Record):
    """logits (B, C, H, W) at the head's resolution; loss only when labels were given.
    auxiliary_logits are ours only (transformers computes but drops them): not in the
    tuple form, so positions match the reference."""

    logits: torch.Tensor
    auxiliary_logits: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None

    _ORDER: ClassVar[tuple[str, ...]] = ("loss", "logits", "hidden_states", "attentions")
