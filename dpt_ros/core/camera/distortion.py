"""Lens distortion models of sensor_msgs/CameraInfo, forward and inverted to convergence.

The models act on normalised image coordinates (x, y) = (X / Z, Y / Z), exactly as OpenCV
and image_geometry define them (`distortion_model` names from sensor_msgs
distortion_models.hpp):

- `plumb_bob` (k1, k2, p1, p2, k3) and `rational_polynomial` (k1, k2, p1, p2, k3, k4, k5, k6):
  radial factor (1 + k1 r² + k2 r⁴ + k3 r⁶) / (1 + k4 r² + k5 r⁴ + k6 r⁶) and the tangential
  terms 2 p1 x y + p2 (r² + 2 x²), p1 (r² + 2 y²) + 2 p2 x y.
- `equidistant` (k1, k2, k3, k4; OpenCV's fisheye): θ = atan(r), θd = θ (1 + k1 θ² + k2 θ⁴ +
  k3 θ⁶ + k4 θ⁸), distorted point = (θd / r) (x, y).

`undistort` inverts them with Newton's method (analytic Jacobians, float64) until the
re-distorted point is within 1e-12 of the input, where OpenCV's `undistortPoints` stops
after a fixed 5 fixed-point iterations (measured ~1.2 px off at the corners of a typical
plumb_bob wide-angle lens, ~6.9 px for a rational_polynomial one, at 640x480: printed by
test_core_distortion's OpenCV comparison). Points that do not converge, or whose ray points
90° or more away from the optical axis, come back as NaN: they have no Z-depth.

Every function works on numpy arrays and on torch tensors alike (the ops used exist in both).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

# name -> number of coefficients ROS publishes for it
COEFFICIENTS: dict[str, int] = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
MODELS = tuple(COEFFICIENTS)

_TOL = 1e-12  # convergence, in normalised units (~1e-9 px for focal lengths below 1000 px)
_ITERATIONS = 50


def coefficients(model: str, d: tuple[float, ...]) -> tuple[float, ...]:
    """`d` padded with zeros to the model's length (drivers may publish fewer); ValueError for
    an unknown model, or extra non-zero coefficients (thin-prism / tilted OpenCV models)."""
    if model not in COEFFICIENTS:
        raise ValueError(
            f"distortion_model '{model}' is not supported (supported: {', '.join(MODELS)})"
        )
    n = COEFFICIENTS[model]
    extra = [c for c in d[n:] if c != 0.0]
    if extra:
        raise ValueError(
            f"{model} takes {n} coefficients; D has {len(d)} with non-zero extras {extra} "
            "(thin-prism / tilted lens models are not supported)"
        )
    return tuple(float(c) for c in d[:n]) + (0.0,) * max(0, n - len(d))


def _xp(a: Any) -> Any:
    """The array module of `a`: numpy, or torch for tensors."""
    if isinstance(a, np.ndarray) or np.isscalar(a):
        return np
    return torch


def _radial(r2: Any, k: tuple[float, ...]) -> tuple[Any, Any]:
    """Radial factor R(r²) of plumb_bob / rational_polynomial and dR/d(r²)."""
    k1, k2, k3 = k[0], k[1], k[4]
    k4, k5, k6 = (k[5], k[6], k[7]) if len(k) == 8 else (0.0, 0.0, 0.0)
    num = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))
    dnum = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)
    dden = k4 + r2 * (2.0 * k5 + 3.0 * k6 * r2)
    return num / den, (dnum * den - num * dden) / (den * den)


def _polynomial(x: Any, y: Any, k: tuple[float, ...]) -> tuple[Any, Any, Any]:
    """Distorted (xd, yd) and the 2x2 Jacobian (a, b, c, e) = d(xd, yd)/d(x, y)."""
    p1, p2 = k[2], k[3]
    r2 = x * x + y * y
    rad, drad = _radial(r2, k)
    xd = x * rad + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * rad + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    cross = 2.0 * x * y * drad + 2.0 * p1 * x + 2.0 * p2 * y
    jac = (
        rad + 2.0 * x * x * drad + 2.0 * p1 * y + 6.0 * p2 * x,
        cross,
        cross,
        rad + 2.0 * y * y * drad + 6.0 * p1 * y + 2.0 * p2 * x,
    )
    return xd, yd, jac


def _theta_d(theta: Any, k: tuple[float, ...]) -> tuple[Any, Any]:
    """Equidistant θd(θ) and dθd/dθ."""
    t2 = theta * theta
    poly = 1.0 + t2 * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * k[3])))
    dpoly = 1.0 + t2 * (3.0 * k[0] + t2 * (5.0 * k[1] + t2 * (7.0 * k[2] + t2 * 9.0 * k[3])))
    return theta * poly, dpoly


def distort(x: Any, y: Any, model: str, d: tuple[float, ...]) -> tuple[Any, Any]:
    """Ideal normalised (x, y) → distorted normalised (xd, yd)."""
    k = coefficients(model, d)
    if model == "equidistant":
        xp = _xp(x)
        r = xp.sqrt(x * x + y * y)
        theta_d, _ = _theta_d(xp.arctan(r), k)
        scale = xp.where(r > 1e-15, theta_d / xp.where(r > 1e-15, r, 1.0), 1.0)
        return x * scale, y * scale
    xd, yd, _ = _polynomial(x, y, k)
    return xd, yd


def undistort(xd: Any, yd: Any, model: str, d: tuple[float, ...]) -> tuple[Any, Any]:
    """Distorted normalised (xd, yd) → ideal (x, y) with distort(x, y) == (xd, yd) to 1e-12;
    NaN where that has no solution in front of the camera. Use float64 inputs.

    A strong lens folds: the distorted radius r·R(r²) (θd(θ) for fisheye) rises from the
    centre to a maximum and then falls, so points beyond that maximum have no preimage and
    points below it have a second, unphysical one beyond the fold. Only the principal
    branch (radius below the fold, where the lens is one-to-one) is a ray of the camera;
    everything else is NaN. Newton's method starts from the radial-only inverse on that
    branch; each iteration works only on the points not yet converged.
    """
    k = coefficients(model, d)
    xp = _xp(xd)
    rd = xp.sqrt(xd * xd + yd * yd)
    if model == "equidistant":
        fold = _fold(lambda t: _theta_d(t, k)[1], math.pi / 2)
        theta = _solve(lambda t: _theta_d(t, k), rd, xp, fold)
        return _equidistant_ray(xd, yd, theta, xp)
    fold = _fold(lambda r: _radial_slope(r, k), 50.0)
    r0 = _solve(lambda r: _radius(r, k), rd, xp, fold)
    scale = xp.where(rd > 1e-15, r0 / xp.where(rd > 1e-15, rd, 1.0), 1.0)
    x, y = xd * scale, yd * scale
    active = xp.isfinite(x)
    for _ in range(_ITERATIONS):
        ax, ay, axd, ayd = x[active], y[active], xd[active], yd[active]
        fx, fy, (a, b, c, e) = _polynomial(ax, ay, k)
        rx, ry = fx - axd, fy - ayd
        det = a * e - b * c
        det = xp.where(abs(det) > 1e-300, det, 1e-300)
        x[active] = ax - (e * rx - b * ry) / det
        y[active] = ay - (a * ry - c * rx) / det
        still = (abs(rx) > _TOL) | (abs(ry) > _TOL)
        active[active] = still
        if not bool(still.any()):
            break
    fx, fy, (a, b, c, e) = _polynomial(x, y, k)
    ok = (abs(fx - xd) <= 1e3 * _TOL) & (abs(fy - yd) <= 1e3 * _TOL) & (a * e - b * c > 0)
    ok &= x * x + y * y <= fold * fold
    return xp.where(ok, x, math.nan), xp.where(ok, y, math.nan)


def _radius(r: Any, k: tuple[float, ...]) -> tuple[Any, Any]:
    """Distorted radius r·R(r²) of the radial part, and its slope."""
    r2 = r * r
    rad, drad = _radial(r2, k)
    return r * rad, rad + 2.0 * r2 * drad


def _radial_slope(r: np.ndarray, k: tuple[float, ...]) -> np.ndarray:
    return _radius(r, k)[1]


def _fold(slope: Any, limit: float, samples: int = 20001) -> float:
    """The first radius (or angle) in (0, limit] where the lens's radial map stops rising;
    `limit` when it rises all the way. Sampled finely, then refined by bisection."""
    grid = np.linspace(0.0, limit, samples)
    falling = np.flatnonzero(slope(grid) <= 0.0)
    if falling.size == 0:
        return limit
    lo, hi = grid[falling[0] - 1], grid[falling[0]]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if slope(np.array([mid]))[0] > 0.0 else (lo, mid)
    return float(lo)


def _solve(f_df: Any, target: Any, xp: Any, limit: float) -> Any:
    """1-D Newton for f(t) = target on [0, limit], where f rises; NaN where the target is
    beyond f(limit) or Newton does not converge."""
    t = xp.clip(target * 1.0, 0.0, limit)
    active = (target == target) & (target <= f_df(xp.asarray(limit) if xp is np else
                                                   xp.tensor(limit, dtype=target.dtype))[0])
    for _ in range(_ITERATIONS):
        at = t[active]
        f, df = f_df(at)
        res = f - target[active]
        step = res / xp.where(abs(df) > 1e-300, df, 1e-300)
        t[active] = xp.clip(at - step, 0.0, limit)
        still = abs(res) > _TOL
        active[active] = still
        if not bool(still.any()):
            break
    f, _ = f_df(t)
    return xp.where((abs(f - target) <= 1e3 * _TOL) & (t <= limit), t, math.nan)


def _equidistant_ray(xd: Any, yd: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
    """(x, y) = tan(θ) / rd · (xd, yd); NaN for θ outside [0, 90°) (no Z-depth there)."""
    rd = xp.sqrt(xd * xd + yd * yd)
    ok = (theta >= 0.0) & (theta < math.pi / 2 - 1e-9)
    safe = xp.where(ok, theta, 0.0)
    scale = xp.where(rd > 1e-15, xp.tan(safe) / xp.where(rd > 1e-15, rd, 1.0), 1.0)
    return xp.where(ok, xd * scale, math.nan), xp.where(ok, yd * scale, math.nan)
