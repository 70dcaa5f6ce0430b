"""Pictures for the demo: colourised depth on a shared scale, a point cloud splatted from a
viewpoint beside the camera, and a labelled picture grid (numpy + Pillow, no ROS)."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from dpt_ros.core.colormap import colorize
from dpt_ros.synthetic.camera_path import Pose


def depth_rgb(depth: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """(H, W) metres → RGB uint8 turbo on a fixed range (so prediction and truth compare)."""
    bgr = colorize(torch.from_numpy(np.array(depth, dtype=np.float32)), vmin, vmax)
    return bgr.numpy()[..., ::-1].copy()


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


def grid(rows: list[list[np.ndarray]], titles: list[str], tile: tuple[int, int] = (240, 320)
         ) -> Image.Image:
    """Tiles (RGB uint8, any size) resized to `tile` (h, w), with a title bar per column."""
    th, tw = tile
    bar = 18
    out = Image.new("RGB", (tw * len(titles), bar + th * len(rows)), (20, 20, 20))
    draw = ImageDraw.Draw(out)
    for c, title in enumerate(titles):
        draw.text((c * tw + 6, 3), title, fill=(235, 235, 235))
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            tile_img = Image.fromarray(np.ascontiguousarray(img)).resize((tw, th), Image.BILINEAR)
            out.paste(tile_img, (c * tw, bar + r * th))
    return out
