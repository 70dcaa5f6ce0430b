"""The offline tools run the new families: `dpt-ros predict` writes DA3METRIC depth only
with intrinsics (its metres need a focal length) and the sky mask; Depth Pro needs none
(its field of view is the calibration) and writes depth and a point cloud; `dpt-ros bag`
publishes DA3's ~/sky/image, and Depth Pro's estimated camera_info for a bag without one."""

from __future__ import annotations

import numpy as np
import pytest
from _family_checkpoints import da3_checkpoint, depth_pro_checkpoint, gradient_image
from PIL import Image

from dpt_ros.offline.cli import main
from dpt_ros.offline.exitcodes import ExitCode


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline_models")
    return {"da3": da3_checkpoint(root / "da3"), "pro": depth_pro_checkpoint(root / "pro")}


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    path = tmp_path_factory.mktemp("pictures") / "frame.png"
    Image.fromarray(gradient_image(120, 160)).save(path)
    return path


def test_predict_da3_needs_intrinsics_for_metres(models, picture, tmp_path):
    base = ["predict", str(picture), "--depth-model", str(models["da3"]), "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "a"), "--outputs", "depth"]) == ExitCode.USAGE
    out = tmp_path / "b"
    assert main([*base, "--out", str(out), "--fx", "150", "--fy", "140", "--outputs",
                 "depth", "sky", "--depth-format", "npy"]) == ExitCode.OK
    depth = np.load(out / "frame_depth.npy")
    sky = np.asarray(Image.open(out / "frame_sky.png"))
    assert depth.shape == sky.shape == (120, 160)
    assert np.isnan(depth[sky == 255]).all() and np.isfinite(depth[sky == 0]).all()


def test_predict_depth_pro_without_intrinsics(models, picture, tmp_path):
    out = tmp_path / "p"
    assert main(["predict", str(picture), "--depth-model", str(models["pro"]), "--device",
                 "cpu", "--out", str(out), "--outputs", "depth", "points", "--depth-format",
                 "npy"]) == ExitCode.OK
    assert np.isfinite(np.load(out / "frame_depth.npy")).all()
    assert (out / "frame.ply").stat().st_size > 0


@pytest.mark.ros
def test_bag_da3_sky_and_depth_pro_estimated_camera_info(models, tmp_path):
    pytest.importorskip("rclpy")
    from _offline_util import IMAGE_TOPIC, INFO_TOPIC, read_bag, write_bag

    src = tmp_path / "in"
    write_bag(src, "mcap", 2)
    dst = tmp_path / "da3"
    assert main(["bag", str(src), str(dst), "--image-topic", IMAGE_TOPIC,
                 "--camera-info-topic", INFO_TOPIC, "--depth-model", str(models["da3"]),
                 "--device", "cpu"]) == ExitCode.OK
    topics = {t for t, *_ in read_bag(dst)}
    assert any(t.endswith("/sky/image") for t in topics), topics
    assert any(t.endswith("/depth/image") for t in topics), topics

    bare = tmp_path / "bare"
    write_bag(bare, "mcap", 2, with_info=False)
    dst = tmp_path / "pro"
    assert main(["bag", str(bare), str(dst), "--image-topic", IMAGE_TOPIC,
                 "--depth-model", str(models["pro"]), "--device", "cpu"]) == ExitCode.OK
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo

    infos = [deserialize_message(raw, CameraInfo) for t, kind, _, raw in read_bag(dst)
             if kind == "sensor_msgs/msg/CameraInfo" and t.endswith("depth/camera_info")]
    assert infos and all(i.k[0] > 0 and i.k[0] == i.k[4] for i in infos)
    assert any(t.endswith("/points") for t, *_ in read_bag(dst))
