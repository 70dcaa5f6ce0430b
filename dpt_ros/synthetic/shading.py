"""Procedural textures (metric, so texture gradients carry scale) and Lambert shading from a
ceiling light: the monocular cues a depth network can learn from."""

from __future__ import annotations

import numpy as np

from dpt_ros.synthetic.world import Box, Cylinder, Shape, Sphere, World

AMBIENT = np.float32(0.38)
DIFFUSE = np.float32(0.8)

# Room plane index → (inward normal, texture kind)
PLANE_NORMALS = np.array(
    [[0, 0, 1], [0, 0, -1], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=np.float32
)


def _hash(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cheap deterministic per-cell noise in [0, 1)."""
    v = np.sin(a * np.float32(12.9898) + b * np.float32(78.233)) * np.float32(43758.547)
    return v - np.floor(v)


def _checker(a: np.ndarray, b: np.ndarray, size: float) -> np.ndarray:
    return ((np.floor(a / size) + np.floor(b / size)) % 2).astype(np.float32)


def _lines(a: np.ndarray, period: float, width: float) -> np.ndarray:
    """1 on thin lines every `period` metres, else 0."""
    f = a / period
    return ((f - np.floor(f)) * period < width).astype(np.float32)


def floor_texture(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ix, iy = np.floor(x / 0.5), np.floor(y / 0.5)
    tile = 0.78 + 0.22 * _checker(x, y, 0.5) + 0.08 * (_hash(ix, iy) - 0.5)
    grout = np.maximum(_lines(x, 0.5, 0.02), _lines(y, 0.5, 0.02))
    return tile * (1 - 0.45 * grout)


def wall_texture(z: np.ndarray, along: np.ndarray) -> np.ndarray:
    stripes = 0.88 + 0.12 * _checker(along, np.zeros_like(along), 0.25)
    base = np.where(z < 0.12, np.float32(0.45), np.float32(1.0))
    rail = 1 - 0.3 * ((z > 0.9) & (z < 0.95)).astype(np.float32)
    return stripes * base * rail


def ceiling_texture(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    grid = np.maximum(_lines(x, 0.6, 0.03), _lines(y, 0.6, 0.03))
    return 1 - 0.25 * grid


def object_normal_and_texture(obj: Shape, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward normals (N, 3) and albedo modulation (N,) at hit points on one object."""
    dx, dy = p[:, 0] - obj.x, p[:, 1] - obj.y
    z = p[:, 2]
    if isinstance(obj, Sphere):
        n = np.stack([dx, dy, z - obj.r], 1) / np.float32(obj.r)
        lon = np.arctan2(dy, dx)
        lat = np.arcsin(np.clip(n[:, 2], -1, 1))
        tex = 0.7 + 0.3 * _checker(lon, lat, np.pi / 6)
        return n, tex
    if isinstance(obj, Cylinder):
        rho = np.maximum(np.sqrt(dx * dx + dy * dy), 1e-6)
        on_top = z > obj.h - 1e-3
        on_bottom = z < 1e-3
        side = ~(on_top | on_bottom)
        n = np.stack([dx / rho * side, dy / rho * side,
                      on_top.astype(np.float32) - on_bottom.astype(np.float32)], 1)
        ang = np.arctan2(dy, dx)
        tex = 0.72 + 0.28 * _checker(ang, z, np.pi / 4) * side
        tex = tex * (1 - 0.3 * _lines(z, 0.25, 0.03) * side)
        return n.astype(np.float32), tex
    assert isinstance(obj, Box)
    c, s = np.float32(np.cos(obj.yaw)), np.float32(np.sin(obj.yaw))
    local = np.stack([c * dx + s * dy, -s * dx + c * dy, z - obj.half[2]], 1)
    scaled = np.abs(local) / np.asarray(obj.half, dtype=np.float32)
    axis = np.argmax(scaled, 1)
    sign = np.sign(local[np.arange(len(local)), axis]).astype(np.float32)
    nl = np.zeros_like(local)
    nl[np.arange(len(local)), axis] = sign
    n = np.stack([c * nl[:, 0] - s * nl[:, 1], s * nl[:, 0] + c * nl[:, 1], nl[:, 2]], 1)
    # Checker on the two in-face coordinates: sum of all three works on every face.
    q = np.floor(local / 0.15).sum(1)
    edge = (np.sort(scaled, 1)[:, 1] > 0.93).astype(np.float32)
    tex = (0.72 + 0.28 * (q % 2)) * (1 - 0.35 * edge)
    return n, tex.astype(np.float32)


def light_intensity(world: World, px: np.ndarray, py: np.ndarray, pz: np.ndarray,
                    nx: np.ndarray, ny: np.ndarray, nz: np.ndarray) -> np.ndarray:
    """Lambert term of a point light with soft distance falloff, plus ambient."""
    lx, ly, lz = world.light
    tx, ty, tz = lx - px, ly - py, lz - pz
    dist2 = tx * tx + ty * ty + tz * tz
    cos = np.maximum((nx * tx + ny * ty + nz * tz) / np.sqrt(dist2), 0)
    return AMBIENT + DIFFUSE * cos / (1 + dist2 / np.float32(25.0))


def contact_shadow(world: World, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Darkening of floor points near object footprints (ambient-occlusion cue)."""
    ao = np.ones(len(x), dtype=np.float32)
    for obj in world.objects:
        d = np.sqrt((x - obj.x) ** 2 + (y - obj.y) ** 2) - np.float32(obj.radius)
        ao *= 1 - 0.45 * np.exp(-np.maximum(d, 0) / np.float32(0.15))
    return ao
