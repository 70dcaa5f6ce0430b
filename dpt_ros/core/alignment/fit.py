"""The per-frame robust fit of a prediction to metric reference samples.

Relative (inverse-depth) models: 1 / z_ref = s * r + t, the convention of `depth.scale` /
`depth.shift` (MiDaS' evaluation fits the same in inverse-depth space); metric models:
z_ref = s * z (+ t). Mode `scale` fixes t = 0.

Robust to the outliers real references carry (flying pixels at edges, glass, a LiDAR point
the camera cannot see): a resistant start (Tukey's median-median line, or the median ratio
for a scale), then iteratively trimmed least squares: residuals are relative
(|s x + t - y| / y, the AbsRel of the fit to first order, the same in depth and inverse
depth), inliers are those within 3 robust sigmas (1.4826 x the median residual, kept within
[2 %, 50 %]), and the weighted fit on them minimises the relative residuals (weights 1/y^2).
Fixed iteration count, everything on the samples' device; a device sync only where the
valid samples are compacted and for the one host copy of the result.

A fit is rejected (and says why) with too few samples or inliers, too small an inlier
fraction, a flat prediction, a non-positive scale, or an AbsRel on its inliers above the
limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dpt_ros.config.vocabulary import ALIGNMENT_MODES

MODES = ALIGNMENT_MODES  # "off" first, then the fitted models (config.vocabulary)
ITERATIONS = 6
INLIER_SIGMAS = 3.0
INLIER_FLOOR = 0.02  # inlier band never narrower than 2 % (exact references, tiny noise)
INLIER_CAP = 0.5  # nor wider than 50 % (a mostly-wrong reference must not pass as inliers)
MIN_INLIER_FRACTION = 0.3
MAD_TO_SIGMA = 1.4826
SUPPORT_QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class Fit:
    """One frame's fit. `scale`/`shift` map the prediction into the fit space (inverse
    depth for relative models, depth for metric ones); `support` holds the prediction values
    at the 10/50/90 % quantiles of the inliers (where the fit is known to hold: the temporal
    filter compares fits there)."""

    accepted: bool
    reason: str  # "" when accepted
    scale: float = math.nan
    shift: float = math.nan
    inliers: int = 0
    samples: int = 0
    residual: float = math.nan  # AbsRel (depth space) of the fit on its inliers
    support: tuple[float, ...] = ()


def _resistant_line(x: torch.Tensor, y: torch.Tensor, order: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Tukey's median-median line: slope through the medians of the lowest and highest
    thirds (by x; `order` sorts x), intercept the median offset. Breakdown ~1/6, no
    randomness."""
    n = x.shape[0]
    third = max(n // 3, 1)
    lo, hi = order[:third], order[-third:]
    xl, xh = x[lo].median(), x[hi].median()
    yl, yh = y[lo].median(), y[hi].median()
    scale = (yh - yl) / (xh - xl)
    return scale, (y - scale * x).median()


def _quantiles_of(x: torch.Tensor, order: torch.Tensor, mask: torch.Tensor,
                  quantiles: tuple[float, ...]) -> torch.Tensor:
    """Quantiles (nearest rank) of x[mask] from the order that sorts x: no second sort and
    no data-dependent shape (so no device sync)."""
    rank = mask[order].cumsum(0)  # inliers up to each sorted position
    count = rank[-1].clamp_min(1)
    wanted = torch.tensor(quantiles, dtype=x.dtype, device=x.device)
    target = (wanted * (count - 1)).round().long() + 1
    pos = torch.searchsorted(rank, target).clamp_max(x.shape[0] - 1)
    return x[order[pos]]


def _weighted_line(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, shift: bool
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """argmin Σ w (s x + t - y)^2, closed form (t = 0 without `shift`)."""
    if not shift:
        return (w * x * y).sum() / (w * x * x).sum(), x.new_zeros(())
    sw = w.sum()
    mx, my = (w * x).sum() / sw, (w * y).sum() / sw  # centred: no cancellation
    dx = x - mx
    scale = (w * dx * (y - my)).sum() / (w * dx * dx).sum()
    return scale, my - scale * mx


def fit_samples(x: torch.Tensor, z_ref: torch.Tensor, mode: str, inverse: bool,
                min_inliers: int, max_residual: float) -> Fit:
    """Fit prediction values `x` to reference depths `z_ref` (1-D, same length, metres > 0).

    `inverse`: the prediction is relative inverse depth (fit 1/z_ref = s x + t); otherwise
    metric depth (fit z_ref = s x + t). `mode`: "scale" or "scale_shift".
    """
    if mode not in MODES[1:]:
        raise ValueError(f"alignment mode {mode!r} is not one of {', '.join(MODES[1:])}")
    ok = torch.isfinite(x) & torch.isfinite(z_ref) & (z_ref > 0)
    dtype = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
    x, z_ref = x[ok].to(dtype), z_ref[ok].to(dtype)
    n = int(x.shape[0])
    if n < max(min_inliers, 3):
        return Fit(False, f"{n} reference samples < min_inliers {min_inliers}", samples=n)
    y = 1.0 / z_ref if inverse else z_ref
    shift = mode == "scale_shift"
    order = torch.argsort(x)
    if shift:
        scale, offset = _resistant_line(x, y, order)
    else:
        scale, offset = torch.where(x > 0, y / x, torch.nan).nanmedian(), x.new_zeros(())
    inv_y2 = 1.0 / (y * y)
    for _ in range(ITERATIONS):
        rel = (scale * x + offset - y).abs() / y
        band = (INLIER_SIGMAS * MAD_TO_SIGMA * rel.median()).clamp(INLIER_FLOOR, INLIER_CAP)
        inlier = rel <= band
        w = inlier * inv_y2
        scale, offset = _weighted_line(x, y, w, shift)
    fitted = scale * x + offset
    rel = (fitted - y).abs() / y
    band = (INLIER_SIGMAS * MAD_TO_SIGMA * rel.median()).clamp(INLIER_FLOOR, INLIER_CAP)
    inlier = rel <= band
    count = inlier.sum()
    z_fit = 1.0 / fitted if inverse else fitted
    abs_rel = torch.where(inlier, (z_fit - z_ref).abs() / z_ref, 0.0).sum() / count.clamp_min(1)
    support = _quantiles_of(x, order, inlier, SUPPORT_QUANTILES)
    values = torch.cat([torch.stack([scale, offset, count.to(x.dtype), abs_rel]), support])
    s, t, count_f, residual, *sup = values.tolist()  # the one host copy
    count_i = int(count_f)
    result = dict(scale=s, shift=t, inliers=count_i, samples=n, residual=residual,
                  support=tuple(sup))
    reason = ""
    if not (math.isfinite(s) and math.isfinite(t)):
        reason = "degenerate fit (the prediction is flat over the reference samples)"
    elif s <= 0:
        reason = f"non-positive scale {s:.4g}"
    elif count_i < min_inliers:
        reason = f"{count_i} inliers < min_inliers {min_inliers}"
    elif count_i < MIN_INLIER_FRACTION * n:
        reason = f"only {count_i} of {n} samples are inliers"
    elif not residual <= max_residual:
        reason = f"residual {residual:.3f} > max_residual {max_residual:.3f}"
    return Fit(reason == "", reason, **result)
