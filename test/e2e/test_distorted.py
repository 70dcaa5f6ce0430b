"""End to end over real DDS with a raw camera that has a lens: synthetic_camera (plumb_bob,
rendered exactly through the lens, camera_info after its image) → dpt_node (shipped
weights). Its point cloud must be as close to the true scene surfaces as the pinhole camera's
on the same world and path — with the model fed the rectified image (the default), since it
was trained on pinhole pictures; fed the raw image it is worse. And the cloud's rays are the
lens's: the exact ground-truth depth along the node's rays lands on the surfaces, along
straight pinhole rays (what ignoring D does) it does not."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from _synthetic_util import (  # noqa: E402
    ROOT,
    WEIGHTS,
    Collector,
    cloud_xyz,
    image_array,
    pose_matrix,
    processes,
    ros_env,
    unique_domain,
)
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from dpt_ros.synthetic import make_world, path_pose  # noqa: E402

pytestmark = pytest.mark.ros

SEED = 1_000_007  # a held-out world
W, H, RATE = 320, 240, 2.0
# frames 4-10 s into the path (every process is up by then); a busy node drops frames (newest
# first), so each run keeps the ones it got and the runs are scored on those they share. With
# both cores busy a run kept 5-6 of 8 frames and three runs shared only 3 of 4-8 s: 12
# frames leave at least MIN_SHARED in common on a loaded machine.
INDICES = set(range(8, 20))
MIN_SHARED = 4
TOPICS = {"/cam/pose": PoseStamped, "/cam/camera_info": CameraInfo, "/cam/depth_gt": Image,
          "/dpt_node/depth/image": Image, "/dpt_node/points": PointCloud2}


def run_chain(domain: int, lens: list[str], node_params: tuple[str, ...] = ()
              ) -> dict[int, dict]:
    """The frames of INDICES this run published (by index, from the published pose: the
    runs score the very same views), once the camera is past them."""
    collector = Collector(domain, TOPICS)
    camera = ["-m", "dpt_ros.ros.synthetic_camera", "--ros-args", "-r", "__ns:=/cam",
              "-p", f"seed:={SEED}", "-p", f"rate:={RATE}", "-p", f"width:={W}",
              "-p", f"height:={H}", "-p", "camera_info_delay_ms:=5.0", *lens]
    node = ["-m", "dpt_ros.ros.node", "--ros-args", "--params-file",
            str(ROOT / "config" / "dpt.yaml"),
            "-p", f"depth_model:={WEIGHTS / 'synthetic-depth'}", "-p", "device:=cpu",
            "-r", "image:=/cam/image_raw", "-r", "camera_info:=/cam/camera_info",
            *node_params]
    world = make_world(SEED)
    # every frame the camera can send before the deadline: a later frame must not pass for
    # one of INDICES because the path comes back near it (seen once on a loaded CI machine)
    path = np.array([path_pose(world, k / RATE).position for k in range(int(160 * RATE))])
    by_index: dict[int, dict] = {}
    try:
        with processes([node, camera], ros_env(domain)) as procs:
            deadline = time.monotonic() + 150
            newest = -1
            while not (INDICES <= by_index.keys()
                       or (newest > max(INDICES) and len(by_index) >= MIN_SHARED)):
                assert time.monotonic() < deadline, f"frames {sorted(by_index)} only"
                assert all(p.poll() is None for p in procs), "a process exited"
                for f in collector.complete(set(TOPICS)):
                    _, pos = pose_matrix(f["/cam/pose"])
                    dist = np.linalg.norm(path - pos, axis=1)
                    k = int(np.argmin(dist))
                    if dist[k] < 1e-4:  # exactly that frame's pose
                        newest = max(newest, k)
                        if k in INDICES:
                            by_index.setdefault(k, f)
                time.sleep(0.2)
    finally:
        collector.close()
    return by_index


def points_error(world, f: dict, xyz: np.ndarray) -> np.ndarray:
    ok = np.isfinite(xyz).all(-1)
    # the lens camera's points are NaN where its view exceeds the rectified image the model
    # sees (camera.rectify_for_model; ~24 % for this barrel lens at P = K)
    assert ok.mean() > (0.7 if any(f["/cam/camera_info"].d) else 0.95)
    rot, pos = pose_matrix(f["/cam/pose"])
    return world.surface_distance((xyz[ok] @ rot.T + pos)[::5])


def surface_error(frames: dict[int, dict], indices: set[int]) -> float:
    """Median distance of the published points to the true surfaces."""
    world = make_world(SEED)
    return float(np.median(np.concatenate([
        points_error(world, f, cloud_xyz(f["/dpt_node/points"]).reshape(H, W, 3))
        for k, f in frames.items() if k in indices])))


def ray_errors(frames: dict[int, dict]) -> tuple[float, float]:
    """99th percentile distance to the surfaces of the ground-truth depth back-projected
    along the node's rays (x/z, y/z of its points) and along straight pinhole rays."""
    world = make_world(SEED)
    along_node, along_straight = [], []
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    for f in frames.values():
        xyz = cloud_xyz(f["/dpt_node/points"]).reshape(H, W, 3).astype(np.float64)
        gt = image_array(f["/cam/depth_gt"]).astype(np.float64)
        rays = xyz[..., :2] / xyz[..., 2:]
        along_node.append(points_error(world, f, np.dstack([rays * gt[..., None], gt])))
        k = f["/cam/camera_info"].k
        straight = np.stack([(u - k[2]) / k[0] * gt, (v - k[5]) / k[4] * gt, gt], -1)
        along_straight.append(points_error(world, f, straight))
    return (float(np.percentile(np.concatenate(along_node), 99)),
            float(np.percentile(np.concatenate(along_straight), 99)))


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[int, dict]]:
    return {
        "pinhole": run_chain(unique_domain(31), []),
        "plumb_bob": run_chain(unique_domain(32), ["-p", "distortion_model:=plumb_bob"]),
        "raw to the model": run_chain(unique_domain(33), ["-p", "distortion_model:=plumb_bob"],
                                      ("-p", "camera.rectify_for_model:=false")),
    }


def test_distorted_camera_points_are_as_good_as_the_pinhole_camera(runs) -> None:
    info = next(iter(runs["plumb_bob"].values()))["/cam/camera_info"]
    assert info.distortion_model == "plumb_bob" and any(info.d)
    same = set.intersection(*(set(frames) for frames in runs.values()))
    assert len(same) >= MIN_SHARED, {name: sorted(frames) for name, frames in runs.items()}
    pinhole = surface_error(runs["pinhole"], same)
    lens = surface_error(runs["plumb_bob"], same)
    raw_fed = surface_error(runs["raw to the model"], same)
    print(f"point-to-surface median over frames {sorted(same)}: pinhole camera "
          f"{pinhole:.3f} m, plumb_bob camera {lens:.3f} m (the model fed the raw image: "
          f"{raw_fed:.3f} m)")
    assert lens <= pinhole  # issue 10: no worse than the pinhole camera (measured 0.057 vs 0.059)
    assert raw_fed > lens  # the model trained on pinhole pictures needs the rectified one


def test_the_cloud_rays_are_the_lens_rays(runs) -> None:
    node_rays, straight_rays = ray_errors(runs["plumb_bob"])
    print(f"ground-truth depth along the node's rays: p99 {node_rays * 1000:.2f} mm off the "
          f"surfaces; along straight pinhole rays: {straight_rays * 1000:.0f} mm")
    assert node_rays < 2e-3 and straight_rays > 0.05
