"""The simulated ToF camera and LiDAR against the synthetic world's exact geometry:
measurements lie on the true surfaces within their noise, holes where the spec says, the ToF
grid registered to the camera by the pixel-centre convention, captures reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from dpt_ros.synthetic import Renderer, make_world, path_pose
from dpt_ros.synthetic.sensors import (
    DEFAULT_LIDAR_EXTRINSIC,
    Lidar,
    LidarSpec,
    ToFCamera,
    ToFSpec,
    to_millimetres,
)

SEED = 1_000_003


@pytest.fixture(scope="module")
def scene():
    world = make_world(SEED)
    renderer = Renderer.from_hfov(640, 480, 70.0)
    return world, renderer, [path_pose(world, t) for t in (0.0, 7.0, 21.0)]


def _backproject(depth: np.ndarray, intr) -> np.ndarray:
    v, u = np.nonzero(np.isfinite(depth))
    z = depth[v, u].astype(np.float64)
    return np.stack([(u - intr.cx) / intr.fx * z, (v - intr.cy) / intr.fy * z, z], 1)


def test_tof_measures_the_true_surfaces_within_its_noise(scene):
    world, renderer, poses = scene
    tof = ToFCamera(renderer.intrinsics)
    spec = tof.spec
    for k, pose in enumerate(poses):
        f = tof.capture(world, pose, (SEED, k))
        assert f.depth.shape == (120, 160) and f.depth.dtype == np.float32
        valid = np.isfinite(f.depth)
        assert valid.mean() > 0.3
        clean = valid & ~f.flying
        rel = f.depth[clean] / f.truth[clean] - 1
        assert np.abs(rel).max() <= 5.5 * spec.noise
        assert np.std(rel) == pytest.approx(spec.noise, rel=0.15)
        # independent of the ToF's own truth: its points lie on the world's surfaces
        cam_points = _backproject(np.where(clean, f.depth, np.nan), f.intrinsics)
        dist = world.surface_distance(pose.to_world(cam_points))
        # a depth error dz moves the point |ray| dz = |p| dz / z along its ray
        bound = 5.5 * spec.noise * np.linalg.norm(cam_points, axis=1) + 1e-3
        assert np.all(dist <= bound)
        # holes: out of range everywhere, dark surfaces; flying pixels sit between surfaces
        assert not valid[(f.truth > spec.max_range) | (f.truth < spec.min_range)].any()
        assert f.flying.sum() > 0
        assert np.median(np.abs(f.depth[f.flying] / f.truth[f.flying] - 1)) > 3 * spec.noise


def test_tof_holes_on_dark_surfaces(scene):
    world, renderer, poses = scene
    spec = ToFSpec(dark=0.3, max_range=100.0, flying=0.0)
    tof = ToFCamera(renderer.intrinsics, spec)
    f = tof.capture(world, poses[0], 0)
    small = Renderer(tof.intrinsics).render(world, poses[0])
    luminance = (small.rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114])) / 255
    assert (luminance < 0.3).any()
    assert not np.isfinite(f.depth[luminance < 0.3]).any()


def test_tof_is_registered_to_the_camera(scene):
    """ToF pixel (i, j) sees the camera image at ((j + 0.5) * 4 - 0.5, (i + 0.5) * 4 - 0.5):
    halfway between camera pixels 4j+1 and 4j+2, so on smooth surfaces its exact depth is
    the mean of those four camera depths (to second order)."""
    world, renderer, poses = scene
    cam = renderer.render(world, poses[1]).depth
    f = ToFCamera(renderer.intrinsics).capture(world, poses[1], 1)
    between = cam.reshape(120, 4, 160, 4)[:, 1:3, :, 1:3].mean(axis=(1, 3))
    spread = cam.reshape(120, 4, 160, 4).max(axis=(1, 3)) - cam.reshape(120, 4, 160, 4).min(
        axis=(1, 3))
    smooth = spread < 0.02 * f.truth
    assert smooth.mean() > 0.8
    err = np.abs(f.truth[smooth] / between[smooth] - 1)
    assert np.median(err) < 2e-6 and np.percentile(err, 99) < 1e-4
    # teeth: without the half-pixel terms (ToF pixel j = camera pixel 4j) it is far off
    naive = np.abs(f.truth[smooth] / cam[::4, ::4][smooth] - 1)
    assert np.median(naive) > 50 * np.median(err)


def test_captures_are_reproducible(scene):
    world, renderer, poses = scene
    tof, lidar = ToFCamera(renderer.intrinsics), Lidar()
    a, b = tof.capture(world, poses[0], (5, 1)), tof.capture(world, poses[0], (5, 1))
    assert np.array_equal(a.depth, b.depth, equal_nan=True)
    c = tof.capture(world, poses[0], (5, 2))
    assert not np.array_equal(a.depth, c.depth, equal_nan=True)
    s1, s2 = lidar.capture(world, poses[0], 3), lidar.capture(world, poses[0], 3)
    assert np.array_equal(s1.points, s2.points)
    mm = to_millimetres(a.depth)
    assert mm.dtype == np.uint16 and np.array_equal(mm == 0, ~np.isfinite(a.depth))


def test_lidar_points_lie_on_the_world_surfaces(scene):
    world, _, poses = scene
    spec = LidarSpec()
    lidar = Lidar(spec)
    for k, pose in enumerate(poses):
        scan = lidar.capture(world, pose, k)
        n_az = round(360 / spec.azimuth_step_deg)
        assert len(scan.points) == spec.rings * n_az  # a closed room: every beam returns
        ext = scan.extrinsic
        cam = scan.points @ ext.rotation().T + np.asarray(ext.translation)
        dist = world.surface_distance(pose.to_world(cam))
        assert dist.max() <= 5.5 * spec.range_noise
        assert np.median(dist) < spec.range_noise
        rng_err = np.linalg.norm(scan.points, axis=1) - scan.truth_range
        assert np.std(rng_err) == pytest.approx(spec.range_noise, rel=0.1)
        elevation = np.degrees(np.arcsin(scan.points[:, 2] / np.linalg.norm(scan.points, axis=1)))
        rings = np.linspace(*spec.elevation_deg, spec.rings)
        assert np.abs(elevation - rings[scan.ring]).max() < 1e-3


def test_lidar_mounting():
    """Default mount: sensor x forward = camera z, y left = camera -x, z up = camera -y,
    10 cm above the camera."""
    rot = DEFAULT_LIDAR_EXTRINSIC.rotation()
    assert np.allclose(rot @ [1, 0, 0], [0, 0, 1]) and np.allclose(rot @ [0, 1, 0], [-1, 0, 0])
    assert np.allclose(rot @ [0, 0, 1], [0, -1, 0])
    assert DEFAULT_LIDAR_EXTRINSIC.translation[1] == pytest.approx(-0.10)
