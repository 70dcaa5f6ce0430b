"""Vectorised ray/surface intersections. Rays are o + t * d with the camera-frame z
component of d equal to 1, so the hit parameter t *is* the Z-depth along the optical axis.
Every function returns t (inf where the ray misses) for arrays of ray directions."""

from __future__ import annotations

import numpy as np

from dpt_ros.synthetic.world import Box, Cylinder, Room, Sphere

EPS = 1e-4
INF = np.float32(np.inf)


def _safe(d: np.ndarray) -> np.ndarray:
    """Direction component with exact zeros nudged, so divisions never give NaN."""
    return np.where(np.abs(d) < 1e-9, np.float32(1e-9), d)


def room(o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, r: Room
         ) -> tuple[np.ndarray, np.ndarray]:
    """Inside a closed box room every ray hits: (t, plane index) with planes
    0 floor, 1 ceiling, 2 wall x=0, 3 wall x=size_x, 4 wall y=0, 5 wall y=size_y."""
    dx, dy, dz = _safe(dx), _safe(dy), _safe(dz)
    tx = np.where(dx > 0, r.size_x - o[0], -o[0]) / dx
    ty = np.where(dy > 0, r.size_y - o[1], -o[1]) / dy
    tz = np.where(dz > 0, r.height - o[2], -o[2]) / dz
    plane = np.where(dz > 0, 1, 0).astype(np.int16)
    t = tz
    use_x = tx < t
    t = np.where(use_x, tx, t)
    plane = np.where(use_x, np.where(dx > 0, 3, 2), plane)
    use_y = ty < t
    t = np.where(use_y, ty, t)
    plane = np.where(use_y, np.where(dy > 0, 5, 4), plane)
    return t.astype(np.float32), plane.astype(np.int16)


def sphere(o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, s: Sphere
           ) -> np.ndarray:
    """Nearest positive root of |o + t d - c|^2 = r^2."""
    ox, oy, oz = o[0] - s.x, o[1] - s.y, o[2] - s.r
    a = dx * dx + dy * dy + dz * dz
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - s.r * s.r
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / a
    return np.where((disc >= 0) & (t > EPS), t, INF).astype(np.float32)


def cylinder(o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, cy: Cylinder
             ) -> np.ndarray:
    """Upright cylinder: side wall (quadratic in x, y) and the two caps."""
    ox, oy = o[0] - cy.x, o[1] - cy.y
    a = _safe(dx * dx + dy * dy)
    b = ox * dx + oy * dy
    c = ox * ox + oy * oy - cy.r * cy.r
    disc = b * b - a * c
    ts = (-b - np.sqrt(np.maximum(disc, 0))) / a
    zs = o[2] + ts * dz
    side = np.where((disc >= 0) & (ts > EPS) & (zs >= 0) & (zs <= cy.h), ts, INF)
    dzs = _safe(dz)
    best = side
    for zc in (cy.h, 0.0):
        tc = (zc - o[2]) / dzs
        hx, hy = ox + tc * dx, oy + tc * dy
        cap = np.where((tc > EPS) & (hx * hx + hy * hy <= cy.r * cy.r), tc, INF)
        best = np.minimum(best, cap)
    return best.astype(np.float32)


def box(o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, b: Box) -> np.ndarray:
    """Slab test in the box's own frame (rotated by -yaw about z)."""
    c, s = np.float32(np.cos(b.yaw)), np.float32(np.sin(b.yaw))
    px, py, pz = o[0] - b.x, o[1] - b.y, o[2] - b.half[2]
    lox, loy = c * px + s * py, -s * px + c * py
    ldx, ldy = _safe(c * dx + s * dy), _safe(-s * dx + c * dy)
    ldz = _safe(dz)
    t_near = np.full(dx.shape, -INF, dtype=np.float32)
    t_far = np.full(dx.shape, INF, dtype=np.float32)
    for oc, dc, h in ((lox, ldx, b.half[0]), (loy, ldy, b.half[1]), (pz, ldz, b.half[2])):
        t1 = (-h - oc) / dc
        t2 = (h - oc) / dc
        np.maximum(t_near, np.minimum(t1, t2), out=t_near)
        np.minimum(t_far, np.maximum(t1, t2), out=t_far)
    return np.where((t_far >= t_near) & (t_near > EPS), t_near, INF).astype(np.float32)


def intersect(o: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, obj
              ) -> np.ndarray:
    """Dispatch on the shape type."""
    if isinstance(obj, Sphere):
        return sphere(o, dx, dy, dz, obj)
    if isinstance(obj, Cylinder):
        return cylinder(o, dx, dy, dz, obj)
    return box(o, dx, dy, dz, obj)
