"""The costmap filters through the real node over DDS: dpt_node with the shipped synthetic
checkpoints (labels floor, wall, ceiling, box, sphere, cylinder) and config/nav2_obstacles.yaml,
a synthetic-world frame in, `~/points` out; runtime changes of the filter parameters, unknown
class names rejected at run time and at start-up with the list of known labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _node_util import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    NodeProcess,
    Peer,
    camera_info_msg,
    domain_id,
    image_msg,
    node_command,
    ros_env,
    send_until,
    wait_ready,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from dpt_ros.synthetic.classes import CEILING, FLOOR, WALL  # noqa: E402
from dpt_ros.synthetic.render import render_path_frame  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "dpt_ros" / "weights"
NAV2 = ROOT / "config" / "nav2_obstacles.yaml"
H, W = 192, 256
SYNTHETIC = {"depth_model": str(WEIGHTS / "synthetic-depth"),
             "segmentation_model": str(WEIGHTS / "synthetic-seg"), "device": "cpu"}


@pytest.fixture(scope="module")
def scene():
    return render_path_frame(seed=1000291, index=5, width=W, height=H)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """dpt_node on the Nav2 example file, the synthetic checkpoints swapped in (as the launch
    file's depth_model:= / segmentation_model:= arguments do)."""
    peer = Peer(domain_id("cloud-filters"))
    log = tmp_path_factory.mktemp("cloud_filters") / "node.log"
    proc = NodeProcess(node_command(SYNTHETIC, params_file=NAV2), ros_env(peer.domain), log)
    try:
        wait_ready(peer, proc)
        yield peer, proc
    finally:
        proc.stop()
        peer.close()


def _fields(cloud) -> dict[str, int]:
    return {f.name: f.offset for f in cloud.fields}


def _points(cloud) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 3) xyz and (N,) labels of an unorganised or organised cloud (NaN points kept)."""
    data = np.frombuffer(bytes(cloud.data), np.uint8).reshape(-1, cloud.point_step)
    xyz = np.ascontiguousarray(data[:, :12]).view(np.float32).reshape(-1, 3)
    off = _fields(cloud).get("label")
    labels = None if off is None else np.ascontiguousarray(
        data[:, off:off + 4]).view(np.uint32).reshape(-1)
    return xyz, labels


def _send(peer, scene, stamp, collector, timeout=60.0):
    intr = scene.intrinsics
    image = image_msg(scene.rgb, "rgb8", stamp, "cam_optical")
    info = camera_info_msg(intr.fx, intr.fy, intr.cx, intr.cy, W, H, stamp, "cam_optical")
    pubs = getattr(peer, "_filter_pubs", None)
    if pubs is None:
        pubs = peer._filter_pubs = (peer.publisher(Image, IMAGE_TOPIC),
                                    peer.publisher(CameraInfo, INFO_TOPIC))
    return send_until([(pubs[0], image), (pubs[1], info)], [collector], stamp,
                      timeout=timeout)[0]


def test_nav2_config_cloud_carries_only_obstacle_classes(node, scene):
    peer, _ = node
    points = peer.collect(PointCloud2, "/dpt_node/points")
    cloud = _send(peer, scene, (10, 0), points)
    assert cloud.height == 1 and cloud.is_dense and cloud.width > 0
    assert set(_fields(cloud)) == {"x", "y", "z", "label"}  # color: false
    xyz, labels = _points(cloud)
    assert np.isfinite(xyz).all()
    assert not np.isin(labels, [FLOOR, CEILING]).any()
    dist = np.linalg.norm(xyz, axis=1)
    assert dist.min() >= 0.3 - 0.05 and dist.max() <= 5.0 + 0.05  # centroids of in-range points
    # one point per 5 cm voxel: no two centroids in the same cell of the cloud's grid
    cells = np.floor((xyz.astype(np.float64) - (xyz.min(0) - 0.025)) / 0.05).astype(np.int64)
    assert len(np.unique(cells, axis=0)) == len(cells)
    peer.node.destroy_subscription(points.sub)


def test_runtime_changes_and_unknown_class_rejected(node, scene):
    peer, proc = node
    results = peer.set_parameters({"pointcloud.include_classes": ["tabel"]})
    assert not results[0].successful
    assert "unknown class 'tabel'" in results[0].reason and "3 box" in results[0].reason
    results = peer.set_parameters({"pointcloud.edge_threshold": -1.0})
    assert not results[0].successful
    # no voxels, no edge filter, stride 1: the organised cloud is back (an empty list would
    # reach the node as a BYTE_ARRAY from rclpy's Parameter([]): exclude the ceiling only)
    results = peer.set_parameters({"pointcloud.voxel_size": 0.0, "pointcloud.edge_threshold": 0.0,
                                   "pointcloud.exclude_classes": ["ceiling"],
                                   "pointcloud.stride": 1,
                                   "pointcloud.min_range": 0.0, "pointcloud.max_range": 0.0})
    assert all(r.successful for r in results), [r.reason for r in results]
    points = peer.collect(PointCloud2, "/dpt_node/points")
    cloud = _send(peer, scene, (11, 0), points)
    assert (cloud.height, cloud.width) == (H, W) and not cloud.is_dense
    _, labels = _points(cloud)
    assert np.isin(labels, [FLOOR, WALL]).any()  # the floor is back
    # only walls, by id: every finite point is a wall
    results = peer.set_parameters({"pointcloud.include_classes": [str(WALL)]})
    assert results[0].successful, results[0].reason
    points.clear()
    cloud = _send(peer, scene, (12, 0), points)
    xyz, labels = _points(cloud)
    finite = np.isfinite(xyz).all(1)
    assert finite.any() and (labels[finite] == WALL).all()
    assert proc.alive()


def test_unknown_class_stops_the_start_up(tmp_path):
    peer = Peer(domain_id("cloud-filters-bad"))
    try:
        cmd = node_command({**SYNTHETIC, "pointcloud.exclude_classes": ["floor", "carpet"]},
                           params_file=NAV2)
        proc = NodeProcess(cmd, ros_env(peer.domain), tmp_path / "node.log")
        proc.proc.wait(120)
        log = proc.log()
        assert proc.proc.returncode == 1, log
        assert "[FATAL]" in log and "unknown class 'carpet'" in log and "0 floor" in log, log
        assert "Traceback" not in log, log
    finally:
        peer.close()
