"""Simulated metric sensors in the synthetic world, registered exactly to the camera: a
low-resolution time-of-flight depth camera and a multi-ring LiDAR. Both measure the world's
exact geometry (the renderer's / ray-caster's hits), then add what real ones add; each
capture is reproducible from its seed.

- `ToFCamera`: shares the camera's optical centre and field of view at its own resolution
  (default 160 x 120), its pixel centres on the camera's by (u + 0.5) * s - 0.5
  (`Intrinsics.scaled`). Holes beyond its range and on dark surfaces (too little light comes
  back), flying pixels at depth edges (a mix of the two surfaces, the classic ToF outlier)
  or holes there, noise proportional to depth; optionally only a random fraction of pixels
  per frame (`sparsity`: dot-pattern sensors, sparse stereo / SLAM depth). Metres, float32,
  NaN = no measurement.
- `Lidar`: rings at evenly spaced elevations, a fixed azimuth step over 360 degrees,
  Gaussian range noise, min/max range; points in its own frame (x forward, y left, z up),
  mounted on the camera by a known extrinsic (camera <- sensor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dpt_ros.core.alignment.reference import Extrinsic
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.synthetic import raycast
from dpt_ros.synthetic.camera_path import Pose
from dpt_ros.synthetic.render import Renderer
from dpt_ros.synthetic.world import World

Seed = int | Sequence[int]
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class ToFSpec:
    width: int = 160
    height: int = 120
    min_range: float = 0.2  # m
    max_range: float = 4.0
    noise: float = 0.01  # sigma relative to depth
    dark: float = 0.15  # image luminance (0..1) below which nothing comes back
    edge_jump: float = 0.05  # relative depth step to a 4-neighbour that makes an edge pixel
    flying: float = 0.5  # fraction of edge pixels with a mixed value (the rest are holes)
    sparsity: float = 1.0  # fraction of pixels that return anything, drawn per frame


@dataclass
class ToFFrame:
    depth: np.ndarray  # (h, w) float32 metres, NaN = no measurement
    truth: np.ndarray  # (h, w) float32 exact Z-depth at the ToF pixel centres
    intrinsics: Intrinsics  # of the ToF image (the camera's, scaled)
    flying: np.ndarray  # (h, w) bool: pixels that carry a mixed (outlier) value


class ToFCamera:
    """A time-of-flight camera registered to `camera` (same optical frame)."""

    def __init__(self, camera: Intrinsics, spec: ToFSpec | None = None) -> None:
        self.spec = spec or ToFSpec()
        self.intrinsics = camera.scaled(self.spec.width, self.spec.height)
        self._renderer = Renderer(self.intrinsics)

    def capture(self, world: World, pose: Pose, seed: Seed) -> ToFFrame:
        s = self.spec
        rng = np.random.default_rng(seed)
        frame = self._renderer.render(world, pose)
        truth = frame.depth
        luminance = (frame.rgb.astype(np.float32) @ LUMA) / 255.0
        neighbour = _largest_jump_neighbour(truth)
        edge = np.abs(neighbour - truth) > s.edge_jump * truth
        flying = edge & (rng.random(truth.shape) < s.flying)
        mix = rng.random(truth.shape).astype(np.float32)
        measured = np.where(flying, mix * truth + (1 - mix) * neighbour, truth)
        measured = measured * (1 + s.noise * rng.standard_normal(truth.shape)).astype(np.float32)
        hole = ((truth < s.min_range) | (truth > s.max_range) | (luminance < s.dark)
                | (edge & ~flying))
        if s.sparsity < 1.0:
            hole |= rng.random(truth.shape) >= s.sparsity
        depth = np.where(hole, np.float32(np.nan), measured).astype(np.float32)
        return ToFFrame(depth, truth, self.intrinsics, flying & ~hole)


def _largest_jump_neighbour(depth: np.ndarray) -> np.ndarray:
    """Per pixel, the 4-neighbour depth farthest from its own (itself at the border)."""
    padded = np.pad(depth, 1, mode="edge")
    neighbours = np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2],
                           padded[1:-1, 2:]])
    pick = np.abs(neighbours - depth).argmax(0)
    return np.take_along_axis(neighbours, pick[None], 0)[0]


def to_millimetres(depth: np.ndarray) -> np.ndarray:
    """Metres (NaN = none) → the 16UC1 millimetres depth drivers publish (0 = none)."""
    mm = np.where(np.isfinite(depth), np.round(depth * 1000.0), 0.0)
    return np.clip(mm, 0, 65535).astype(np.uint16)


# camera <- LiDAR: sensor 10 cm above and 5 cm behind the camera, x forward / y left / z up
# (the REP 103 body convention) while the camera is x right / y down / z forward.
DEFAULT_LIDAR_EXTRINSIC = Extrinsic.from_list([0.0, -0.10, -0.05, 0.5, -0.5, 0.5, 0.5])


@dataclass(frozen=True)
class LidarSpec:
    """Default: a 32-ring, +-22.5 deg, 1024-column sensor (Ouster OS1-32-like), whose
    vertical field covers most of a 70 deg camera's; `LidarSpec(16, (-15, 15), 0.4)` is a
    VLP-16."""

    rings: int = 32
    elevation_deg: tuple[float, float] = (-22.5, 22.5)  # lowest and highest ring
    azimuth_step_deg: float = 360 / 1024
    min_range: float = 0.3  # m
    max_range: float = 30.0
    range_noise: float = 0.02  # m, sigma
    extrinsic: Extrinsic = field(default_factory=lambda: DEFAULT_LIDAR_EXTRINSIC)


@dataclass
class LidarScan:
    points: np.ndarray  # (N, 3) float32 in the sensor frame
    ring: np.ndarray  # (N,) int16 ring index, 0 = lowest
    extrinsic: Extrinsic  # camera <- sensor
    truth_range: np.ndarray  # (N,) float32 exact range along each returned beam


class Lidar:
    """A spinning multi-ring LiDAR mounted on the camera by `spec.extrinsic`."""

    def __init__(self, spec: LidarSpec | None = None) -> None:
        self.spec = s = spec or LidarSpec()
        lo, hi = (math.radians(v) for v in s.elevation_deg)
        elevation = np.linspace(lo, hi, s.rings) if s.rings > 1 else np.array([lo])
        columns = round(360.0 / s.azimuth_step_deg)
        azimuth = np.linspace(0.0, 2 * math.pi, columns, endpoint=False)
        el, az = np.meshgrid(elevation, azimuth, indexing="ij")
        self._dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)],
                              -1).reshape(-1, 3)
        self._ring = np.repeat(np.arange(s.rings, dtype=np.int16), len(azimuth))

    def capture(self, world: World, pose: Pose, seed: Seed) -> LidarScan:
        s = self.spec
        rng = np.random.default_rng(seed)
        cam_from_sensor = s.extrinsic.rotation()
        world_dirs = self._dirs @ (pose.rotation @ cam_from_sensor).T
        origin = pose.to_world(np.asarray(s.extrinsic.translation)[None])[0].astype(np.float32)
        dx, dy, dz = (world_dirs[:, i].astype(np.float32) for i in range(3))
        t, _ = raycast.room(origin, dx, dy, dz, world.room)
        for obj in world.objects:
            t = np.minimum(t, raycast.intersect(origin, dx, dy, dz, obj))
        measured = t + s.range_noise * rng.standard_normal(t.shape).astype(np.float32)
        keep = (t >= s.min_range) & (t <= s.max_range) & np.isfinite(t)
        points = (self._dirs[keep] * measured[keep, None]).astype(np.float32)
        return LidarScan(points, self._ring[keep], s.extrinsic, t[keep].astype(np.float32))
