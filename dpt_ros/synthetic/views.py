"""Pictures for the demo: depth and relative error on fixed colour scales, class colours, a
point cloud splatted from a viewpoint beside the camera (numpy + Pillow, no ROS).

The sheet that puts them together (titles, colour bars, legend) is `dpt_ros.synthetic.sheet`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dpt_ros.core.render.colormap import colorize
from dpt_ros.core.render.segmentation import palette
from dpt_ros.synthetic.camera_path import Pose

DEPTH_CMAP = "turbo"
ERROR_CMAP = "inferno"
ERROR_MAX = 0.3  # |pred - gt| / gt at the top of the error scale (everything above is clipped)


def colormap_rgb(values: np.ndarray, vmin: float, vmax: float, name: str) -> np.ndarray:
    """(H, W) values → RGB uint8 on the fixed range [vmin, vmax]; non-finite → black."""
    bgr = colorize(torch.from_numpy(np.array(values, dtype=np.float32)), vmin, vmax, name)
    return bgr.numpy()[..., ::-1].copy()


def depth_rgb(depth: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """(H, W) metres → RGB uint8 turbo on a fixed range (so prediction and truth compare)."""
    return colormap_rgb(depth, vmin, vmax, DEPTH_CMAP)


def relative_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """|pred - gt| / gt per pixel (the per-pixel term of AbsRel); NaN where either is invalid."""
    pred = np.asarray(pred, dtype=np.float32)
    gt = np.asarray(gt, dtype=np.float32)
    ok = np.isfinite(pred) & np.isfinite(gt) & (gt > 0) & (pred > 0)
    err = np.full(gt.shape, np.nan, dtype=np.float32)
    err[ok] = np.abs(pred[ok] - gt[ok]) / gt[ok]
    return err


def error_rgb(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return colormap_rgb(relative_error(pred, gt), 0.0, ERROR_MAX, ERROR_CMAP)


def class_colors(num_classes: int) -> np.ndarray:
    """(N, 3) uint8 RGB: the node's own palette, so the legend matches its overlay."""
    return palette(num_classes).numpy()[:, ::-1].copy()


def class_rgb(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(H, W) class ids → RGB; ids outside 0..N-1 are black."""
    table = np.concatenate([class_colors(num_classes), np.zeros((1, 3), np.uint8)])
    ids = np.asarray(labels, dtype=np.int64)
    return table[np.where((ids >= 0) & (ids < num_classes), ids, num_classes)]


def nice_range(values: list[np.ndarray], step: float = 0.5) -> tuple[float, float]:
    """One colour range for several depth maps: the 1st-99th percentile of all their finite
    values, widened to multiples of `step` metres."""
    flat = np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in values])
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(flat, [1, 99])
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return float(lo), float(max(hi, lo + step))


def splat_points(points: np.ndarray, colors: np.ndarray, eye_pose: Pose, width: int,
                 height: int, hfov_deg: float = 70.0) -> np.ndarray:
    """Z-buffered 2x2 splats of world points (N, 3) with RGB colours (N, 3) seen from
    `eye_pose`; the nearest point wins each pixel (one sort + unique, no per-point loop)."""
    img = np.full((height, width, 3), 32, dtype=np.uint8)
    ok = np.isfinite(points).all(1)
    cam = (points[ok] - eye_pose.position) @ eye_pose.rotation
    col = colors[ok]
    front = cam[:, 2] > 0.05
    cam, col = cam[front], col[front]
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    u = np.floor(f * cam[:, 0] / cam[:, 2] + (width - 1) / 2.0).astype(np.int64)
    v = np.floor(f * cam[:, 1] / cam[:, 2] + (height - 1) / 2.0).astype(np.int64)
    du, dv = np.meshgrid([0, 1], [0, 1])
    u = (u[:, None] + du.ravel()).ravel()
    v = (v[:, None] + dv.ravel()).ravel()
    z = np.repeat(cam[:, 2], 4)
    col = np.repeat(col, 4, axis=0)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    u, v, z, col = u[inside], v[inside], z[inside], col[inside]
    order = np.argsort(z, kind="stable")
    pix = (v * width + u)[order]
    _, first = np.unique(pix, return_index=True)
    img.reshape(-1, 3)[pix[first]] = col[order][first]
    return img


def side_view(camera: Pose, target: np.ndarray) -> Pose:
    """A viewpoint 1 m behind-left of and 0.8 m above the camera, looking at `target`."""
    back = -camera.rotation[:, 2] * 1.0 - camera.rotation[:, 0] * 1.0
    eye = camera.position + np.array([back[0], back[1], 0.8])
    d = target - eye
    yaw = math.atan2(d[1], d[0])
    pitch = math.atan2(-d[2], math.hypot(d[0], d[1]))
    return Pose.look(tuple(eye), yaw, pitch)
