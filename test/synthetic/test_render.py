"""Renderer against closed-form geometry: planes, spheres, boxes, cylinders at known poses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _lens_textbook import distort

from dpt_ros.core.camera.geometry import Intrinsics, ray_directions
from dpt_ros.synthetic import (
    Box,
    Cylinder,
    Pose,
    Renderer,
    Room,
    Sphere,
    World,
    make_world,
    path_pose,
    render_path_frame,
)
from dpt_ros.synthetic.classes import BOX, CEILING, CYLINDER, FLOOR, SPHERE, WALL

GREY = (0.5, 0.5, 0.5)
ROOM = Room(10.0, 8.0, 3.0, GREY, GREY, GREY)
K = Intrinsics.from_hfov(160, 120, 70.0)


def _pixel_rays(k: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    u, v = np.meshgrid(np.arange(k.width), np.arange(k.height))
    return (u - k.cx) / k.fx, (v - k.cy) / k.fy


def _render(objects: tuple = (), pose: Pose | None = None, k: Intrinsics = K):
    world = World(seed=0, room=ROOM, objects=objects)
    return Renderer(k).render(world, pose or Pose.look((2.0, 4.0, 1.5), 0.0, 0.0))


@pytest.mark.parametrize("pitch_deg", [0.0, 15.0, 30.0])
def test_floor_depth_is_closed_form(pitch_deg: float) -> None:
    # Camera at height h pitched down θ: world up in the optical frame is (0, -cos θ, -sin θ),
    # so the floor z = 0 has Z = h / (cos θ · y_n + sin θ) for every floor pixel.
    h, th = 1.5, math.radians(pitch_deg)
    f = _render(pose=Pose.look((5.0, 4.0, h), 0.7, th))
    _, yn = _pixel_rays(K)
    floor = f.labels == FLOOR
    assert floor.mean() > 0.15
    expected = h / (math.cos(th) * yn + math.sin(th))
    np.testing.assert_allclose(f.depth[floor], expected[floor], rtol=1e-4)


def test_fronto_parallel_wall_has_constant_z_depth() -> None:
    # Z-depth (not ray length) of a wall facing the camera is its distance everywhere.
    f = _render(pose=Pose.look((2.5, 4.0, 1.5), 0.0, 0.0))
    wall = f.labels == WALL
    centre = wall[40:80, 40:120]
    assert centre.all()
    np.testing.assert_allclose(f.depth[40:80, 40:120], 10.0 - 2.5, rtol=1e-5)
    assert (f.labels[:5] == CEILING).any() and (f.labels[-5:] == FLOOR).any()


def test_sphere_depth_and_silhouette() -> None:
    r, dist = 0.5, 3.0
    f = _render((Sphere(2.0 + dist, 4.0, r, GREY),), Pose.look((2.0, 4.0, r), 0.0, 0.0))
    xn, yn = _pixel_rays(K)
    # Camera frame: centre at (0, 0, D); ray t·(x, y, 1) hits at the smaller quadratic root.
    a = xn**2 + yn**2 + 1
    disc = dist**2 - a * (dist**2 - r**2)
    hit = disc > 0
    t = (dist - np.sqrt(np.where(hit, disc, 0))) / a
    inner = hit & (disc > 0.05 * dist**2)  # away from the silhouette's anti-aliasing band
    assert (f.labels[inner] == SPHERE).all()
    np.testing.assert_allclose(f.depth[inner], t[inner], rtol=1e-4)
    far_outside = ~hit & (xn**2 + yn**2 > (r / dist) ** 2 * 1.5)
    assert not (f.labels[far_outside] == SPHERE).any()
    assert f.depth[int(K.cy), int(K.cx)] == pytest.approx(dist - r, rel=1e-3)


def test_box_face_and_yaw() -> None:
    half = (0.4, 0.6, 0.75)
    f = _render((Box(5.0, 4.0, half, 0.0, GREY),), Pose.look((2.0, 4.0, 0.75), 0.0, 0.0))
    face = f.labels == BOX
    np.testing.assert_allclose(f.depth[face], 5.0 - 0.4 - 2.0, rtol=1e-5)
    # Width on screen: ±half_y at Z = 2.6 → |x_n| ≤ 0.6 / 2.6.
    xn, _ = _pixel_rays(K)
    row = face[int(K.cy)]
    assert np.all(np.abs(xn[int(K.cy)][row]) <= 0.6 / 2.6 + 1e-6)
    assert row.sum() >= int(2 * 0.6 / 2.6 * K.fx) - 1
    # Rotated by 90°, the box shows its other face: half_x becomes the screen half width.
    g = _render((Box(5.0, 4.0, half, math.pi / 2, GREY),), Pose.look((2.0, 4.0, 0.75), 0.0, 0.0))
    np.testing.assert_allclose(g.depth[g.labels == BOX], 5.0 - 0.6 - 2.0, rtol=1e-5)


def test_cylinder_side_and_cap() -> None:
    r, h = 0.3, 1.0
    side = _render((Cylinder(5.0, 4.0, r, h, GREY),), Pose.look((2.0, 4.0, 0.5), 0.0, 0.0))
    assert side.labels[int(K.cy), int(K.cx)] == CYLINDER
    assert side.depth[int(K.cy), int(K.cx)] == pytest.approx(3.0 - r, rel=1e-3)
    # Straight down onto the cap from 1.2 m above it: Z = 1.2 on every cap pixel.
    down = Pose.look((5.0, 4.0, h + 1.2), 0.0, math.pi / 2 - 1e-6)
    top = _render((Cylinder(5.0, 4.0, r, h, GREY),), down)
    cap = top.labels == CYLINDER
    assert cap.sum() > 50
    np.testing.assert_allclose(top.depth[cap], 1.2, rtol=1e-4)


def test_ground_truth_points_lie_on_surfaces() -> None:
    f = render_path_frame(seed=5, index=37, width=160, height=120)
    world = make_world(5)
    xn, yn = _pixel_rays(f.intrinsics)
    pts = np.stack([xn * f.depth, yn * f.depth, f.depth], -1).reshape(-1, 3)
    dist = world.surface_distance(f.pose.to_world(pts))
    assert np.percentile(dist, 99) < 1e-3


def test_deterministic_per_seed() -> None:
    a = render_path_frame(seed=11, index=3, width=96, height=72)
    b = render_path_frame(seed=11, index=3, width=96, height=72)
    c = render_path_frame(seed=12, index=3, width=96, height=72)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.rgb, c.rgb)
    assert make_world(11) == make_world(11)


def test_frames_have_variety_and_valid_ranges() -> None:
    world = make_world(3)
    renderer = Renderer(K)
    seen: set[int] = set()
    for t in np.linspace(0, 40, 8, endpoint=False):
        f = renderer.render(world, path_pose(world, float(t)))
        assert f.rgb.dtype == np.uint8 and f.depth.dtype == np.float32
        assert np.isfinite(f.depth).all() and (f.depth > 0).all()
        assert f.depth.max() < math.hypot(ROOM.size_x, ROOM.size_y, ROOM.height) + 6
        seen |= set(np.unique(f.labels).tolist())
    assert {FLOOR, WALL} <= seen and len(seen) >= 4


def test_quaternion_matches_rotation() -> None:
    pose = path_pose(make_world(2), 7.3)
    x, y, z, w = pose.quaternion()
    rot = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    np.testing.assert_allclose(rot, pose.rotation, atol=1e-9)


LENSES = {
    "plumb_bob": (-0.3, 0.1, 0.001, -0.001, -0.015),
    "equidistant": (-0.02, 0.015, -0.008, 0.002),
}


def _textbook_pixels(cam: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Optical-frame points → pixels through OpenCV's lens formulas (test/_lens_textbook)."""
    xd, yd = distort(cam[:, 0] / cam[:, 2], cam[:, 1] / cam[:, 2], k.distortion_model, k.d)
    return np.stack([k.fx * xd + k.cx, k.fy * yd + k.cy], -1)


@pytest.mark.parametrize("model", list(LENSES))
def test_distorted_frames_are_rendered_through_the_lens(model: str) -> None:
    """Every pixel's depth is the Z of a surface point that projects through the lens (the
    textbook formulas above) onto that very pixel."""
    world = make_world(5)
    renderer = Renderer.from_hfov(160, 120, 70.0, model, LENSES[model])
    f = renderer.render(world, path_pose(world, 3.7))
    k = f.intrinsics
    assert k.is_distorted and np.isfinite(f.depth).all()
    x, y = np.broadcast_arrays(*ray_directions(k))
    cam = np.stack([x * f.depth, y * f.depth, f.depth], -1).reshape(-1, 3)
    assert np.percentile(world.surface_distance(f.pose.to_world(cam)), 99) < 1e-3
    uv = _textbook_pixels(cam, k)
    u, v = np.meshgrid(np.arange(160), np.arange(120))
    assert np.abs(uv[:, 0] - u.ravel()).max() < 1e-6
    assert np.abs(uv[:, 1] - v.ravel()).max() < 1e-6
    pinhole = Renderer.from_hfov(160, 120, 70.0).render(world, f.pose)
    assert f.depth[60, 80] == pytest.approx(pinhole.depth[60, 80], rel=1e-3)  # centre agrees
    assert not np.array_equal(f.labels, pinhole.labels)  # the rest is bent by the lens


@pytest.mark.parametrize("model", list(LENSES))
def test_object_rectangles_through_a_lens_cut_nothing(model: str, monkeypatch) -> None:
    """The per-object screen rectangle (edges sampled through the lens) must hold every
    pixel of the object: rendering with full-frame rectangles gives the same picture."""
    world = make_world(21)
    renderer = Renderer.from_hfov(160, 120, 80.0, model, LENSES[model])
    frames = [renderer.render(world, path_pose(world, t)) for t in (0.0, 9.0, 21.0)]
    full = (slice(0, 120), slice(0, 160))
    monkeypatch.setattr(Renderer, "_screen_rect", lambda self, obj, pose: full)
    for f in frames:
        ref = renderer.render(world, f.pose)
        assert np.array_equal(f.labels, ref.labels) and np.array_equal(f.rgb, ref.rgb)
