"""Our images and clouds, read by the ROS tools people already use.

The real cv_bridge (`imgmsg_to_cv2`) and the real `sensor_msgs.point_cloud2.read_points`
(Debian's ROS packages for the system Python, see `_ros1_readers.py`) decode the messages the
node publishes, built both ways (message objects, and the serialized path deserialized by
rclpy, which is what a subscriber receives), from a real pipeline run with the shipped
synthetic models. Truth: the pipeline's own arrays for the images; for the cloud, the depth
image (z), the pinhole formula (x, y), the input frame (rgb) and the segmentation (label).
Skips with the reason when the system Python lacks the tools (`.ci/run` installs them).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from dpt_ros import messages
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.outputs import image_encoding
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline, PipelineSettings
from dpt_ros.demo import WEIGHTS
from dpt_ros.messages import cdr as messages_cdr

SYSTEM_PYTHON = "/usr/bin/python3"
READERS = Path(__file__).resolve().parents[1] / "_ros1_readers.py"
INSTALL = "apt-get install python3-cv-bridge python3-sensor-msgs python3-roslib"
H, W = 36, 52
INTR = Intrinsics(fx=48.0, fy=50.0, cx=25.5, cy=17.25, width=W, height=H)
HEADER = Header(stamp=Time(sec=12, nanosec=34), frame_id="camera_color_optical_frame")
IMAGES = ("depth", "depth_colorized", "segmentation", "seg_colorized", "overlay")
MAX_RANGE = 3.0  # metres: farther points are invalid (NaN organised, dropped strided)


def _readers_missing() -> str | None:
    if not Path(SYSTEM_PYTHON).exists():
        return f"no {SYSTEM_PYTHON}"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import cv_bridge, sensor_msgs.point_cloud2"],
                           capture_output=True, text=True)
    if probe.returncode:
        return f"{SYSTEM_PYTHON} lacks cv_bridge / sensor_msgs.point_cloud2 ({INSTALL})"
    return None


pytestmark = pytest.mark.skipif(bool(_readers_missing()), reason=str(_readers_missing()))


@pytest.fixture(scope="module")
def outputs():
    """One real frame through the shipped synthetic depth + segmentation models."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([xx * 4, yy * 6, (xx + yy) * 3], -1) % 256
    rgb = (rgb + rng.integers(0, 30, (H, W, 3))).clip(0, 255).astype(np.uint8)
    pipe = Pipeline(depth_model=str(WEIGHTS / "synthetic-depth"),
                    segmentation_model=str(WEIGHTS / "synthetic-seg"), device="cpu",
                    settings=PipelineSettings(pointcloud_max_range=MAX_RANGE))
    want = {*IMAGES, "points"}
    organised = pipe.process([Frame(rgb, INTR)], want)[0]
    pipe.settings = PipelineSettings(pointcloud_stride=2, pointcloud_max_range=MAX_RANGE)
    strided = pipe.process([Frame(rgb, INTR)], {"points"})[0].points
    assert np.isfinite(organised.depth).all()  # a metric model: every pixel valid
    return rgb, organised, strided


def image_messages(result) -> dict[str, Image]:
    msgs = {}
    for name in IMAGES:
        array = getattr(result, name)
        encoding = image_encoding(name, array)
        obj = messages.image_msg(array, encoding, HEADER)
        wire = deserialize_message(messages_cdr.image_cdr(array, encoding, HEADER), Image)
        assert wire == obj
        msgs[f"{name}_object"], msgs[f"{name}_serialized"] = obj, wire
    holes = result.depth.copy()
    holes[::5, 3:9] = np.nan  # invalid pixels (REP 118), as a relative model's
    msgs["depth_holes"] = deserialize_message(
        messages_cdr.image_cdr(holes, "32FC1", HEADER), Image)
    big = result.depth.astype(">f4")  # a big-endian payload (is_bigendian = 1)
    msgs["depth_bigendian"] = deserialize_message(
        messages_cdr.image_cdr(big, "32FC1", HEADER), Image)
    assert msgs["depth_bigendian"].is_bigendian == 1
    labels16 = result.segmentation.astype(np.uint16) * 300  # as from a > 256-class model
    msgs["segmentation16"] = deserialize_message(
        messages_cdr.image_cdr(labels16, "16UC1", HEADER), Image)
    return msgs


def cloud_messages(organised, strided) -> dict[str, PointCloud2]:
    msgs = {}
    for name, packed in (("organised", organised), ("strided", strided)):
        obj = messages.pointcloud_msg(packed, HEADER)
        wire = deserialize_message(messages_cdr.pointcloud_cdr(packed, HEADER), PointCloud2)
        assert wire == obj
        msgs[f"{name}_object"], msgs[f"{name}_serialized"] = obj, wire
    return msgs


def read_with_ros_tools(images: dict, clouds: dict, tmp_path: Path) -> dict[str, np.ndarray]:
    fields = {}
    for name, m in images.items():
        for key in ("height", "width", "encoding", "is_bigendian", "step"):
            fields[f"img.{name}.{key}"] = np.array(getattr(m, key))
        fields[f"img.{name}.frame_id"] = np.array(m.header.frame_id)
        fields[f"img.{name}.data"] = np.frombuffer(m.data, np.uint8)
    for name, m in clouds.items():
        for key in ("height", "width", "is_bigendian", "point_step", "row_step", "is_dense"):
            fields[f"pc.{name}.{key}"] = np.array(getattr(m, key))
        fields[f"pc.{name}.frame_id"] = np.array(m.header.frame_id)
        fields[f"pc.{name}.field_names"] = np.array([f.name for f in m.fields])
        for key in ("offset", "datatype", "count"):
            fields[f"pc.{name}.field_{key}s"] = np.array([getattr(f, key) for f in m.fields])
        fields[f"pc.{name}.data"] = np.frombuffer(m.data, np.uint8)
    src, dst = tmp_path / "messages.npz", tmp_path / "decoded.npz"
    np.savez(src, **fields)
    run = subprocess.run([SYSTEM_PYTHON, str(READERS), str(src), str(dst)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    with np.load(dst) as decoded:
        return dict(decoded)


def test_cv_bridge_and_point_cloud2_decode_our_messages(outputs, tmp_path):
    rgb, result, strided = outputs
    images = image_messages(result)
    clouds = cloud_messages(result.points, strided)
    got = read_with_ros_tools(images, clouds, tmp_path)

    for name in IMAGES:  # cv_bridge gives back exactly the pipeline's array, both paths
        for path in ("object", "serialized"):
            np.testing.assert_array_equal(got[f"img.{name}_{path}"], getattr(result, name))
    np.testing.assert_array_equal(got["img.depth_bigendian"], result.depth)
    holes = got["img.depth_holes"]
    assert np.isnan(holes[::5, 3:9]).all() and np.isfinite(holes).sum() == H * W - 8 * 6
    np.testing.assert_array_equal(got["img.segmentation16"],
                                  result.segmentation.astype(np.uint16) * 300)

    v, u = np.mgrid[0:H, 0:W]
    x, y = (u - INTR.cx) * result.depth / INTR.fx, (v - INTR.cy) * result.depth / INTR.fy
    inside = x * x + y * y + result.depth**2 <= MAX_RANGE**2
    assert 0 < inside.mean() < 1
    z, x, y = (np.where(inside, a, np.nan) for a in (result.depth, x, y))
    for path in ("object", "serialized"):
        cols = {k.rsplit(".", 1)[1]: a for k, a in got.items()
                if k.startswith(f"pc.organised_{path}.")}
        assert set(cols) == {"x", "y", "z", "rgb", "label"}
        assert cols["z"].size == H * W  # organised: one point per pixel, row-major
        np.testing.assert_array_equal(cols["z"].reshape(H, W), z)  # NaN: out of range
        np.testing.assert_allclose(cols["x"].reshape(H, W), x, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cols["y"].reshape(H, W), y, rtol=1e-5, atol=1e-6)
        bits = cols["rgb"].astype(np.float32).view(np.uint32).reshape(H, W)
        packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
            | rgb[..., 2]
        np.testing.assert_array_equal(bits, packed)
        np.testing.assert_array_equal(cols["label"].reshape(H, W), result.segmentation)

        sub = {k.rsplit(".", 1)[1]: a for k, a in got.items()
               if k.startswith(f"pc.strided_{path}.")}
        keep = np.isfinite(z[::2, ::2])
        np.testing.assert_array_equal(sub["z"], z[::2, ::2][keep])  # invalid points dropped
        np.testing.assert_array_equal(sub["label"], result.segmentation[::2, ::2][keep])
