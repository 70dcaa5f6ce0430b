"""OpenCV's lens formulas written out for the tests (not the package's code): the truth that
published points, rendered frames and the node's rectification are checked against."""

from __future__ import annotations

from typing import Any

import numpy as np


def distort(x: np.ndarray, y: np.ndarray, model: str, d: Any
            ) -> tuple[np.ndarray, np.ndarray]:
    """Ideal normalised coordinates → distorted ones: plumb_bob (k1 k2 p1 p2 k3),
    rational_polynomial (… k4 k5 k6), equidistant (k1..k4 on the angle θ)."""
    d = [float(c) for c in d]
    if model == "equidistant":
        r = np.hypot(x, y)
        th = np.arctan(r)
        th_d = th * (1 + d[0] * th**2 + d[1] * th**4 + d[2] * th**6 + d[3] * th**8)
        scale = np.where(r > 0, th_d / np.where(r > 0, r, 1), 1.0)
        return x * scale, y * scale
    k1, k2, p1, p2, k3 = (d + [0.0] * 5)[:5]
    k4, k5, k6 = d[5:8] if len(d) >= 8 else (0.0, 0.0, 0.0)
    r2 = x * x + y * y
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    return (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)


def textbook_pixels(points: np.ndarray, info: Any) -> np.ndarray:
    """Pixel coordinates of optical-frame points through a CameraInfo: K + D for a raw
    camera, P when all of D is zero (a rectified image)."""
    x, y = points[..., 0] / points[..., 2], points[..., 1] / points[..., 2]
    if not any(info.d):
        p = info.p
        return np.stack([p[0] * x + p[2], p[5] * y + p[6]], -1)
    xd, yd = distort(x, y, info.distortion_model, info.d)
    k = info.k
    return np.stack([k[0] * xd + k[2], k[4] * yd + k[5]], -1)


def rectified_view_footprint(info: Any, step: float = 0.2) -> np.ndarray:
    """(H, W) bool: the raw pixels that the rectified image P defines sees (what
    image_proc's rectify keeps of the raw image). Found forwards only: a dense grid over the
    rectified image, each point's ray through K + D, the raw pixel it lands nearest to."""
    p = info.p
    u, v = np.meshgrid(np.arange(0.0, info.width - 1 + 1e-9, step),
                       np.arange(0.0, info.height - 1 + 1e-9, step))
    x, y = (u - p[2]) / p[0], (v - p[6]) / p[5]
    pix = textbook_pixels(np.stack([x, y, np.ones_like(x)], -1), info)
    col, row = np.rint(pix[..., 0]).astype(int), np.rint(pix[..., 1]).astype(int)
    ok = (col >= 0) & (col < info.width) & (row >= 0) & (row < info.height)
    seen = np.zeros((info.height, info.width), bool)
    seen[row[ok], col[ok]] = True
    return seen
