"""Shards and the stateful alignment: depth references logged after their images, a scale
that drifts, gaps without references (the temporal filter carries the alignment), cut into
2.5 s shards of a 10 s bag. With the default margins (5 s before: the filter's memory), the
fleet's bag equals the single pass's: the same frames get metric depth, the same depth to
float rounding of the filter's forgotten past (e^-16 of its weight at the margin)."""

from __future__ import annotations

import numpy as np
from _fleet_util import NEEDS_RAY, params_file, run_fleet, single_pass
from _offline_util import (
    FRAME_ID,
    HEIGHT,
    WIDTH,
    camera_info_msg,
    checkpoints,
    frame_rgb,
    image_msg,
    log_time,
    read_bag,
    stamp_of,
)

pytestmark = NEEDS_RAY
IMAGE, INFO, DEPTH = "/cam/image_raw", "/cam/camera_info", "/rgbd/depth"
FRAMES = 100  # 10 s at 10 Hz


def _write(path) -> None:
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import Image

    from dpt_ros.core.camera.geometry import Intrinsics
    from dpt_ros.core.pipeline.pipeline import Frame, Pipeline

    camera = Intrinsics(35.0, 36.0, 19.0, 14.5, WIDTH, HEIGHT)
    pipe = Pipeline(depth_model=str(checkpoints()["relative"]), device="cpu")
    ts = get_typestore(Stores.ROS2_JAZZY)
    with Writer(path, version=8) as writer:
        img = writer.add_connection(IMAGE, "sensor_msgs/msg/Image", typestore=ts)
        info = writer.add_connection(INFO, "sensor_msgs/msg/CameraInfo", typestore=ts)
        dep = writer.add_connection(DEPTH, "sensor_msgs/msg/Image", typestore=ts)
        for i in range(FRAMES):
            t = log_time(i)
            rgb = frame_rgb(i)
            writer.write(img, t, serialize_message(image_msg(rgb, i)))
            writer.write(info, t + 2_000_000, serialize_message(camera_info_msg(i)))
            if i % 2 or 30 <= i < 45:  # every other frame; none for 1.5 s
                continue
            rel = pipe.process([Frame(rgb, camera)], {"relative"})[0].relative
            scale = 2.0 * (1 + 0.04 * np.sin(i / 6))  # drifts: the filter's state matters
            inv = scale * rel.astype(np.float64) + 0.5
            depth = np.where(inv > 0, 1 / np.where(inv > 0, inv, 1), np.nan)
            msg = Image()
            msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_of(i)
            msg.header.frame_id = FRAME_ID
            msg.height, msg.width, msg.encoding, msg.step = HEIGHT, WIDTH, "32FC1", WIDTH * 4
            msg.data = depth.astype("<f4").tobytes()
            writer.write(dep, t + 5_000_000, serialize_message(msg))


def test_aligned_shards_equal_single_pass(ray_cluster, tmp_path):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    bags = tmp_path / "bags"
    bags.mkdir()
    _write(bags / "aligned")
    args = ["--depth-model", str(checkpoints()["relative"]), "--params",
            str(params_file(tmp_path)), "--batch-size", "1", "--alignment-mode",
            "scale_shift", "--depth-reference-topic", DEPTH, "--topics-out", "depth/image"]
    report, err = run_fleet([bags, tmp_path / "out"], [*args, "--shard-seconds", "2.5"])
    assert report.exit_code == 0, err
    assert report.count("ok") == 4
    units = sorted((r["start"], r["unit"]) for r in report.rows)
    assert len(units) == 4
    single_pass(bags / "aligned", tmp_path / "single", args)

    got, want = read_bag(tmp_path / "out" / "aligned"), read_bag(tmp_path / "single")
    assert [r[:3] for r in got] == [r[:3] for r in want]  # same messages, same log times
    depth = [(a, b) for a, b in zip(got, want) if a[0] == "/dpt/depth/image"]
    assert len(depth) > FRAMES * 0.8  # metric depth on most frames (aligned or carried)
    for (_, _, t, raw_a), (_, _, _, raw_b) in depth:
        a, b = (np.frombuffer(bytes(deserialize_message(r, Image).data), "<f4")
                for r in (raw_a, raw_b))
        np.testing.assert_allclose(a, b, rtol=1e-5, err_msg=str(t))
    others = [(a, b) for a, b in zip(got, want) if a[0] != "/dpt/depth/image"]
    assert all(a == b for a, b in others)  # the copies, byte for byte
