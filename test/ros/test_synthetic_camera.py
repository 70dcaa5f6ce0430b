"""The synthetic_camera node as a real subprocess over real DDS: topics, encodings, shared
headers, camera_info, and pixels equal to the renderer's frame for the published pose."""

from __future__ import annotations

import math

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from _synthetic_util import (  # noqa: E402
    Collector,
    image_array,
    output_of,
    pose_matrix,
    processes,
    ros_env,
    unique_domain,
)
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from dpt_ros.core.camera.geometry import Intrinsics  # noqa: E402
from dpt_ros.ros.synthetic_camera import TYPICAL_LENSES  # noqa: E402
from dpt_ros.synthetic import Renderer, make_world, path_pose  # noqa: E402

pytestmark = pytest.mark.ros

TOPICS = {"/cam/image_raw": Image, "/cam/camera_info": CameraInfo, "/cam/depth_gt": Image,
          "/cam/labels_gt": Image, "/cam/pose": PoseStamped}
SEED, RATE, W, H, HFOV = 7, 20.0, 96, 72, 80.0
FRAMES = 200  # 10 s: room for DDS discovery on a loaded machine (CI once matched at 2.9 s)


def test_camera_publishes_consistent_ground_truth() -> None:
    domain = unique_domain(11)
    collector = Collector(domain, TOPICS)
    cmd = ["-m", "dpt_ros.ros.synthetic_camera", "--ros-args", "-r", "__ns:=/cam",
           "-p", f"seed:={SEED}", "-p", f"rate:={RATE}", "-p", f"width:={W}",
           "-p", f"height:={H}", "-p", f"hfov:={HFOV}", "-p", f"frames:={FRAMES}"]
    try:
        with processes([cmd], ros_env(domain)) as procs:
            frames = collector.wait_for(set(TOPICS), 3, 30.0, procs)
            procs[0].wait(timeout=30)  # FRAMES at 20 Hz, then it exits by itself
            assert procs[0].returncode == 0, output_of(procs[0])
    finally:
        collector.close()
    world = make_world(SEED)
    renderer = Renderer(Intrinsics.from_hfov(W, H, HFOV))
    times = [path_pose(world, k / RATE) for k in range(FRAMES)]
    for frame in frames[:3]:
        img, depth, labels = (frame[f"/cam/{t}"] for t in ("image_raw", "depth_gt", "labels_gt"))
        info, pose = frame["/cam/camera_info"], frame["/cam/pose"]
        assert (img.encoding, depth.encoding, labels.encoding) == ("rgb8", "32FC1", "mono8")
        for msg in (img, depth, labels, info):
            assert msg.header.frame_id == "camera_optical_frame"
            assert (msg.width, msg.height) == (W, H)
        assert pose.header.frame_id == "world"
        f = W / 2 / math.tan(math.radians(HFOV) / 2)
        np.testing.assert_allclose(info.k, [f, 0, (W - 1) / 2, 0, f, (H - 1) / 2, 0, 0, 1])
        rot, pos = pose_matrix(pose)
        k = int(np.argmin([np.linalg.norm(p.position - pos) for p in times]))
        np.testing.assert_allclose(rot, times[k].rotation, atol=1e-6)
        truth = renderer.render(world, times[k])
        assert np.array_equal(image_array(img), truth.rgb)
        assert np.array_equal(image_array(depth), truth.depth)
        assert np.array_equal(image_array(labels), truth.labels)


def test_camera_behaves_like_a_driver_lens_info_after_image_and_mode_switches() -> None:
    """A raw camera with a plumb_bob lens, its camera_info 30 ms after the image, switching
    between 96x72 and 64x48 every 2 frames: pixels are the lens renderer's, each camera_info
    describes its own image (D included) and arrives after it."""
    domain = unique_domain(12)
    collector = Collector(domain, TOPICS)
    cmd = ["-m", "dpt_ros.ros.synthetic_camera", "--ros-args", "-r", "__ns:=/cam",
           "-p", f"seed:={SEED}", "-p", "rate:=10.0", "-p", f"width:={W}",
           "-p", f"height:={H}", "-p", f"hfov:={HFOV}", "-p", "frames:=40",
           "-p", "distortion_model:=plumb_bob", "-p", "camera_info_delay_ms:=30.0",
           "-p", "switch_every:=2", "-p", "alt_width:=64", "-p", "alt_height:=48"]
    try:
        with processes([cmd], ros_env(domain)) as procs:
            frames = collector.wait_for(set(TOPICS), 8, 40.0, [])
            procs[0].wait(timeout=30)
            assert procs[0].returncode == 0, output_of(procs[0])
    finally:
        collector.close()
    world = make_world(SEED)
    d = TYPICAL_LENSES["plumb_bob"]
    renderers = {(w, h): Renderer.from_hfov(w, h, HFOV, "plumb_bob", d)
                 for w, h in ((W, H), (64, 48))}
    times = [path_pose(world, k / 10.0) for k in range(40)]
    sizes = set()
    for frame in frames:
        img, info, pose = (frame[f"/cam/{t}"] for t in ("image_raw", "camera_info", "pose"))
        size = (img.width, img.height)
        sizes.add(size)
        assert (info.width, info.height) == size
        assert info.distortion_model == "plumb_bob" and list(info.d) == list(d)
        stamp = (img.header.stamp.sec, img.header.stamp.nanosec)
        lag = (collector.arrivals[(stamp, "/cam/camera_info")]
               - collector.arrivals[(stamp, "/cam/image_raw")])
        assert lag > 0.015, lag  # the image first, its camera_info ~30 ms later
        _, pos = pose_matrix(pose)
        k = int(np.argmin([np.linalg.norm(p.position - pos) for p in times]))
        truth = renderers[size].render(world, times[k])
        assert np.array_equal(image_array(img), truth.rgb)
        np.testing.assert_allclose(info.k, [truth.intrinsics.fx, 0, truth.intrinsics.cx, 0,
                                            truth.intrinsics.fy, truth.intrinsics.cy, 0, 0, 1])
    assert sizes == {(W, H), (64, 48)}
