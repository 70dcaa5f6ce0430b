"""The (s, t) that are applied: per-frame fits filtered over time, with outlier gating and
an age limit.

- Smoothing: an exponential filter with time constant `smoothing_s` on the frames' own
  stamps (irregular rates handled: weight 1 - exp(-dt / tau)); during the first few fits
  after a (re)start the weight is at least 1/n, i.e. the plain mean of the fits so far, so
  the start is not biased towards the very first frame. `smoothing_s = 0`: the newest
  accepted fit is applied as is (and nothing is gated).
- Gating: a fit whose implied depth differs from that of the last accepted fit by more
  than `gate` (relative, at the new fit's 10/50/90 % inlier prediction quantiles) is held
  back, so one bad reference frame cannot make the depth jump. The comparison is with the
  last accepted *fit*, not the filtered value: a steady drift (fits close to one another)
  passes and is filtered, it is never frozen behind a lagging estimate. Held-back fits that
  agree with each other for `GATE_CONFIRM` frames in a row are a real change (the model's
  scale moved, the scene changed): the filter then jumps to their mean.
- Age: after `max_age_s` (frame stamps) without an accepted fit the alignment is invalid
  ("no valid alignment"), and the next fit starts afresh. 0 = never expires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dpt_ros.core.alignment.fit import Fit

GATE_CONFIRM = 3
BACKWARDS_RESET_S = 1.0  # stamps that jump back further than this (a bag restarted) reset


@dataclass(frozen=True)
class AlignmentState:
    """What is applied now and how the last fit went (for diagnostics and offline tools)."""

    valid: bool
    scale: float = math.nan  # applied (filtered) scale; NaN before the first accepted fit
    shift: float = math.nan
    inliers: int = 0  # of the last fit attempt
    residual: float = math.nan  # AbsRel of the last fit on its inliers
    age_s: float = math.inf  # since the last accepted fit
    accepted: int = 0
    rejected: int = 0
    gated: int = 0
    status: str = "no reference yet"  # outcome of the last update, or why it is invalid

    def diagnostics(self) -> dict[str, str]:
        """`alignment.*` key/values for /diagnostics and per-frame offline reports."""
        return {
            "alignment.valid": str(self.valid).lower(),
            "alignment.scale": f"{self.scale:.6g}",
            "alignment.shift": f"{self.shift:.6g}",
            "alignment.inliers": str(self.inliers),
            "alignment.residual": f"{self.residual:.4f}",
            "alignment.age_s": f"{self.age_s:.3f}",
            "alignment.accepted": str(self.accepted),
            "alignment.rejected": str(self.rejected),
            "alignment.gated": str(self.gated),
            "alignment.status": self.status,
        }


@dataclass
class _Estimate:
    scale: float
    shift: float
    count: int  # fits averaged into it since it (re)started


def _change(a: _Estimate, b: Fit) -> float:
    """Largest relative difference of a's and b's implied values at b's support."""
    worst = 0.0
    for x in b.support:
        ref = a.scale * x + a.shift
        new = b.scale * x + b.shift
        worst = max(worst, abs(new - ref) / max(abs(ref), 1e-12))
    return worst


@dataclass
class TemporalFilter:
    smoothing_s: float = 0.3
    max_age_s: float = 2.0
    gate: float = 0.2
    _est: _Estimate | None = None
    _anchor: _Estimate | None = None  # the last accepted fit (what new fits are gated against)
    _candidate: _Estimate | None = None
    _last_stamp: float = math.nan  # of the last accepted fit
    _counts: dict[str, int] = field(default_factory=lambda: {"accepted": 0, "rejected": 0,
                                                             "gated": 0})
    _last: Fit | None = None
    _status: str = "no reference yet"

    def __post_init__(self) -> None:
        for name in ("smoothing_s", "max_age_s", "gate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"alignment {name} must be a finite number >= 0, got {value}")

    def reset(self) -> None:
        self._est = self._anchor = self._candidate = None
        self._last_stamp = math.nan

    def _expired(self, stamp: float) -> bool:
        if self._est is None:
            return True
        return self.max_age_s > 0 and stamp - self._last_stamp > self.max_age_s

    def update(self, fit: Fit, stamp: float) -> AlignmentState:
        """Feed one frame's fit (accepted or not) taken at `stamp` seconds."""
        if self._est is not None and stamp < self._last_stamp - BACKWARDS_RESET_S:
            self.reset()
        self._last = fit
        if not fit.accepted:
            self._counts["rejected"] += 1
            self._status = f"rejected: {fit.reason}"
            return self.state(stamp)
        if self._expired(stamp) or self.smoothing_s == 0:
            self._est = _Estimate(fit.scale, fit.shift, 1)
            self._candidate = None
            self._accept(fit, stamp, "accepted")
        elif self.gate > 0 and _change(self._anchor, fit) > self.gate:
            self._hold_back(fit, stamp)
        else:
            est = self._est
            dt = max(stamp - self._last_stamp, 0.0)
            alpha = max(1.0 - math.exp(-dt / self.smoothing_s), 1.0 / (est.count + 1))
            est.scale += alpha * (fit.scale - est.scale)
            est.shift += alpha * (fit.shift - est.shift)
            est.count += 1
            self._candidate = None
            self._accept(fit, stamp, "accepted")
        return self.state(stamp)

    def _accept(self, fit: Fit | _Estimate, stamp: float, status: str) -> None:
        self._counts["accepted"] += 1
        self._anchor = _Estimate(fit.scale, fit.shift, 1)
        self._last_stamp = stamp
        self._status = status

    def _hold_back(self, fit: Fit, stamp: float) -> None:
        """A gated fit: start or extend the candidate; adopt it once it has persisted."""
        cand = self._candidate
        if cand is not None and _change(cand, fit) <= self.gate:
            cand.count += 1
            cand.scale += (fit.scale - cand.scale) / cand.count
            cand.shift += (fit.shift - cand.shift) / cand.count
        else:
            cand = self._candidate = _Estimate(fit.scale, fit.shift, 1)
        if cand.count >= GATE_CONFIRM:
            self._est, self._candidate = cand, None
            self._accept(cand, stamp, f"accepted: change confirmed over {GATE_CONFIRM} frames")
            return
        self._counts["gated"] += 1
        self._status = (f"gated: implied depth moved {_change(self._anchor, fit):.1%} "
                        f"> gate {self.gate:.0%}")

    def state(self, stamp: float) -> AlignmentState:
        """The alignment to apply to a frame taken at `stamp` (no new reference)."""
        last = self._last
        expired = self._expired(stamp)
        age = math.inf if self._est is None else max(stamp - self._last_stamp, 0.0)
        status = self._status
        if self._est is not None and expired:
            status = f"no valid alignment: last accepted fit {age:.2f} s ago " \
                     f"> max_age_s {self.max_age_s:g}"
        return AlignmentState(
            valid=not expired,
            scale=math.nan if self._est is None else self._est.scale,
            shift=math.nan if self._est is None else self._est.shift,
            inliers=0 if last is None else last.inliers,
            residual=math.nan if last is None else last.residual,
            age_s=age,
            status=status,
            **self._counts,
        )
