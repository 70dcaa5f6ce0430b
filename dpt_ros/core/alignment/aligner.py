"""`Aligner`: a depth prediction + a metric reference → the (s, t) to apply, over time.

    aligner = Aligner("scale_shift", model_is_metric=False, smoothing_s=0.3, max_age_s=2.0)
    samples = samples_from_depth_image(depth_in_metres(img, "16UC1", dev), pred.shape)
    state = aligner.update(pred, samples, stamp_s)     # a frame with a paired reference
    state = aligner.state(stamp_s)                     # a frame without one
    depth = aligner.apply(pred_or_resized, stamp_s)    # metres, or None (no valid alignment)

The fit can run on the model's own grid and the result be applied at the output
resolution: (s, t) do not depend on the grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dpt_ros.core.alignment.fit import MODES, Fit, fit_samples
from dpt_ros.core.alignment.metric import metric_depth
from dpt_ros.core.alignment.reference import ReferenceSamples
from dpt_ros.core.alignment.temporal import AlignmentState, TemporalFilter

MAX_SAMPLES = 50_000  # a dense 1280x720 reference is thinned (evenly) to this many


def sample_prediction(prediction: torch.Tensor, samples: ReferenceSamples) -> torch.Tensor:
    """The (H, W) prediction bilinearly sampled at the samples' sub-pixel positions."""
    height, width = prediction.shape
    if (height, width) != samples.grid:
        raise ValueError(f"reference samples are for a {samples.grid[0]}x{samples.grid[1]} "
                         f"grid, the prediction is {height}x{width}")
    gx = (samples.u + 0.5) * (2.0 / width) - 1.0  # align_corners=False pixel centres
    gy = (samples.v + 0.5) * (2.0 / height) - 1.0
    grid = torch.stack([gx, gy], -1).view(1, 1, -1, 2).to(prediction.device, torch.float32)
    out = F.grid_sample(prediction.float()[None, None], grid, mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out.view(-1)


def aligned_depth(prediction: torch.Tensor, model_is_metric: bool, scale: float,
                  shift: float) -> torch.Tensor:
    """Metres from a prediction and an alignment, NaN where invalid (REP 118). Relative:
    1 / (s r + t), the `depth.scale`/`depth.shift` rule; metric: s z + t."""
    if not model_is_metric:
        return metric_depth(prediction, False, scale, shift)
    depth = prediction * scale + shift
    return torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.nan)


class Aligner:
    """Robust per-frame fit + temporal filter for one camera's depth model."""

    def __init__(self, mode: str, model_is_metric: bool, *, smoothing_s: float = 0.3,
                 max_age_s: float = 2.0, min_inliers: int = 50, max_residual: float = 0.25,
                 gate: float = 0.2) -> None:
        if mode not in MODES:
            raise ValueError(f"alignment mode {mode!r} is not one of {', '.join(MODES)}")
        if isinstance(min_inliers, bool) or not isinstance(min_inliers, int) or min_inliers < 3:
            raise ValueError(f"alignment min_inliers must be an integer >= 3, got {min_inliers}")
        if not (math.isfinite(max_residual) and max_residual > 0):
            raise ValueError(f"alignment max_residual must be > 0, got {max_residual}")
        self.mode = mode
        self.model_is_metric = model_is_metric
        self.min_inliers = min_inliers
        self.max_residual = max_residual
        self.filter = TemporalFilter(smoothing_s, max_age_s, gate)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def fit(self, prediction: torch.Tensor, samples: ReferenceSamples) -> Fit:
        """This frame's fit alone (no temporal state touched)."""
        n = len(samples)
        z = samples.z
        x_samples = samples
        if n > MAX_SAMPLES:  # even thinning keeps the spatial spread, bounds the cost
            keep = torch.arange(0, n, -(-n // MAX_SAMPLES), device=z.device)
            x_samples = ReferenceSamples(samples.u[keep], samples.v[keep], z[keep],
                                         samples.grid)
            z = x_samples.z
        x = sample_prediction(prediction, x_samples)
        return fit_samples(x, z.to(x.device), self.mode, not self.model_is_metric,
                           self.min_inliers, self.max_residual)

    def update(self, prediction: torch.Tensor, samples: ReferenceSamples,
               stamp_s: float) -> AlignmentState:
        """Fit this frame's prediction (H, W) to its paired reference and filter."""
        if not self.enabled:
            raise RuntimeError("alignment.mode is off: nothing to update")
        return self.filter.update(self.fit(prediction, samples), stamp_s)

    def state(self, stamp_s: float) -> AlignmentState:
        return self.filter.state(stamp_s)

    def apply(self, prediction: torch.Tensor, stamp_s: float) -> torch.Tensor | None:
        """Metric depth for a frame at `stamp_s`, any resolution. Without a valid alignment
        a metric model's own metres come back uncorrected and a relative model gets None
        (it has no metres to give: publish no metric outputs)."""
        state = self.state(stamp_s)
        if not state.valid:
            if self.model_is_metric:
                return aligned_depth(prediction, True, 1.0, 0.0)
            return None
        return aligned_depth(prediction, self.model_is_metric, state.scale, state.shift)
