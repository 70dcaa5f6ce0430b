"""Alignment in the offline tools: `dpt-ros bag` pairs images with depth / point-cloud
references by stamp in bag time and aligns them with the node's Aligner (a reference that is
an exact affine of the relative model's own output comes back as the written depth), and
reports the fit per frame; `dpt-ros predict --reference-dir` fits each image to its own
reference file."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from _offline_util import (
    FRAME_ID,
    HEIGHT,
    IMAGE_TOPIC,
    INFO_TOPIC,
    WIDTH,
    camera_info_msg,
    checkpoints,
    frame_rgb,
    image_msg,
    log_time,
    read_bag,
    stamp_of,
)

pytest.importorskip("rosbags")
pytest.importorskip("rclpy")

from dpt_ros.core.alignment import Extrinsic
from dpt_ros.core.camera.geometry import Intrinsics, backproject
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline
from dpt_ros.offline.cli import main
from dpt_ros.offline.exitcodes import ExitCode
from dpt_ros.offline.predict.writers import depth_to_mm, write_png

DEPTH_TOPIC, POINTS_TOPIC = "/rgbd/depth", "/lidar/points"
CAMERA = Intrinsics(35.0, 36.0, 19.0, 14.5, WIDTH, HEIGHT)  # _offline_util's camera_info
EXTRINSIC = [0.05, -0.1, 0.02, 0.1, -0.2, 0.05, 0.97]  # camera <- lidar
S, T = 2.0, 0.5


def relative(i: int) -> np.ndarray:
    p = Pipeline(depth_model=str(checkpoints()["relative"]), device="cpu")
    return p.process([Frame(frame_rgb(i), CAMERA)], {"relative"})[0].relative


def affine(rel: np.ndarray) -> np.ndarray:
    inv = S * rel.astype(np.float64) + T
    return np.where(inv > 0, 1.0 / np.where(inv > 0, inv, 1.0), np.nan).astype(np.float32)


def _header(msg, i: int, frame_id: str):
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_of(i)
    msg.header.frame_id = frame_id
    return msg


def depth_msg(depth: np.ndarray, i: int, frame_id: str = FRAME_ID):
    from sensor_msgs.msg import Image

    msg = _header(Image(), i, frame_id)
    msg.height, msg.width, msg.encoding, msg.step = HEIGHT, WIDTH, "32FC1", WIDTH * 4
    msg.data = depth.astype("<f4").tobytes()
    return msg


def cloud_msg(depth: np.ndarray, i: int):
    """The depth's points moved into the LiDAR's frame (p = R^T (p_cam - t))."""
    from sensor_msgs.msg import PointCloud2, PointField

    pts = backproject(torch.from_numpy(depth), CAMERA).reshape(-1, 3)
    pts = pts[torch.isfinite(pts).all(-1)]
    ext = Extrinsic.from_list(EXTRINSIC)
    sensor = (pts - torch.tensor(ext.translation).float()) @ torch.from_numpy(
        ext.rotation()).float()
    msg = _header(PointCloud2(), i, "lidar")
    msg.height, msg.width = 1, int(sensor.shape[0])
    msg.fields = [PointField(name=n, offset=4 * k, datatype=7, count=1)
                  for k, n in enumerate("xyz")]
    msg.point_step, msg.row_step = 12, 12 * int(sensor.shape[0])
    msg.data = sensor.numpy().astype("<f4").tobytes()
    return msg


def write_aligned_bag(path, references: dict[int, str], frames: int,
                      depth_frame: str = FRAME_ID) -> None:
    """Images with their camera_info; reference i logged 5 ms after its image (as sensors
    come in), `references` maps a frame to 'depth' or 'points'; depth references have the
    frame_id `depth_frame`."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_JAZZY)
    with Writer(path, version=8) as writer:
        img = writer.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        info = writer.add_connection(INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=ts)
        dep = writer.add_connection(DEPTH_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        pts = writer.add_connection(POINTS_TOPIC, "sensor_msgs/msg/PointCloud2", typestore=ts)
        for i in range(frames):
            t = log_time(i)
            writer.write(info, t - 1000, serialize_message(camera_info_msg(i)))
            writer.write(img, t, serialize_message(image_msg(frame_rgb(i), i)))
            kind = references.get(i)
            if kind == "depth":
                writer.write(dep, t + 5_000_000, serialize_message(depth_msg(affine(
                    relative(i)), i, depth_frame)))
            elif kind == "points":
                writer.write(pts, t + 5_000_000, serialize_message(cloud_msg(affine(
                    relative(i)), i)))


def test_bag_aligns_each_frame_to_its_reference_and_reports_the_fit(tmp_path, capsys):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    src, dst, report = tmp_path / "in", tmp_path / "out", tmp_path / "fit.csv"
    refs = {1: "depth", 2: "depth", 5: "points"}
    write_aligned_bag(src, refs, 7)
    params = tmp_path / "p.yaml"
    params.write_text("/**/dpt_node:\n  ros__parameters:\n    device: cpu\n    alignment:\n"
                      f"      extrinsic: {[float(v) for v in EXTRINSIC]}\n")
    code = main(["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC,
                 "--camera-info-topic", INFO_TOPIC, "--params", str(params),
                 "--depth-model", str(checkpoints()["relative"]),
                 "--alignment-mode", "scale_shift", "--depth-reference-topic", DEPTH_TOPIC,
                 "--points-reference-topic", POINTS_TOPIC, "--alignment-report", str(report),
                 "--batch-size", "3"])
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    assert "alignment: 6/7 frames with a valid alignment, 3 with a reference" in err
    depths = {}
    for topic, _, t, raw in read_bag(dst):
        if topic == "/dpt/depth/image":
            depths[t] = deserialize_message(raw, Image)
    assert log_time(0) not in depths  # before the first reference: no metres
    for i in range(1, 7):  # aligned, or the filtered alignment in between
        got = np.frombuffer(bytes(depths[log_time(i)].data), "<f4").reshape(HEIGHT, WIDTH)
        np.testing.assert_allclose(got, affine(relative(i)), rtol=2e-3, err_msg=str(i))
    rows = list(csv.DictReader(report.open()))
    assert [r["reference"] for r in rows] == ["none", "depth", "depth", "none", "none",
                                              "points", "none"]
    assert [r["valid"] for r in rows] == ["false"] + ["true"] * 6
    for r in rows[1:]:
        assert float(r["scale"]) == pytest.approx(S, rel=2e-3)
        assert float(r["shift"]) == pytest.approx(T, rel=2e-3)
    assert int(rows[5]["inliers"]) > 0.9 * HEIGHT * WIDTH
    assert rows[0]["status"] == "no reference yet"


def test_bag_rejects_a_depth_reference_in_another_frame(tmp_path, capsys):
    """As the node: a depth reference must be registered to the camera; one whose frame_id
    is another frame's is reported (`bad reference`, exit 3) and its frame processed
    without it, so nothing is aligned and no metres are written."""
    src, dst, report = tmp_path / "in", tmp_path / "out", tmp_path / "fit.csv"
    write_aligned_bag(src, {1: "depth", 2: "depth"}, 3, depth_frame="rgbd_depth_optical")
    code = main(["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC,
                 "--camera-info-topic", INFO_TOPIC, "--device", "cpu",
                 "--depth-model", str(checkpoints()["relative"]),
                 "--alignment-mode", "scale_shift", "--depth-reference-topic", DEPTH_TOPIC,
                 "--alignment-report", str(report)])
    err = capsys.readouterr().err
    assert code == ExitCode.SKIPPED, err
    assert (f"2 x {DEPTH_TOPIC}: bad reference: {DEPTH_TOPIC} has frame_id "
            f"'rgbd_depth_optical', the image '{FRAME_ID}'") in err
    assert "alignment: 0/3 frames with a valid alignment, 0 with a reference" in err
    assert not any(topic == "/dpt/depth/image" for topic, _, _, _ in read_bag(dst))
    rows = list(csv.DictReader(report.open()))
    assert [r["reference"] for r in rows] == ["none"] * 3
    assert [r["valid"] for r in rows] == ["false"] * 3


def test_bag_reference_without_alignment_is_a_usage_error(tmp_path, capsys):
    src = tmp_path / "in"
    write_aligned_bag(src, {}, 1)
    code = main(["bag", str(src), str(tmp_path / "out"), "--image-topic", IMAGE_TOPIC,
                 "--depth-model", str(checkpoints()["relative"]), "--device", "cpu",
                 "--depth-reference-topic", DEPTH_TOPIC])
    assert code == ExitCode.USAGE and "alignment.mode" in capsys.readouterr().err


def test_predict_fits_each_image_to_its_reference_file(tmp_path, capsys):
    from PIL import Image as PILImage

    images, refs, out = tmp_path / "img", tmp_path / "ref", tmp_path / "out"
    images.mkdir()
    refs.mkdir()
    for i in range(3):
        PILImage.fromarray(frame_rgb(i)).save(images / f"f{i}.png")
    np.save(refs / "f0.npy", affine(relative(0)))
    write_png(refs / "f1.png", depth_to_mm(affine(relative(1))))  # 16-bit millimetres
    code = main(["predict", str(images), "--out", str(out), "--depth-model",
                 str(checkpoints()["relative"]), "--device", "cpu", "--alignment-mode",
                 "scale_shift", "--reference-dir", str(refs), "--depth-format", "npy"])
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    np.testing.assert_allclose(np.load(out / "f0_depth.npy"), affine(relative(0)), rtol=1e-4)
    np.testing.assert_allclose(np.load(out / "f1_depth.npy"), affine(relative(1)), rtol=5e-3)
    assert not (out / "f2_depth.npy").exists()  # no reference: each image stands alone
    assert (out / "f2_relative.npy").exists()
    rows = {r["frame"]: r for r in csv.DictReader((out / "alignment.csv").open())}
    assert rows["f0"]["valid"] == rows["f1"]["valid"] == "true"
    assert rows["f2"]["valid"] == "false" and rows["f2"]["reference"] == "none"
    assert "2/3 frames with a valid alignment" in err
