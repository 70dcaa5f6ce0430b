"""The camera model of an image and the maths that uses it (REP 103 optical frame: x right,
y down, z forward).

`Intrinsics` is image_geometry's camera model reduced to what one image needs: the projection
(fx, fy, cx, cy) of its pixel grid and, for a raw image, its lens distortion. A rectified image
(or a lens without distortion) has `distortion_model == ""`. Pixel (u, v) is the centre of
column u, row v, as in OpenCV and ROS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch

from dpt_ros.core.camera import distortion
from dpt_ros.core.errors import BadInput


@dataclass(frozen=True)
class Intrinsics:
    """Camera model for an image of `width` x `height` pixels: pinhole projection, plus the
    lens distortion of a raw (unrectified) image (`distortion_model`, coefficients `d`)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion_model: str = ""  # "" = none (rectified input, or a lens without distortion)
    d: tuple[float, ...] = ()
    # raw images: (fx, fy, cx, cy) of the rectified image their camera_info's P defines (as
    # image_geometry rectifies); () = the same as K
    rectified: tuple[float, ...] = ()

    @property
    def is_distorted(self) -> bool:
        return bool(self.distortion_model) and any(c != 0.0 for c in self.d)

    @property
    def rectified_projection(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of this camera's rectified image (P for a raw camera, else K)."""
        if len(self.rectified) == 4:
            return tuple(self.rectified)  # type: ignore[return-value]
        return self.fx, self.fy, self.cx, self.cy

    @property
    def supported(self) -> bool:
        """False when the distortion model is one we cannot invert (no points then)."""
        if not self.is_distorted:
            return True
        try:
            distortion.coefficients(self.distortion_model, self.d)
        except ValueError:
            return False
        return True

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float) -> Intrinsics:
        """Square pixels, principal point at the centre, focal length from the horizontal FOV."""
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera seen at another resolution (pixel-centre convention preserved; the
        distortion acts on normalised coordinates, so it is unchanged)."""
        sx, sy = width / self.width, height / self.height
        fx, fy, cx, cy = scale_projection(self.fx, self.fy, self.cx, self.cy, sx, sy)
        rect = scale_projection(*self.rectified, sx, sy) if self.rectified else ()
        return replace(self, rectified=rect, fx=fx, fy=fy, cx=cx, cy=cy, width=width,
                       height=height)


def scale_projection(fx: float, fy: float, cx: float, cy: float, sx: float, sy: float
                     ) -> tuple[float, float, float, float]:
    """A projection for the image resampled by (sx, sy): focal lengths scale, and the
    principal point with pixel centres kept (pixel u spans [u - 0.5, u + 0.5])."""
    return fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5


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


@lru_cache(maxsize=16)
def ray_directions(intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """X / Z and Y / Z of every pixel's ray in float64: (1, W) and (H, 1) (broadcastable)
    for an undistorted camera, (H, W) each through the inverted lens model of a raw one
    (NaN where a pixel has no ray in front of the camera). Shared by the back-projection,
    the rectification grids and the synthetic renderer, so all see the same camera; cached
    (read-only arrays), because inverting a 720p lens costs over half a second."""
    x = ((np.arange(intr.width, dtype=np.float64) - intr.cx) / intr.fx)[None, :]
    y = ((np.arange(intr.height, dtype=np.float64) - intr.cy) / intr.fy)[:, None]
    if intr.is_distorted:
        xd, yd = np.broadcast_arrays(x, y)
        x, y = distortion.undistort(xd.copy(), yd.copy(), intr.distortion_model, intr.d)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@lru_cache(maxsize=16)
def _rays(intr: Intrinsics, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`ray_directions` as float32 on `device`: per column (W,) and per row (H,) for an
    undistorted camera, per pixel (H, W) each for a raw one.

    Computed in float64 on the host (so only the final product with Z rounds to float32, and
    devices without float64 work) and cached, bounded: a camera's model rarely changes, and
    inverting a lens costs tens to hundreds of milliseconds.
    """
    x, y = ray_directions(intr)
    if not intr.is_distorted:
        x, y = x[0], y[:, 0]
    return (torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device),
            torch.from_numpy(np.ascontiguousarray(y, np.float32)).to(device))


def check_model(intr: Intrinsics) -> None:
    """BadInput('distortion') when the camera's lens model cannot be inverted."""
    if intr.is_distorted:
        try:
            distortion.coefficients(intr.distortion_model, intr.d)
        except ValueError as err:
            raise BadInput("distortion", f"{err}; no points for this camera") from None


def backproject(depth: torch.Tensor, intr: Intrinsics) -> torch.Tensor:
    """Depth (H, W) along the optical axis → points (H, W, 3) float32 on depth's device.

    X = x(u, v) Z, Y = y(u, v) Z with (x, y) the normalised coordinates of the pixel's ray:
    (u - cx) / fx, (v - cy) / fy for an undistorted camera, the undistorted ones for a raw
    image, so every point projects back through K and D onto its own pixel. NaN depth (or a
    pixel whose ray has no Z-depth) gives NaN points.
    """
    if depth.dim() != 2:
        raise ValueError(f"depth must be (H, W), got {tuple(depth.shape)}")
    height, width = depth.shape
    if (intr.width, intr.height) != (width, height):
        raise BadInput(
            "camera_info",
            f"intrinsics are for {intr.width}x{intr.height} but depth is {width}x{height}",
        )
    check_model(intr)
    z = depth.to(torch.float32)
    ray_x, ray_y = _rays(intr, str(z.device))
    points = torch.empty((height, width, 3), dtype=torch.float32, device=z.device)
    torch.mul(z, ray_x, out=points[..., 0])
    torch.mul(z, ray_y if ray_y.dim() == 2 else ray_y[:, None], out=points[..., 1])
    points[..., 2] = z
    return points


def project(points, intr: Intrinsics):
    """Camera-frame points (..., 3) → pixel coordinates (..., 2) through the lens model
    (numpy or torch, in the points' dtype); points with Z <= 0 give NaN."""
    xp = torch if isinstance(points, torch.Tensor) else np
    z = points[..., 2]
    z = xp.where(z > 0, z, math.nan)
    x, y = points[..., 0] / z, points[..., 1] / z
    if intr.is_distorted:
        x, y = distortion.distort(x, y, intr.distortion_model, intr.d)
    return xp.stack([intr.fx * x + intr.cx, intr.fy * y + intr.cy], -1)
