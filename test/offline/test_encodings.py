"""The offline tools read the encodings as the node does, with the same `input.*` parameters
from the node's YAML: `dpt-ros bag` on yuv422 / Bayer / 12-bit mono16 frames (colours of the
written points equal the independent references) and an oversized frame skipped as bad input;
`dpt-ros predict` on a 12-bit PNG scaled by `input.bits`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _color_reference import bayer_reference, packed, yuv_reference
from _node_util import cloud_array, unpack_rgb
from _offline_util import (
    FRAME_ID,
    HEIGHT,
    IMAGE_TOPIC,
    INFO_TOPIC,
    WIDTH,
    camera_info_msg,
    checkpoints,
    frame_rgb,
    log_time,
    read_bag,
    stamp_of,
)
from PIL import Image as PILImage

from dpt_ros.core.pipeline.pipeline import Frame, Pipeline
from dpt_ros.offline.cli import main
from dpt_ros.offline.exitcodes import ExitCode

pytest.importorskip("rclpy")
RNG = np.random.default_rng(21)


def raw_msg(rows: np.ndarray, encoding: str, i: int, width: int = WIDTH, height: int = HEIGHT,
            big_endian: bool = False):
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_of(i)
    msg.header.frame_id = FRAME_ID
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian = int(big_endian)
    msg.step = rows.shape[1] if rows.size else 0
    msg.data = rows.tobytes()
    return msg


def sensor_cases() -> list[tuple[str, np.ndarray, np.ndarray | None, int]]:
    """(encoding, sensor rows, reference RGB, tolerance) per frame; None = must be skipped."""
    rgb = frame_rgb(3)
    quads = np.stack([RNG.integers(60, 200, (HEIGHT, WIDTH // 2)), rgb[:, 0::2, 1],
                      RNG.integers(60, 200, (HEIGHT, WIDTH // 2)), rgb[:, 1::2, 1]], -1)
    uyvy = packed(quads.astype(np.uint8), "yuv422")
    yuyv = packed(quads.astype(np.uint8), "yuv422_yuy2")
    bayer = rgb[..., 1].copy()
    twelve = RNG.integers(0, 4096, (HEIGHT, WIDTH)).astype(np.uint16)
    grey = np.floor(twelve / 4095 * 255 + 0.5).astype(np.uint8)
    return [
        ("yuv422", uyvy, yuv_reference(uyvy, "yuv422"), 1),
        ("yuv422_yuy2", yuyv, yuv_reference(yuyv, "yuv422_yuy2"), 1),
        ("bayer_bggr8", bayer, bayer_reference(bayer, "bggr"), 0),
        ("bayer_grbg8", bayer, bayer_reference(bayer, "grbg"), 0),
        ("mono16", twelve.astype(">u2").view(np.uint8).reshape(HEIGHT, -1),
         np.repeat(grey[..., None], 3, -1), 0),
        ("oversized", np.zeros((0, 0), np.uint8), None, 0),
    ]


def write_sensor_bag(path: Path, cases) -> None:
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_JAZZY)
    with Writer(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        img = writer.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        info = writer.add_connection(INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=ts)
        for i, (encoding, rows, _, _) in enumerate(cases):
            writer.write(info, log_time(i) - 1000, serialize_message(camera_info_msg(i)))
            if encoding == "oversized":  # a header claiming 4 GP, no data
                msg = raw_msg(rows, "mono8", i, width=65536, height=65536)
            else:
                msg = raw_msg(rows, encoding, i, big_endian=encoding == "mono16")
            writer.write(img, log_time(i), serialize_message(msg))


def test_bag_decodes_sensor_encodings_with_the_node_parameters(tmp_path, capsys):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import PointCloud2

    cases = sensor_cases()
    src, dst = tmp_path / "in", tmp_path / "out"
    write_sensor_bag(src, cases)
    params = tmp_path / "p.yaml"
    params.write_text("dpt_node:\n  ros__parameters:\n"
                      f"    depth_model: '{checkpoints()['metric']}'\n    device: cpu\n"
                      "    input:\n      bits: 12\n      max_pixels: 1000000\n")
    code = main(["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC, "--camera-info-topic",
                 INFO_TOPIC, "--params", str(params), "--topics-out", "points", "--batch-size",
                 "4"])
    err = capsys.readouterr().err
    assert code == ExitCode.SKIPPED, err
    assert "1 x /cam/image_raw: bad input (size)" in err and "processed 5/6" in err
    clouds = [deserialize_message(raw, PointCloud2) for topic, _, _, raw in read_bag(dst)
              if topic == "/dpt/points"]
    assert len(clouds) == 5
    for cloud, (encoding, _, reference, tolerance) in zip(clouds, cases):
        decoded = unpack_rgb(cloud_array(cloud)["rgb"])
        assert np.abs(decoded.astype(int) - reference).max() <= tolerance, encoding


def test_predict_scales_16bit_png_by_input_bits(tmp_path, capsys):
    twelve = RNG.integers(0, 4096, (HEIGHT, WIDTH)).astype(np.uint16)
    PILImage.fromarray(twelve).save(tmp_path / "deep.png")
    assert PILImage.open(tmp_path / "deep.png").mode.startswith("I")
    params = tmp_path / "p.yaml"
    params.write_text("dpt_node:\n  ros__parameters:\n    input:\n      bits: 12\n")
    out = tmp_path / "out"
    c = checkpoints()
    code = main(["predict", str(tmp_path / "deep.png"), "--out", str(out), "--params",
                 str(params), "--depth-model", str(c["metric"]), "--device", "cpu",
                 "--depth-format", "npy", "--outputs", "depth"])
    assert code == ExitCode.OK, capsys.readouterr().err
    grey = np.floor(twelve / 4095 * 255 + 0.5).astype(np.uint8)
    expected = Pipeline(str(c["metric"]), device="cpu").process(
        [Frame(np.repeat(grey[..., None], 3, -1))], {"depth"})[0].depth
    np.testing.assert_allclose(np.load(out / "deep_depth.npy"), expected, rtol=1e-6)
