"""`dpt-ros bag` on bags written by rosbags in both storage formats: every input image gets
the node's outputs with its stamp and frame id, the bytes equal what the node publishes for
that frame (Pipeline.process + messages.py on one frame), malformed messages are skipped and
counted, the input is never touched, and nothing appears under the output name unless the
run completed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _lens_textbook import rectified_view_footprint, textbook_pixels
from _offline_util import (
    CHATTER_TOPIC,
    COMPRESSED_TOPIC,
    CX,
    CY,
    FRAME_ID,
    FX,
    FY,
    HEIGHT,
    IMAGE_TOPIC,
    INFO_TOPIC,
    LABELS,
    WIDTH,
    camera_info_msg,
    checkpoints,
    frame_rgb,
    image_msg,
    log_time,
    read_bag,
    stamp_of,
    tree_digest,
    write_bag,
)

from dpt_ros import messages
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.pipeline import OUTPUTS, Frame, Pipeline
from dpt_ros.offline.cli import main
from dpt_ros.offline.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]
IMAGE_OUTPUTS = {  # topic under the prefix -> (FrameResult field, encoding)
    "depth/image": ("depth", "32FC1"),
    "depth_colorized/image": ("depth_colorized", "bgr8"),
    "segmentation/image": ("segmentation", "mono8"),
    "segmentation_colorized/image": ("seg_colorized", "bgr8"),
    "segmentation_overlay/image": ("overlay", "bgr8"),
}


def _msg_class(msgtype: str):
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
    from std_msgs.msg import String

    return {
        "sensor_msgs/msg/Image": Image,
        "sensor_msgs/msg/CompressedImage": CompressedImage,
        "sensor_msgs/msg/CameraInfo": CameraInfo,
        "sensor_msgs/msg/PointCloud2": PointCloud2,
        "std_msgs/msg/String": String,
    }[msgtype]


def _decode(records):
    from rclpy.serialization import deserialize_message

    return [(topic, t, raw, deserialize_message(raw, _msg_class(mt)))
            for topic, mt, t, raw in records]


def _header(i: int):
    from std_msgs.msg import Header

    h = Header()
    h.stamp.sec, h.stamp.nanosec = stamp_of(i)
    h.frame_id = FRAME_ID
    return h


def _image_array(msg) -> np.ndarray:
    """Pixels of an output Image decoded here, not by the package."""
    dtype = {"32FC1": np.float32, "bgr8": np.uint8, "mono8": np.uint8}[msg.encoding]
    channels = 3 if msg.encoding == "bgr8" else 1
    a = np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, msg.width, channels)
    return a[..., 0] if channels == 1 else a


def _models() -> list[str]:
    c = checkpoints()
    return ["--depth-model", str(c["metric"]), "--segmentation-model", str(c["segmentation"]),
            "--device", "cpu"]


@pytest.mark.parametrize(("storage", "batch"), [("sqlite3", 1), ("mcap", 3)])
def test_bag_outputs_are_the_node_messages(tmp_path, capsys, storage, batch):
    """Messages are compared field by field: rclpy leaves CDR alignment padding bytes
    uninitialised, so two serialisations of one message can differ in those bytes."""

    src, dst = tmp_path / "in", tmp_path / "out"
    frames = write_bag(src, storage, 6, bad={2: "garbage", 4: "short"})
    before = tree_digest(src)
    code = main(["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC,
                 "--camera-info-topic", INFO_TOPIC, "--batch-size", str(batch), *_models()])
    err = capsys.readouterr().err
    assert code == ExitCode.SKIPPED, err
    assert "1 x /cam/image_raw: undecodable CDR" in err
    assert "1 x /cam/image_raw: bad input (" in err
    assert "processed 4/6 images" in err
    assert tree_digest(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no staging left
    assert list(dst.glob(f"*.{'mcap' if storage == 'mcap' else 'db3'}"))

    records = read_bag(dst)
    inputs = read_bag(src)
    copied = [(topic, t, raw) for topic, _, t, raw in records if not topic.startswith("/dpt/")]
    assert copied == [(topic, t, raw) for topic, _, t, raw in inputs]  # originals, byte-exact

    out = _decode([r for r in records if r[0].startswith("/dpt/")])
    by_topic: dict[str, list] = {}
    for topic, t, raw, msg in out:
        by_topic.setdefault(topic.removeprefix("/dpt/"), []).append((t, raw, msg))
    # every image has its sibling camera_info (image_transport's layout), the same message
    infos = {t.rsplit("/", 1)[0] + "/camera_info" for t in IMAGE_OUTPUTS}
    expected_topics = {*IMAGE_OUTPUTS, *infos, "points", "segmentation/labels"}
    assert set(by_topic) == expected_topics

    (labels_msg,) = [m for _, _, m in by_topic.pop("segmentation/labels")]
    assert labels_msg.data == '{"0": "wall", "1": "floor", "2": "chair"}'
    assert LABELS == ["wall", "floor", "chair"]

    c = checkpoints()
    node = Pipeline(str(c["metric"]), str(c["segmentation"]), device="cpu")
    intr = Intrinsics(FX, FY, CX, CY, WIDTH, HEIGHT)
    good = sorted(frames)
    assert good == [0, 1, 3, 5]
    for topic, items in by_topic.items():
        assert [t for t, _, _ in items] == [log_time(i) for i in good], topic
        for (_, _, msg), i in zip(items, good):
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == stamp_of(i)
            assert msg.header.frame_id == FRAME_ID

    for k, i in enumerate(good):
        ref = node.process([Frame(frames[i], intr)], set(OUTPUTS) - {"relative"})[0]
        for topic, (field, encoding) in IMAGE_OUTPUTS.items():
            _, raw, msg = by_topic[topic][k]
            assert msg.encoding == encoding and (msg.height, msg.width) == (HEIGHT, WIDTH)
            value = getattr(ref, field)
            if batch == 1:  # the node processes single frames: the identical message
                assert msg == messages.image_msg(value, encoding, _header(i)), topic
            if field == "depth":
                np.testing.assert_allclose(_image_array(msg), value, rtol=1e-4)
            elif batch == 1:
                np.testing.assert_array_equal(_image_array(msg), value)
        _, _, info = by_topic["depth/camera_info"][k]
        assert list(info.k) == [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
        assert all(by_topic[topic][k][2] == info for topic in infos)
        _, _, cloud = by_topic["points"][k]
        assert [f.name for f in cloud.fields][:3] == ["x", "y", "z"]
        assert (cloud.height, cloud.width) == (HEIGHT, WIDTH)
        if batch == 1:
            assert cloud == messages.pointcloud_msg(ref.points, _header(i))
        assert info == camera_info_msg(i)  # the input's own camera_info, republished


def test_compressed_relative_model_with_params_file(tmp_path, capsys):
    """CompressedImage input; depth.scale from the node's YAML makes depth metric as
    1 / (scale * relative + shift); without camera info camera.hfov gives the intrinsics."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image

    scale, shift = 0.5, 0.05
    params = tmp_path / "p.yaml"
    params.write_text(
        "dpt_node:\n  ros__parameters:\n"
        f"    depth_model: '{checkpoints()['relative']}'\n    device: cpu\n"
        f"    depth:\n      scale: {scale}\n      shift: {shift}\n"
        "    camera:\n      hfov: 90.0\n"
    )
    src, dst = tmp_path / "in", tmp_path / "out"
    write_bag(src, "sqlite3", 3, compressed=True, with_info=False)
    code = main(["bag", str(src), str(dst), "--image-topic", COMPRESSED_TOPIC,
                 "--params", str(params), "--batch-size", "2"])
    assert code == ExitCode.OK, capsys.readouterr().err
    got: dict[str, list] = {}
    for topic, _, t, raw in read_bag(dst):
        got.setdefault(topic, []).append((t, raw))
    assert {t for t in got if t.startswith("/dpt/")} == {
        "/dpt/depth/image", "/dpt/depth_relative/image", "/dpt/depth_colorized/image",
        "/dpt/depth/camera_info", "/dpt/depth_relative/camera_info",
        "/dpt/depth_colorized/camera_info", "/dpt/points"}
    for k in range(3):
        depth = _image_array(deserialize_message(got["/dpt/depth/image"][k][1], Image))
        rel = _image_array(deserialize_message(got["/dpt/depth_relative/image"][k][1], Image))
        inv = scale * rel.astype(np.float64) + shift
        np.testing.assert_allclose(depth, np.where(inv > 0, 1 / inv, np.nan), rtol=1e-5)
        info = deserialize_message(got["/dpt/depth/camera_info"][k][1], CameraInfo)
        assert info.k[0] == pytest.approx(WIDTH / 2)  # hfov 90 deg: f = W / 2
        assert got["/dpt/depth/image"][k][0] == log_time(k)


def test_topics_out_prefix_and_storage_conversion(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    write_bag(src, "sqlite3", 2)
    code = main(["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC,
                 "--camera-info-topic", INFO_TOPIC, "--topics-out", "depth/image", "points",
                 "--prefix", "/robot/dpt", "--storage", "mcap", *_models()])
    assert code == ExitCode.OK
    assert [p.suffix for p in dst.iterdir() if p.name != "metadata.yaml"] == [".mcap"]
    topics = {topic for topic, _, _, _ in read_bag(dst)}
    assert topics == {IMAGE_TOPIC, INFO_TOPIC, CHATTER_TOPIC, "/robot/dpt/depth/image",
                      "/robot/dpt/points"}


def test_existing_output_needs_force(tmp_path, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    write_bag(src, "mcap", 2)
    dst.mkdir()
    (dst / "keep.txt").write_text("precious")
    args = ["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC, *_models()]
    assert main(args) == ExitCode.OUTPUT_EXISTS
    assert "--force" in capsys.readouterr().err
    assert (dst / "keep.txt").read_text() == "precious"
    assert main([*args, "--force"]) == ExitCode.OK
    assert not (dst / "keep.txt").exists()
    assert any(topic == "/dpt/depth/image" for topic, _, _, _ in read_bag(dst))


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--image-topic", "/nope"], ExitCode.INPUT, "/cam/image_raw"),  # lists candidates
        (["--image-topic", CHATTER_TOPIC], ExitCode.INPUT, "std_msgs/msg/String"),
        (["--image-topic", IMAGE_TOPIC, "--camera-info-topic", "/nope"], ExitCode.INPUT, "/nope"),
        (["--image-topic", IMAGE_TOPIC, "--topics-out", "bogus"], ExitCode.USAGE, "bogus"),
        (["--image-topic", IMAGE_TOPIC, "--topics-out", "depth_relative/image"], ExitCode.USAGE,
         "cannot be produced"),
    ],
)
def test_input_and_usage_errors(tmp_path, capsys, args, code, needle):
    src, dst = tmp_path / "in", tmp_path / "out"
    write_bag(src, "sqlite3", 1)
    assert main(["bag", str(src), str(dst), *args, *_models()]) == code
    assert needle in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing written


def test_rerun_on_an_output_bag_needs_another_prefix(tmp_path, capsys):
    src, once, twice = tmp_path / "in", tmp_path / "once", tmp_path / "twice"
    write_bag(src, "sqlite3", 1)
    args = ["--image-topic", IMAGE_TOPIC, "--topics-out", "depth/image", *_models()]
    assert main(["bag", str(src), str(once), *args]) == ExitCode.OK
    assert main(["bag", str(once), str(twice), *args]) == ExitCode.USAGE
    assert "/dpt/depth/image" in capsys.readouterr().err and not twice.exists()
    assert main(["bag", str(once), str(twice), *args, "--prefix", "/dpt2"]) == ExitCode.OK
    topics = [topic for topic, _, _, _ in read_bag(twice)]
    assert topics.count("/dpt/depth/image") == 1 and topics.count("/dpt2/depth/image") == 1


def test_output_inside_input_and_missing_input(tmp_path):
    src = tmp_path / "in"
    write_bag(src, "sqlite3", 1)
    args = ["--image-topic", IMAGE_TOPIC, *_models()]
    assert main(["bag", str(src), str(src / "out"), *args]) == ExitCode.USAGE
    assert main(["bag", str(src), str(src), "--force", *args]) == ExitCode.USAGE
    assert main(["bag", str(tmp_path / "missing"), str(tmp_path / "o"), *args]) == ExitCode.INPUT
    assert sorted(p.name for p in src.iterdir()) == ["in.db3", "metadata.yaml"]


def test_sigint_leaves_no_output_and_input_untouched(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    write_bag(src, "mcap", 1500)
    before = tree_digest(src)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "dpt_ros.offline.cli", "bag", str(src), str(dst),
           "--image-topic", IMAGE_TOPIC, "--camera-info-topic", INFO_TOPIC,
           "--batch-size", "1", *_models()]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if line.startswith("bag ") or not line:
                break
        assert line.startswith("bag "), f"no progress line; last: {line!r}"
        assert list(tmp_path.glob(".out.partial-*")), "the run writes into a staging folder"
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, rest
    assert "interrupted: no output was written" in rest
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
    assert tree_digest(src) == before


@pytest.mark.parametrize("name", ["broken.mcap", "broken.db3"])
def test_unreadable_bag_file(tmp_path, capsys, name):
    src = tmp_path / name
    src.write_bytes(b"this is not a bag" * 64)
    dst = tmp_path / "out"
    code = main(["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC, *_models()])
    assert code == ExitCode.INPUT
    assert "cannot read bag" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_camera_info_after_its_image_and_lens_distortion(tmp_path, capsys):
    """As drivers record them: each camera_info logged 3 ms after its image, a plumb_bob
    lens. Every image is paired with its own camera_info (bag time, the node's sync rule),
    the output camera_info is the input's (D kept) and the points follow the lens; an
    image whose camera_info never comes is skipped and reported."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, PointCloud2

    d = [-0.2, 0.05, 0.001, -0.001, 0.0]
    src, dst = tmp_path / "in", tmp_path / "out"
    write_bag(src, "sqlite3", 4, info_offset=3_000_000, info_d=d, no_info=frozenset({2}))
    code = main(["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC,
                 "--camera-info-topic", INFO_TOPIC, "--depth-model",
                 str(checkpoints()["metric"]), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == ExitCode.SKIPPED, err
    assert "no camera_info with its stamp" in err
    got: dict[str, list] = {}
    for topic, _, t, raw in read_bag(dst):
        got.setdefault(topic, []).append((t, raw))
    infos = [deserialize_message(raw, CameraInfo) for _, raw in got["/dpt/depth/camera_info"]]
    assert [i.header.stamp.sec for i in infos] == [stamp_of(k)[0] for k in (0, 1, 3)]
    for k, info in zip((0, 1, 3), infos):
        assert info == camera_info_msg(k, d)
    cloud = deserialize_message(got["/dpt/points"][0][1], PointCloud2)
    xyz = np.frombuffer(bytes(cloud.data), np.float32).reshape(
        HEIGHT, WIDTH, cloud.point_step // 4)[..., :3]
    assert [f.name for f in cloud.fields][:3] == ["x", "y", "z"]
    uv = textbook_pixels(xyz.astype(np.float64), infos[0])
    u, v = np.meshgrid(np.arange(WIDTH), np.arange(HEIGHT))
    ok = np.isfinite(uv).all(-1)
    # the model saw the frame rectified with P: depth where that view holds the raw pixel
    seen = rectified_view_footprint(infos[0])
    assert not (ok & ~seen).any() and 0.9 * seen.mean() < ok.mean() <= seen.mean()
    assert np.abs(uv[..., 0] - u)[ok].max() < 0.01 and np.abs(uv[..., 1] - v)[ok].max() < 0.01


def test_unsupported_lens_writes_depth_and_reports_the_missing_points(tmp_path, capsys):
    """As the node: a camera_info whose lens model cannot be inverted still gives depth (and
    its camera_info) for every frame, no points, and the summary says why (not a skipped
    message: the exit code stays 0)."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    src, dst = tmp_path / "in", tmp_path / "out"
    ts = get_typestore(Stores.ROS2_JAZZY)
    with Writer(src, version=8) as writer:
        img = writer.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        info = writer.add_connection(INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=ts)
        for i in range(3):
            fisheye = camera_info_msg(i)
            fisheye.distortion_model, fisheye.d = "kannala_brandt8", [0.1] * 8
            writer.write(info, log_time(i) - 1000, serialize_message(fisheye))
            writer.write(img, log_time(i), serialize_message(image_msg(frame_rgb(i), i)))
    code = main(["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC,
                 "--camera-info-topic", INFO_TOPIC, "--depth-model",
                 str(checkpoints()["metric"]), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    assert "written without points: 3 frame(s) (their depth is written):" in err
    assert (f"  3 x {INFO_TOPIC}: distortion_model 'kannala_brandt8' with D = [0.1, "
            in err) and "cannot be inverted" in err
    written = [topic for topic, _, _, _ in read_bag(dst)]
    assert written.count("/dpt/depth/image") == 3 and written.count("/dpt/depth/camera_info") == 3
    assert "/dpt/points" not in written
