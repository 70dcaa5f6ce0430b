"""Scaled dot-product attention for every transformer block of the package: fused SDPA when
nobody asks for the attention weights, the reference's eager arithmetic when they do."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dpt_ros.model.layers.drop_path import dropout


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
