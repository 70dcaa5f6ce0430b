"""The model sees a rectified image; the outputs stay on the raw image's pixel grid.

Depth models are trained on rectilinear (pinhole) pictures: fed the raw image of a lens with
strong distortion they see bent walls and squeezed corners, and their depth suffers. So
for a raw camera (lens distortion in its camera_info) the pipeline first resamples the
image into the rectified camera its camera_info's P defines — what image_proc's rectify
node and image_geometry's `rectifyImage` produce — runs the models on that, and samples
their outputs back onto the raw grid along each raw pixel's undistorted ray. Depth is Z
along the optical axis in both images (R is taken as identity, the monocular case), so the
values carry over unchanged; raw pixels whose ray leaves the rectified image get NaN.

The view is P's, not one widened to hold every raw pixel (OpenCV's alpha = 1): a metric
model reads distance from apparent size, so a smaller focal length shifts its scale (tried
on the synthetic world: median cloud error 0.057 m → 0.261 m). The calibration chooses.

Both sampling grids are per camera model and size, computed once in float64 on the host and
cached (bounded) on the device; each frame then costs two `grid_sample` calls.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from dpt_ros.core.camera import distortion
from dpt_ros.core.camera.geometry import Intrinsics, ray_directions


def needs_rectifying(intr: Intrinsics | None) -> bool:
    return intr is not None and intr.is_distorted and intr.supported


def _normalised(u: np.ndarray, v: np.ndarray, width: int, height: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates → grid_sample's (1, H, W, 2) [-1, 1] grid (align_corners=True: pixel
    centres at the ends), NaN points moved outside the image, and the (H, W) mask of the
    points that fall inside it."""
    grid = np.stack([2.0 * u / (width - 1) - 1.0, 2.0 * v / (height - 1) - 1.0], -1)
    inside = np.isfinite(grid).all(-1) & (np.abs(grid) <= 1.0).all(-1)
    grid = np.where(np.isfinite(grid), grid, 2.0)
    return (torch.from_numpy(grid[None]).to(torch.float32), torch.from_numpy(inside))


@lru_cache(maxsize=16)
def rectify_grid(intr: Intrinsics, device: str) -> torch.Tensor:
    """For each pixel of the rectified image (camera `rectified_projection`): where in the
    raw image to sample it (through the lens model, forwards; outside it reads black)."""
    fx, fy, cx, cy = intr.rectified_projection
    x = (np.arange(intr.width, dtype=np.float64) - cx) / fx
    y = (np.arange(intr.height, dtype=np.float64) - cy) / fy
    xd, yd = distortion.distort(*np.meshgrid(x, y), intr.distortion_model, intr.d)
    grid, _ = _normalised(intr.fx * xd + intr.cx, intr.fy * yd + intr.cy, intr.width,
                          intr.height)
    return grid.to(device)


@lru_cache(maxsize=16)
def unrectify_grid(intr: Intrinsics, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """For each raw pixel: where its undistorted ray meets the rectified image, and whether
    it does (not for rays that leave it, or pixels with no ray). The rays are the ones the
    back-projection uses (`ray_directions`, cached: the lens is inverted once)."""
    fx, fy, cx, cy = intr.rectified_projection
    x, y = np.broadcast_arrays(*ray_directions(intr))
    grid, inside = _normalised(fx * x + cx, fy * y + cy, intr.width, intr.height)
    return grid.to(device), inside.to(device)


def rectify_images(rgb: torch.Tensor, cameras: list[Intrinsics | None]) -> torch.Tensor:
    """(B, H, W, 3) uint8 raw frames → the same with every raw-camera frame rectified (the
    others as they are); regions the raw image does not cover are black."""
    if not any(needs_rectifying(c) for c in cameras):
        return rgb
    out = []
    for frame, cam in zip(rgb, cameras):
        if needs_rectifying(cam):
            img = frame.permute(2, 0, 1)[None].float()
            warped = F.grid_sample(img, rectify_grid(cam, str(rgb.device)), mode="bilinear",
                                   padding_mode="zeros", align_corners=True)[0]
            frame = warped.add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
        out.append(frame)
    return _batch(out)


def _batch(frames: list[torch.Tensor]) -> torch.Tensor:
    """One tensor of the frames; a single frame without a copy (it usually is one)."""
    return frames[0][None] if len(frames) == 1 else torch.stack(frames)


def unrectify_maps(maps: torch.Tensor, cameras: list[Intrinsics | None], fill: float | None
                   ) -> torch.Tensor:
    """(B, C, H, W) model outputs on the rectified grids (at the cameras' size) → the raw
    grids: bilinear, and `fill` (NaN for depth) where a raw pixel's ray leaves the rectified
    image; `fill=None` repeats the border instead (logits: every pixel keeps a class)."""
    if not any(needs_rectifying(c) for c in cameras):
        return maps
    out = []
    for frame, cam in zip(maps, cameras):
        if needs_rectifying(cam):
            grid, inside = unrectify_grid(cam, str(maps.device))
            frame = F.grid_sample(frame[None], grid, mode="bilinear",
                                  padding_mode="border" if fill is None else "zeros",
                                  align_corners=True)[0]
            if fill is not None:
                frame.masked_fill_(~inside, fill)
        out.append(frame)
    return _batch(out)
