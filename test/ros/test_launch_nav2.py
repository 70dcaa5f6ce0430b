"""config/nav2_obstacles.yaml under the real launch service (issue 19, "Done when"): it loads
(`ros2 launch dpt_ros dpt.launch.py params_file:=.../nav2_obstacles.yaml`, the shipped
synthetic checkpoints swapped in by the launch arguments, as a user would on a robot without
the Hub) and the cloud it publishes carries only obstacle classes: no floor, no ceiling,
one point per 5 cm voxel, no rgb field."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _launch_util import add_executable, install_share, launch_env, start_launch
from _node_util import ROOT, Peer, camera_info_msg, domain_id, image_msg, ros_env

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from dpt_ros.synthetic.classes import CEILING, FLOOR  # noqa: E402
from dpt_ros.synthetic.render import render_path_frame  # noqa: E402

WEIGHTS = ROOT / "dpt_ros" / "weights"


def test_nav2_config_in_the_real_launch_publishes_obstacles_only(tmp_path, monkeypatch):
    pytest.importorskip("launch_ros")
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    monkeypatch.chdir(ROOT)
    prefix = tmp_path / "install"
    share = install_share(prefix)
    add_executable(prefix, "dpt_ros", "dpt_node", None)
    peer = Peer(domain_id("launch-nav2"))
    args = {"params_file": str(share / "config" / "nav2_obstacles.yaml"),
            "depth_model": str(WEIGHTS / "synthetic-depth"),
            "segmentation_model": str(WEIGHTS / "synthetic-seg"), "device": "cpu",
            "image": "/camera/image_raw", "camera_info": "/camera/camera_info"}
    points = peer.collect(PointCloud2, "/dpt_node/points")
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = peer.publisher(Image, "/camera/image_raw", reliable)
    info_pub = peer.publisher(CameraInfo, "/camera/camera_info", reliable)
    frame = render_path_frame(seed=1000291, index=5, width=256, height=192)
    i = frame.intrinsics
    proc = start_launch(share / "launch" / "dpt.launch.py", args,
                        launch_env(ros_env(peer.domain), prefix), tmp_path / "launch.log")
    try:
        sec, deadline = 30, time.monotonic() + 120
        while not points.msgs and time.monotonic() < deadline and proc.alive():
            info_pub.publish(camera_info_msg(i.fx, i.fy, i.cx, i.cy, 256, 192, (sec, 0), "cam"))
            image_pub.publish(image_msg(frame.rgb, "rgb8", (sec, 0), "cam"))
            sec += 1
            time.sleep(0.5)
        assert points.msgs, proc.log_path.read_text()
        cloud = points.msgs[-1]
        offsets = {f.name: f.offset for f in cloud.fields}
        assert set(offsets) == {"x", "y", "z", "label"} and cloud.height == 1
        data = np.frombuffer(bytes(cloud.data), np.uint8).reshape(-1, cloud.point_step)
        labels = np.ascontiguousarray(data[:, offsets["label"]:offsets["label"] + 4]).view(
            np.uint32).ravel()
        assert labels.size > 0 and not np.isin(labels, [FLOOR, CEILING]).any()
    finally:
        code = proc.stop(timeout=20)
        peer.close()
    log = proc.log_path.read_text()
    assert code == 0, log
    assert "[dpt_node-1]: process has finished cleanly" in log, log
