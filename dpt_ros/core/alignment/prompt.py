"""A frame's metric reference as Prompt Depth Anything's prompt: a dense low-resolution
depth map in metres.

The model min-max normalises its prompt per image and adds it to every fusion map
(`model.prompt_depth_anything`): a hole (0 / NaN) would become the prompt's minimum and
pull the depth there towards it. So holes are **filled**, by push-pull interpolation (a
pyramid of valid-weighted 2x2 means, then each level's holes taken from the coarser level
bilinearly): smooth, local, exact at every measured pixel, vectorised per level. A
reference with fewer than `min_valid` measurements gives **no prompt** (the frame then has
no metric depth: without a prompt the model's output is relative).

A depth image is used at its own resolution (the model resizes the prompt itself, as the
reference processor leaves it); a point cloud is first z-buffered onto a grid of the camera
whose longer side is `POINTS_GRID` pixels (ARKit's LiDAR depth is 256 x 192, what the
checkpoints were trained with).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dpt_ros.core.alignment.frames import FrameReference
from dpt_ros.core.camera.geometry import Intrinsics

POINTS_GRID = 256


def fill_holes(depth: torch.Tensor) -> torch.Tensor | None:
    """(h, w) metres, NaN / <= 0 = none → every pixel filled (measured ones unchanged);
    None when nothing is measured."""
    valid = torch.isfinite(depth) & (depth > 0)
    if bool(valid.all()):
        return depth
    if not bool(valid.any()):
        return None
    values = [torch.where(valid, depth, 0.0)[None, None]]
    weights = [valid.float()[None, None]]
    while min(values[-1].shape[-2:]) > 1 and not bool((weights[-1] > 0).all()):
        w = F.avg_pool2d(weights[-1], 2, ceil_mode=True)
        vw = F.avg_pool2d(values[-1] * weights[-1], 2, ceil_mode=True)
        values.append(torch.where(w > 0, vw / w.clamp_min(1e-12), 0.0))
        weights.append((w > 0).float())
    filled = values[-1]
    if not bool((weights[-1] > 0).all()):  # one row / column left with holes: its mean
        known = weights[-1] > 0
        filled = torch.where(known, filled, filled[known].mean())
    for value, weight in zip(reversed(values[:-1]), reversed(weights[:-1])):
        up = F.interpolate(filled, size=value.shape[-2:], mode="bilinear", align_corners=False)
        filled = torch.where(weight > 0, value, up)
    return filled[0, 0]


def points_grid(width: int, height: int) -> tuple[int, int]:
    """(h, w) of the grid a point cloud is rasterised onto for the prompt."""
    scale = POINTS_GRID / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


def prompt_depth(reference: FrameReference, camera: Intrinsics | None,
                 image_size: tuple[int, int], device: torch.device, min_valid: int
                 ) -> torch.Tensor | None:
    """(h, w) float32 metres, holes filled, or None (no usable prompt). The depth image
    wins when the reference has both (it is dense and registered)."""
    depth = reference.depth_metres(device)
    if depth is None and reference.points is not None and camera is not None:
        height, width = points_grid(image_size[1], image_size[0])
        grid_camera = camera.scaled(width, height)
        samples = reference.samples(grid_camera, (height, width), device)
        depth = torch.full((height * width,), torch.nan, device=device)
        if samples is not None and len(samples):
            pixel = (samples.v.round().long() * width + samples.u.round().long())
            depth[pixel] = samples.z.to(device)
        depth = depth.view(height, width)
    if depth is None:
        return None
    valid = int((torch.isfinite(depth) & (depth > 0)).sum())
    if valid < max(min_valid, 1):
        return None
    return fill_holes(depth)
