"""Pinhole intrinsics and the maths that uses them (REP 103 optical frame: x right, y down,
z forward)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import torch

from dpt_ros.core.errors import BadInput


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics for an image of `width` x `height` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float) -> Intrinsics:
        """Square pixels, principal point at the centre, focal length from the horizontal FOV."""
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera seen at another resolution (pixel-centre convention preserved)."""
        sx, sy = width / self.width, height / self.height
        return replace(
            self,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            width=width,
            height=height,
        )


def validate_intrinsics(intr: Intrinsics, width: int, height: int) -> Intrinsics:
    """Check intrinsics against an image of `width` x `height`; return them sized to it.

    A (0, 0)-sized camera_info is taken to describe this image; any other size mismatch is an
    error (a silently rescaled camera would give wrong metric points).
    """
    values = (intr.fx, intr.fy, intr.cx, intr.cy)
    if not all(math.isfinite(v) for v in values) or intr.fx <= 0 or intr.fy <= 0:
        raise BadInput(
            "camera_info",
            f"invalid intrinsics fx={intr.fx} fy={intr.fy} cx={intr.cx} cy={intr.cy} "
            "(focal lengths must be finite and > 0)",
        )
    if intr.width == 0 and intr.height == 0:
        return replace(intr, width=int(width), height=int(height))
    if intr.width != width or intr.height != height:
        raise BadInput(
            "camera_info",
            f"camera_info is {intr.width}x{intr.height} but the image is {width}x{height}",
        )
    return intr


@lru_cache(maxsize=8)
def _rays(intr: Intrinsics, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column (u - cx) / fx and per-row (v - cy) / fy, float32 on `device`.

    Computed in float64 on the host (so only the final product with Z rounds to float32, and
    devices without float64 work) and cached: a camera's intrinsics rarely change.
    """
    ray_x = (torch.arange(intr.width, dtype=torch.float64) - intr.cx) / intr.fx
    ray_y = (torch.arange(intr.height, dtype=torch.float64) - intr.cy) / intr.fy
    return ray_x.to(device, torch.float32), ray_y.to(device, torch.float32)


def backproject(depth: torch.Tensor, intr: Intrinsics) -> torch.Tensor:
    """Depth (H, W) along the optical axis → points (H, W, 3) float32 on depth's device.

    X = (u - cx) Z / fx, Y = (v - cy) Z / fy (u, v pixel indices); NaN depth gives NaN points.
    """
    if depth.dim() != 2:
        raise ValueError(f"depth must be (H, W), got {tuple(depth.shape)}")
    height, width = depth.shape
    if (intr.width, intr.height) != (width, height):
        raise BadInput(
            "camera_info",
            f"intrinsics are for {intr.width}x{intr.height} but depth is {width}x{height}",
        )
    z = depth.to(torch.float32)
    ray_x, ray_y = _rays(intr, str(z.device))
    points = torch.empty((height, width, 3), dtype=torch.float32, device=z.device)
    torch.mul(z, ray_x, out=points[..., 0])
    torch.mul(z, ray_y[:, None], out=points[..., 1])
    points[..., 2] = z
    return points
