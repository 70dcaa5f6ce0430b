"""The rule that turns a model output into metres (REP 118: NaN where invalid).

Below both the aligner (which applies it with a fitted scale / shift) and the pipeline
(which applies it with the calibrated `depth.scale` / `depth.shift`), so neither imports the
other for it."""

from __future__ import annotations

import torch


def metric_depth(pred: torch.Tensor, model_is_metric: bool, scale: float,
                 shift: float) -> torch.Tensor:
    """Metres from a model output, NaN where invalid (REP 118).

    A metric model's output is metres already. A relative model predicts inverse depth up to
    an affine ambiguity; `depth = 1 / (scale * pred + shift)` with a calibrated scale/shift.
    """
    if model_is_metric:
        depth = pred
    else:
        inv = pred * scale + shift
        depth = torch.where(inv > 0, 1.0 / inv.clamp_min(1e-12), torch.nan)
    return torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.nan)
