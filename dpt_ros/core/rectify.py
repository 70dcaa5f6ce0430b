"""The model sees a rectified image; the outputs stay on the raw image's pixel grid.

Depth models are trained on rectilinear (pinhole) pictures: fed the raw image of a lens with
strong distortion they see bent walls and squeezed corners, and their depth suffers. So
for a raw camera (lens distortion in its camera_info) the pipeline first resamples the
image into the rectified camera its camera_info's P defines — what image_proc's rectify
node and image_geometry's `rectifyImage` produce — runs the models on that, and samples
their outputs back onto the raw grid along each raw pixel's undistorted ray. Depth is Z
along the optical axis in both images (R is taken as identity, the monocular case), so the
values carry over unchanged; raw pixels whose ray leaves the rectified image get NaN.

Both sampling grids are per camera model and size, computed once in float64 on the host and
cached (bounded) on the device; each frame then costs two `grid_sample` calls.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from dpt_ros.core import distortion
from dpt_ros.core.geometry import Intrinsics, ray_directions


def needs_rectifying(intr: Intrinsics | None) -> bool:
    return intr is not None and intr.is_distorted and intr.supported


def _normalised(u: np.ndarray, v: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel coordinates → grid_sample's [-1, 1] (align_corners=True: pixel centres at the
    ends), stacked (H, W, 2); NaN stays NaN (grid_sample then reads padding)."""
    return np.stack([2.0 * u / (width - 1) - 1.0, 2.0 * v / (height - 1) - 1.0], -1)


@lru_cache(maxsize=8)
def rectify_grid(intr: Intrinsics, device: str) -> torch.Tensor:
    """(H, W, 2) float32: for each pixel of the rectified image (camera `rectified_projection`),
    where in the raw image to sample it (through the lens model, forwards)."""
    fx, fy, cx, cy = intr.rectified_projection
    x = (np.arange(intr.width, dtype=np.float64) - cx) / fx
    y = (np.arange(intr.height, dtype=np.float64) - cy) / fy
    xd, yd = distortion.distort(*np.meshgrid(x, y), intr.distortion_model, intr.d)
    grid = _normalised(intr.fx * xd + intr.cx, intr.fy * yd + intr.cy, intr.width, intr.height)
    return torch.from_numpy(grid).to(device, torch.float32)


@lru_cache(maxsize=8)
def unrectify_grid(intr: Intrinsics, device: str) -> torch.Tensor:
    """(H, W, 2) float32: for each raw pixel, where its undistorted ray meets the rectified
    image (NaN where it has no ray)."""
    fx, fy, cx, cy = intr.rectified_projection
    x, y = np.broadcast_arrays(*ray_directions(intr))
    grid = _normalised(fx * x + cx, fy * y + cy, intr.width, intr.height)
    return torch.from_numpy(grid).to(device, torch.float32)


def _sample(maps: torch.Tensor, grid: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    """(C, H, W) maps sampled at one (H', W', 2) grid; NaN grid points read 0 / the border."""
    ok = torch.isfinite(grid).all(-1)
    safe = torch.where(ok[..., None], grid, torch.full_like(grid, 2.0))
    out = F.grid_sample(maps[None], safe[None], mode=mode, padding_mode=padding,
                        align_corners=True)[0]
    return out


def rectify_images(rgb: torch.Tensor, cameras: list[Intrinsics | None]) -> torch.Tensor:
    """(B, H, W, 3) uint8 raw frames → the same with every raw-camera frame rectified (the
    others as they are); regions the raw image does not cover are black."""
    if not any(needs_rectifying(c) for c in cameras):
        return rgb
    out = rgb.clone()
    for i, cam in enumerate(cameras):
        if needs_rectifying(cam):
            img = rgb[i].permute(2, 0, 1).float()
            warped = _sample(img, rectify_grid(cam, str(rgb.device)), "bilinear", "zeros")
            out[i] = warped.round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0)
    return out


def unrectify_maps(maps: torch.Tensor, cameras: list[Intrinsics | None], fill: float | None
                   ) -> torch.Tensor:
    """(B, C, H, W) model outputs on the rectified grids (at the cameras' size) → the raw
    grids: bilinear, and `fill` (NaN for depth) where a raw pixel's ray leaves the rectified
    image; `fill=None` repeats the border instead (logits: every pixel keeps a class)."""
    if not any(needs_rectifying(c) for c in cameras):
        return maps
    out = maps.clone()
    for i, cam in enumerate(cameras):
        if not needs_rectifying(cam):
            continue
        grid = unrectify_grid(cam, str(maps.device))
        warped = _sample(maps[i], grid, "bilinear", "border" if fill is None else "zeros")
        if fill is not None:
            inside = torch.isfinite(grid).all(-1) & (grid.abs() <= 1.0).all(-1)
            warped = torch.where(inside, warped, torch.full_like(warped, fill))
        out[i] = warped
    return out
