"""The three output records, with transformers' attribute names so callers written against
transformers (`outputs.predicted_depth`, `outputs.logits`) work unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BaseModelOutput:
    """Bare DPT encoder output; hidden_states = (embeddings, block 1, ..., block N)."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    intermediate_activations: list[torch.Tensor] | None = None


@dataclass
class DepthEstimatorOutput:
    """predicted_depth is (B, H, W): relative inverse depth, or metres for metric models."""

    predicted_depth: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class SemanticSegmenterOutput:
    """logits (B, C, H, W) at the head's resolution; loss only when labels were given."""

    logits: torch.Tensor
    auxiliary_logits: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
