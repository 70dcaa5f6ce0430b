"""The renderer: one frame of a `World` → RGB, Z-depth (metres) and class ids.

Depth is the Z-depth along the optical axis (REP 118: metres, float32), exactly as a depth
camera or `dpt_node`'s `~/depth/image` reports it. The camera may be a pinhole or a raw camera with
lens distortion (plumb_bob, rational_polynomial, equidistant): each pixel's ray is the
camera model's own (`core.camera.geometry.ray_directions`), so the image is rendered exactly
through the lens. Objects are only intersected inside the image rectangle their bounding
box projects to (through the lens, edges sampled), which keeps a 640x480 frame fast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dpt_ros.core.camera.geometry import Intrinsics, project, ray_directions
from dpt_ros.synthetic import raycast, shading
from dpt_ros.synthetic.camera_path import Pose, path_pose
from dpt_ros.synthetic.classes import CEILING, FLOOR, WALL
from dpt_ros.synthetic.world import Shape, World, make_world

PLANE_CLASS = np.array([FLOOR, CEILING, WALL, WALL, WALL, WALL], dtype=np.uint8)


@dataclass
class SyntheticFrame:
    """One rendered frame with its exact ground truth."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 Z-depth in metres
    labels: np.ndarray  # (H, W) uint8 class ids (see classes.CLASS_NAMES)
    intrinsics: Intrinsics
    pose: Pose


class Renderer:
    """Ray-caster for a fixed image size; the per-pixel camera rays are computed once."""

    def __init__(self, intrinsics: Intrinsics):
        self.intrinsics = intrinsics
        x, y = np.broadcast_arrays(*ray_directions(intrinsics))
        # a pixel with no ray (beyond a strong lens's fold) looks straight ahead: it gets a
        # picture, and its ground truth is marked invalid below
        self._valid = np.isfinite(x) & np.isfinite(y)
        self._xn = np.where(self._valid, x, 0.0).astype(np.float32)
        self._yn = np.where(self._valid, y, 0.0).astype(np.float32)

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float = 70.0,
                  distortion_model: str = "", d: tuple[float, ...] = ()) -> Renderer:
        """Square pixels, centred principal point, focal length from the horizontal FOV (of
        the pinhole part), optionally with a lens."""
        pinhole = Intrinsics.from_hfov(width, height, hfov_deg)
        return cls(replace(pinhole, distortion_model=distortion_model, d=tuple(d)))

    def render(self, world: World, pose: Pose) -> SyntheticFrame:
        """Cast one ray per pixel centre; t of the nearest hit is the Z-depth."""
        r = pose.rotation.astype(np.float32)
        o = pose.position.astype(np.float32)
        dx = r[0, 0] * self._xn + r[0, 1] * self._yn + r[0, 2]
        dy = r[1, 0] * self._xn + r[1, 1] * self._yn + r[1, 2]
        dz = r[2, 0] * self._xn + r[2, 1] * self._yn + r[2, 2]
        t, plane = raycast.room(o, dx, dy, dz, world.room)
        surface = plane.copy()  # 0..5 room planes, 6 + i object i
        rects: list[tuple[int, slice, slice]] = []
        for i, obj in enumerate(world.objects):
            rect = self._screen_rect(obj, pose)
            if rect is None:
                continue
            ti = raycast.intersect(o, dx[rect], dy[rect], dz[rect], obj)
            closer = ti < t[rect]
            t[rect] = np.where(closer, ti, t[rect])
            surface[rect] = np.where(closer, np.int16(6 + i), surface[rect])
            rects.append((i, *rect))
        rgb, labels = self._shade(world, o, dx, dy, dz, t, surface, rects)
        if not self._valid.all():
            t = np.where(self._valid, t, np.float32(np.nan))
        return SyntheticFrame(rgb, t, labels, self.intrinsics, pose)

    def _screen_rect(self, obj: Shape, pose: Pose) -> tuple[slice, slice] | None:
        """Image rows/cols the object's bounding box can cover (None when behind)."""
        k = self.intrinsics
        rad = obj.radius
        xs = np.array([obj.x - rad, obj.x + rad])
        ys = np.array([obj.y - rad, obj.y + rad])
        zs = np.array([0.0, obj.top])
        corners = np.stack(np.meshgrid(xs, ys, zs), -1).reshape(-1, 3)
        if k.is_distorted:  # edges curve through a lens: sample them, not just the corners
            corners = _box_edge_samples(corners)
        cam = (corners - pose.position) @ pose.rotation
        z = cam[:, 2]
        if np.all(z <= 1e-3):
            return None
        if np.any(z <= 1e-3):
            return slice(0, k.height), slice(0, k.width)
        uv = project(cam, k)
        if not np.isfinite(uv).all():
            return slice(0, k.height), slice(0, k.width)
        u, v = uv[:, 0], uv[:, 1]
        u0, u1 = max(int(np.floor(u.min())) - 1, 0), min(int(np.ceil(u.max())) + 2, k.width)
        v0, v1 = max(int(np.floor(v.min())) - 1, 0), min(int(np.ceil(v.max())) + 2, k.height)
        if u0 >= u1 or v0 >= v1:
            return None
        return slice(v0, v1), slice(u0, u1)

    def _shade(self, world: World, o: np.ndarray, dx: np.ndarray, dy: np.ndarray,
               dz: np.ndarray, t: np.ndarray, surface: np.ndarray,
               rects: list[tuple[int, slice, slice]]) -> tuple[np.ndarray, np.ndarray]:
        """Albedo x texture x light per surface; class ids from the surface index. Works on
        per-component planes with per-surface lookup tables (cheaper than (N, 3) gathers)."""
        px, py, pz = o[0] + t * dx, o[1] + t * dy, o[2] + t * dz
        n_surf = 6 + len(world.objects)
        rm = world.room
        lut_cls = np.concatenate([PLANE_CLASS, [ob.label for ob in world.objects]])
        lut_rgb = np.array([rm.floor_color, rm.ceiling_color] + [rm.wall_color] * 4
                           + [ob.color for ob in world.objects], dtype=np.float32)
        lut_n = np.zeros((n_surf, 3), dtype=np.float32)
        lut_n[:6] = shading.PLANE_NORMALS
        labels = lut_cls.astype(np.uint8)[surface]
        nx, ny, nz = (lut_n[:, c][surface] for c in range(3))
        tex = np.ones(t.shape, dtype=np.float32)
        fl = surface == 0
        tex[fl] = shading.floor_texture(px[fl], py[fl]) * shading.contact_shadow(
            world, px[fl], py[fl])
        ce = surface == 1
        tex[ce] = shading.ceiling_texture(px[ce], py[ce])
        wa = (surface >= 2) & (surface < 6)
        along = np.where(surface[wa] < 4, py[wa], px[wa])
        tex[wa] = shading.wall_texture(pz[wa], along)
        for i, rows, cols in rects:
            sel = surface[rows, cols] == 6 + i
            if not sel.any():
                continue
            p = np.stack([px[rows, cols][sel], py[rows, cols][sel], pz[rows, cols][sel]], 1)
            n, tx = shading.object_normal_and_texture(world.objects[i], p)
            for plane, values in ((nx, n[:, 0]), (ny, n[:, 1]), (nz, n[:, 2]), (tex, tx)):
                view = plane[rows, cols]
                view[sel] = values
        light = shading.light_intensity(world, px, py, pz, nx, ny, nz) * tex
        rgb = np.empty((*t.shape, 3), dtype=np.uint8)
        for c in range(3):
            channel = lut_rgb[:, c][surface] * light
            np.clip(channel * 255 + 0.5, 0, 255, out=channel)
            rgb[..., c] = channel
        return rgb, labels


def _box_edge_samples(corners: np.ndarray, n: int = 16) -> np.ndarray:
    """Points along the 12 edges of the axis-aligned box spanned by 8 `corners`."""
    lo, hi = corners.min(0), corners.max(0)
    t = np.linspace(0.0, 1.0, n)
    samples = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        for a in (lo[others[0]], hi[others[0]]):
            for b in (lo[others[1]], hi[others[1]]):
                edge = np.empty((n, 3))
                edge[:, axis] = lo[axis] + t * (hi[axis] - lo[axis])
                edge[:, others[0]], edge[:, others[1]] = a, b
                samples.append(edge)
    return np.concatenate(samples)


def render_path_frame(seed: int, index: int, width: int = 640, height: int = 480,
                      hfov_deg: float = 70.0, rate: float = 10.0) -> SyntheticFrame:
    """Frame `index` of world `seed` as the synthetic camera publishes it at `rate` Hz."""
    world = make_world(seed)
    return Renderer.from_hfov(width, height, hfov_deg).render(world, path_pose(world, index / rate))
