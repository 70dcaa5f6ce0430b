"""Metric references as samples on the prediction's pixel grid.

A reference is a set of (u, v, z) samples: a column/row position on the grid of the
prediction it will be compared with (pixel centres at integers) and a metric Z-depth. Both
kinds of reference become that, so the fit never cares where the metres came from:

- a depth image registered to the camera (same optical frame, any resolution): every valid
  pixel is one sample, its centre mapped onto the prediction grid by (u + 0.5) * s - 0.5,
  the convention of `Intrinsics.scaled` (and of Pillow's resize that made the model input);
- a point cloud (a LiDAR): moved into the camera optical frame by a static extrinsic,
  projected through the frame's camera model (lens distortion included), and z-buffered per
  prediction pixel (nearest wins), so points the sensor sees behind a foreground surface do
  not pair with the foreground's prediction.

Everything runs on the prediction's device, vectorised; no loop over points or pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from dpt_ros.config.settings import parse_extrinsic
from dpt_ros.core.camera import distortion
from dpt_ros.core.camera.geometry import Intrinsics, project

DEPTH_ENCODINGS = ("32FC1", "16UC1")
MILLIMETRE = 1e-3


@dataclass(frozen=True)
class ReferenceSamples:
    """Metric samples at sub-pixel positions of an H x W prediction grid (1-D tensors)."""

    u: torch.Tensor  # columns, float32; pixel centres at 0 .. W-1
    v: torch.Tensor  # rows
    z: torch.Tensor  # Z-depth along the optical axis, metres, finite and > 0
    grid: tuple[int, int]  # (H, W) of the prediction these samples belong to

    def __len__(self) -> int:
        return int(self.z.shape[0])


def depth_in_metres(depth: np.ndarray | torch.Tensor, encoding: str,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """A depth_reference image as float32 metres with NaN where it has no measurement.

    `32FC1` is metres (NaN, inf, 0 and negatives are "no measurement"), `16UC1` millimetres
    (0 is "no measurement"), as REP 118 and the usual RGB-D / ToF drivers publish them.
    """
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth reference encoding {encoding!r} is not one of "
                         f"{', '.join(DEPTH_ENCODINGS)}")
    t = depth if isinstance(depth, torch.Tensor) else torch.from_numpy(np.asarray(depth))
    if t.dim() != 2:
        raise ValueError(f"a depth reference is (H, W), got {tuple(t.shape)}")
    if t.dtype == torch.uint16:  # travels as int16 (uint16 has few kernels, none on MPS)
        t = t.view(torch.int16)
    if device is not None:
        t = t.to(device)
    if encoding == "16UC1":
        t = t.to(torch.int32)
        t = (t & 0xFFFF).float() * MILLIMETRE  # int16 back to 0..65535
    else:
        t = t.float()
    return torch.where(torch.isfinite(t) & (t > 0), t, torch.nan)


def samples_from_depth_image(depth: torch.Tensor, grid: tuple[int, int]) -> ReferenceSamples:
    """Every valid pixel of a registered depth image (metres, NaN/0 = none) as a sample of
    an H x W prediction grid; the two grids cover the same image, pixel centres mapped by
    (u + 0.5) * W / w - 0.5 (no interpolation of the reference: a depth camera's value at
    an edge is one surface or the other, blending two would invent a third)."""
    if depth.dim() != 2:
        raise ValueError(f"a depth reference is (H, W), got {tuple(depth.shape)}")
    height, width = grid
    h, w = depth.shape
    depth = depth.float()
    valid = torch.isfinite(depth) & (depth > 0)
    rows, cols = valid.nonzero(as_tuple=True)
    u = (cols.float() + 0.5) * (width / w) - 0.5
    v = (rows.float() + 0.5) * (height / h) - 0.5
    return ReferenceSamples(u, v, depth[rows, cols], (height, width))


@dataclass(frozen=True)
class Extrinsic:
    """Static rigid transform camera <- sensor: p_camera = R p_sensor + t.

    Built from the parameter form [x, y, z, qx, qy, qz, qw] (translation in metres, unit
    quaternion; a non-unit one is normalised, a zero one is an error)."""

    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quaternion: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # x, y, z, w

    @classmethod
    def from_list(cls, values: Sequence[float]) -> Extrinsic:
        return cls(*parse_extrinsic(values))  # the parameter check's rule

    @property
    def is_identity(self) -> bool:
        return self.translation == (0.0, 0.0, 0.0) and self.quaternion in (
            (0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0, -1.0))

    def rotation(self) -> np.ndarray:
        """(3, 3) float64 rotation matrix of the quaternion."""
        x, y, z, w = self.quaternion
        return np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) sensor-frame points → camera frame, float32 on the points' device."""
        if self.is_identity:
            return points.float()
        rot = torch.from_numpy(self.rotation()).to(points.device, torch.float32)
        shift = torch.tensor(self.translation, dtype=torch.float32, device=points.device)
        return points.float() @ rot.T + shift


def project_points(points: torch.Tensor, camera: Intrinsics
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Camera optical-frame points (N, 3) → (u, v, z) on the image `camera` describes.

    The one place where a reference meets the camera model: `core.camera.geometry.project`, the
    pinhole plus the frame's lens distortion (plumb_bob, rational_polynomial, equidistant).
    Points at z <= 0 come back with non-finite u, v, and so do points of a distorted camera
    outside its field of view (farther off-axis than the rays of the image border): a
    polynomial lens model folds back there and would put a LiDAR point from behind the
    image's edge inside it. Callers keep what lands on the image.
    """
    pts = points.float()
    u, v = project(pts, camera).unbind(-1)
    z = pts[..., 2]
    if camera.is_distorted:
        limit = _field_radius(camera)
        x, y = pts[..., 0] / z, pts[..., 1] / z
        outside = (x * x + y * y) > limit * limit
        u = torch.where(outside, torch.nan, u)
    return u, v, z


@lru_cache(maxsize=16)
def _field_radius(camera: Intrinsics) -> float:
    """Largest normalised radius (undistorted X/Z, Y/Z) of the image border's rays, plus 2 %:
    every ray that can reach the image lies within it."""
    w, h = camera.width, camera.height
    cols, rows = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    u = np.concatenate([cols, cols, np.zeros(h), np.full(h, w - 1.0)])
    v = np.concatenate([np.zeros(w), np.full(w, h - 1.0), rows, rows])
    x, y = distortion.undistort((u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy,
                                camera.distortion_model, camera.d)
    r = np.hypot(x, y)
    r = r[np.isfinite(r)]
    return float(r.max()) * 1.02 if r.size else math.inf


def samples_from_points(points: torch.Tensor | np.ndarray, camera: Intrinsics,
                        extrinsic: Extrinsic | None = None,
                        device: torch.device | str | None = None) -> ReferenceSamples:
    """A point cloud (N, 3) → samples on the grid `camera` describes (the camera's
    intrinsics scaled to the prediction: `Intrinsics.scaled(W, H)`).

    Points in the sensor frame are moved into the camera frame by `extrinsic` (None: they
    are in the camera optical frame already). Of the points landing in one prediction pixel
    only the nearest is kept (z-buffer): the others are hidden from the camera by it. Each
    kept sample keeps its exact projected position.
    """
    pts = points if isinstance(points, torch.Tensor) else torch.from_numpy(np.asarray(points))
    if pts.dim() != 2 or pts.shape[1] != 3:
        raise ValueError(f"a reference point cloud is (N, 3), got {tuple(pts.shape)}")
    if device is not None:
        pts = pts.to(device)
    pts = pts.float() if extrinsic is None else extrinsic.apply(pts)
    u, v, z = project_points(pts, camera)
    height, width = camera.height, camera.width
    col, row = torch.round(u), torch.round(v)
    inside = (torch.isfinite(z) & (z > 0) & (col >= 0) & (col <= width - 1)
              & (row >= 0) & (row <= height - 1))
    u, v, z = u[inside], v[inside], z[inside]
    pixel = (row[inside] * width + col[inside]).long()
    nearest = torch.full((height * width,), torch.inf, dtype=z.dtype, device=z.device)
    nearest.scatter_reduce_(0, pixel, z, reduce="amin")
    keep = z <= nearest[pixel]
    return ReferenceSamples(u[keep], v[keep], z[keep], (height, width))
