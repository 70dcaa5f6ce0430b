"""The scene description: a closed rectangular room with boxes, spheres and cylinders.

World frame: x, y horizontal, z up, metres; the floor is z = 0 and the room spans
[0, size_x] x [0, size_y] x [0, height]. Every object stands on the floor. Everything is drawn
from one seed so a world is reproducible from its number alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dpt_ros.synthetic.classes import BOX, CYLINDER, SPHERE

HELD_OUT_SEED = 1_000_000  # world seeds >= this are never trained on (evaluation, demo, tests)


@dataclass(frozen=True)
class Box:
    """Upright box on the floor: centre (x, y), half extents, yaw about z (radians)."""

    x: float
    y: float
    half: tuple[float, float, float]
    yaw: float
    color: tuple[float, float, float]
    label: int = BOX

    @property
    def radius(self) -> float:
        return float(np.hypot(self.half[0], self.half[1]))

    @property
    def top(self) -> float:
        return 2.0 * self.half[2]


@dataclass(frozen=True)
class Sphere:
    """Sphere resting on the floor (centre height = radius)."""

    x: float
    y: float
    r: float
    color: tuple[float, float, float]
    label: int = SPHERE

    @property
    def radius(self) -> float:
        return self.r

    @property
    def top(self) -> float:
        return 2.0 * self.r


@dataclass(frozen=True)
class Cylinder:
    """Upright capped cylinder on the floor."""

    x: float
    y: float
    r: float
    h: float
    color: tuple[float, float, float]
    label: int = CYLINDER

    @property
    def radius(self) -> float:
        return self.r

    @property
    def top(self) -> float:
        return self.h


Shape = Box | Sphere | Cylinder


@dataclass(frozen=True)
class Room:
    size_x: float
    size_y: float
    height: float
    wall_color: tuple[float, float, float]
    floor_color: tuple[float, float, float]
    ceiling_color: tuple[float, float, float]


@dataclass(frozen=True)
class World:
    """One procedural room and its objects; `seed` names it."""

    seed: int
    room: Room
    objects: tuple[Shape, ...] = field(default_factory=tuple)
    path_radii: tuple[float, float] = (1.0, 1.0)

    @property
    def light(self) -> np.ndarray:
        """A point light just under the ceiling centre (used for shading)."""
        r = self.room
        return np.array([0.5 * r.size_x, 0.5 * r.size_y, r.height - 0.2], dtype=np.float32)

    def surface_distance(self, points: np.ndarray) -> np.ndarray:
        """Unsigned distance (m) from world points (N, 3) to the nearest scene surface."""
        p = np.asarray(points, dtype=np.float64)
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        r = self.room
        best = np.minimum.reduce(
            [np.abs(x), np.abs(r.size_x - x), np.abs(y), np.abs(r.size_y - y), np.abs(z),
             np.abs(r.height - z)]
        )
        for obj in self.objects:
            best = np.minimum(best, _object_distance(obj, x, y, z))
        return best


def _object_distance(obj: Shape, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Unsigned distance to one object's surface (exact for all three shapes)."""
    dx, dy = x - obj.x, y - obj.y
    if isinstance(obj, Sphere):
        return np.abs(np.sqrt(dx**2 + dy**2 + (z - obj.r) ** 2) - obj.r)
    if isinstance(obj, Cylinder):
        q = np.stack([np.sqrt(dx**2 + dy**2) - obj.r, np.abs(z - obj.h / 2) - obj.h / 2], -1)
        return np.abs(_sdf_from_q(q))
    c, s = np.cos(obj.yaw), np.sin(obj.yaw)
    lx, ly = c * dx + s * dy, -s * dx + c * dy
    q = np.stack([np.abs(lx), np.abs(ly), np.abs(z - obj.half[2])], -1) - np.asarray(obj.half)
    return np.abs(_sdf_from_q(q))


def _sdf_from_q(q: np.ndarray) -> np.ndarray:
    """Signed distance of a centred box/cylinder given |p| - extent per axis."""
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    inside = np.minimum(q.max(axis=-1), 0.0)
    return outside + inside


def _color(rng: np.random.Generator, lo: float = 0.25, hi: float = 0.95) -> tuple[float, ...]:
    return tuple(float(v) for v in rng.uniform(lo, hi, 3))


def make_world(seed: int, max_objects: int = 9, balanced: bool = False) -> World:
    """Draw a room and 4..max_objects objects that keep clear of the camera path.

    `balanced` (training-time variety): the object kinds take turns (box, sphere, cylinder
    from a random start), a rejected placement retries the same kind, and at least 6 objects
    are drawn. Without it boxes are the rarest class by construction (their larger footprint
    is rejected more often), which is why a model trained on the default worlds alone never
    learns them. The default (False) draws exactly the worlds it always drew for a seed.
    """
    rng = np.random.default_rng(seed)
    sx, sy = rng.uniform(5.0, 9.0), rng.uniform(5.0, 9.0)
    wall_base = rng.uniform(0.55, 0.9)
    room = Room(
        size_x=float(sx),
        size_y=float(sy),
        height=float(rng.uniform(2.6, 3.2)),
        wall_color=tuple(float(v) for v in np.clip(wall_base + rng.uniform(-0.15, 0.1, 3), 0, 1)),
        floor_color=_color(rng, 0.3, 0.7),
        ceiling_color=tuple(float(v) for v in rng.uniform(0.85, 0.98, 3)),
    )
    radii = (0.28 * sx, 0.28 * sy)
    theta = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    path = np.stack([sx / 2 + radii[0] * np.cos(theta), sy / 2 + radii[1] * np.sin(theta)], -1)
    objects: list[Shape] = []
    n_target = int(rng.integers(6 if balanced else 4, max_objects + 1))
    first_kind = int(rng.integers(0, 3)) if balanced else 0
    for _ in range(200):
        if len(objects) >= n_target:
            break
        kind = (first_kind + len(objects)) % 3 if balanced else None
        obj = _random_object(rng, sx, sy, kind)
        centre = np.array([obj.x, obj.y])
        if np.min(np.linalg.norm(path - centre, axis=1)) < obj.radius + 0.7:
            continue
        if any(np.hypot(o.x - obj.x, o.y - obj.y) < o.radius + obj.radius + 0.1 for o in objects):
            continue
        objects.append(obj)
    return World(seed=seed, room=room, objects=tuple(objects), path_radii=radii)


def _random_object(rng: np.random.Generator, sx: float, sy: float,
                   kind: int | None = None) -> Shape:
    """One object of `kind` (0 box, 1 sphere, 2 cylinder; None = drawn from `rng`)."""
    if kind is None:
        kind = rng.integers(0, 3)
    color = _color(rng)
    if kind == 0:
        half = (float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.2, 0.6)),
                float(rng.uniform(0.2, 0.8)))
        m = np.hypot(half[0], half[1]) + 0.05
        return Box(float(rng.uniform(m, sx - m)), float(rng.uniform(m, sy - m)), half,
                   float(rng.uniform(0, np.pi)), color)
    if kind == 1:
        r = float(rng.uniform(0.2, 0.6))
        return Sphere(float(rng.uniform(r, sx - r)), float(rng.uniform(r, sy - r)), r, color)
    r = float(rng.uniform(0.12, 0.45))
    return Cylinder(float(rng.uniform(r, sx - r)), float(rng.uniform(r, sy - r)), r,
                    float(rng.uniform(0.5, 2.0)), color)
