"""sensor_msgs conversion, checked through a serialize / deserialize round trip."""

from __future__ import annotations

import array
import io
import sys
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("rclpy")

import torch
from builtin_interfaces.msg import Time
from PIL import Image as PILImage
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import (
    CameraInfo,
    CompressedImage,
    Image,
    PointCloud2,
    PointField,
)
from std_msgs.msg import Header

from dpt_ros.config.settings import DEFAULT_DECODE
from dpt_ros.core.camera.camera_info import camera_model
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.errors import BadInput
from dpt_ros.core.pointcloud.pack import pack_cloud
from dpt_ros.messages import (
    camera_info_msg,
    decode_frame,
    frame_from_compressed_msg,
    frame_reference,
    header_copy,
    image_msg,
    pointcloud_msg,
    rgb_from_image_msg,
    unsupported_lens,
)

HEADER = Header(stamp=Time(sec=1_700_000_000, nanosec=123_456_789), frame_id="camera_optical")
NATIVE_BIG = sys.byteorder == "big"
RNG = np.random.default_rng(7)


def _round_trip(msg):
    return deserialize_message(serialize_message(msg), type(msg))


def _assert_header(header: Header) -> None:
    assert header is not HEADER
    assert (header.stamp.sec, header.stamp.nanosec, header.frame_id) == (
        1_700_000_000, 123_456_789, "camera_optical")


def test_header_copy_is_independent() -> None:
    copy = header_copy(HEADER)
    _assert_header(copy)
    copy.stamp.sec = 5
    copy.frame_id = "other"
    assert HEADER.stamp.sec == 1_700_000_000 and HEADER.frame_id == "camera_optical"


@pytest.mark.parametrize(
    ("encoding", "array_", "bpp"),
    [
        ("32FC1", RNG.standard_normal((6, 9)).astype(np.float32), 4),
        ("mono8", RNG.integers(0, 256, (6, 9), dtype=np.uint8), 1),
        ("16UC1", RNG.integers(0, 65536, (6, 9), dtype=np.uint16), 2),
        ("bgr8", RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8), 3),
        ("rgb8", RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8), 3),
    ],
)
def test_image_msg_fields_and_round_trip(encoding: str, array_: np.ndarray, bpp: int) -> None:
    msg = image_msg(array_, encoding, HEADER)
    assert (msg.height, msg.width, msg.encoding, msg.step) == (6, 9, encoding, 9 * bpp)
    assert msg.is_bigendian == int(NATIVE_BIG)
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"
    _assert_header(msg.header)
    back = _round_trip(msg)
    assert back == msg
    assert bytes(back.data) == array_.tobytes()
    restored = np.frombuffer(back.data, dtype=array_.dtype).reshape(array_.shape)
    np.testing.assert_array_equal(restored, array_)


def test_image_msg_non_contiguous_and_big_endian() -> None:
    depth = RNG.standard_normal((8, 10)).astype(np.float32)
    msg = image_msg(depth[:, ::2], "32FC1", HEADER)
    assert msg.step == 5 * 4
    np.testing.assert_array_equal(
        np.frombuffer(msg.data, np.float32).reshape(8, 5), depth[:, ::2])
    big = depth.astype(">f4")
    msg = _round_trip(image_msg(big, "32FC1", HEADER))
    assert msg.is_bigendian == 1
    np.testing.assert_array_equal(np.frombuffer(msg.data, ">f4").reshape(8, 10), depth)
    little = image_msg(depth.astype("<f4"), "32FC1", HEADER)
    assert little.is_bigendian == 0


def test_image_msg_rejects_mismatches() -> None:
    with pytest.raises(ValueError):
        image_msg(np.zeros((4, 4), np.float64), "32FC1", HEADER)
    with pytest.raises(ValueError):
        image_msg(np.zeros((4, 4, 3), np.uint8), "mono8", HEADER)
    with pytest.raises(ValueError):
        image_msg(np.zeros((4, 4), np.uint8), "bgr8", HEADER)
    with pytest.raises(ValueError):
        image_msg(np.zeros((4, 4), np.uint8), "yuv422", HEADER)


def test_rgb_from_image_msg_after_transport() -> None:
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    msg = _round_trip(image_msg(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", HEADER))
    np.testing.assert_array_equal(rgb_from_image_msg(msg), rgb)
    padded = Image(height=5, width=7, encoding="rgb8", step=7 * 3 + 3, is_bigendian=0)
    rows = np.concatenate([rgb.reshape(5, 21), np.full((5, 3), 99, np.uint8)], axis=1)
    padded.data = array.array("B", rows.tobytes())
    np.testing.assert_array_equal(rgb_from_image_msg(_round_trip(padded)), rgb)


def test_rgb_from_image_msg_big_endian_mono16() -> None:
    grey = RNG.integers(0, 65536, (4, 6), dtype=np.uint16)
    msg = Image(height=4, width=6, encoding="mono16", step=12, is_bigendian=1)
    msg.data = array.array("B", grey.astype(">u2").tobytes())
    got = rgb_from_image_msg(_round_trip(msg))
    np.testing.assert_array_equal(got[..., 1], np.floor(grey / 65535.0 * 255.0 + 0.5))


def test_rgb_from_bad_image_msg() -> None:
    msg = Image(height=4, width=6, encoding="rgb8", step=10, is_bigendian=0)
    msg.data = array.array("B", bytes(40))
    with pytest.raises(BadInput) as info:
        rgb_from_image_msg(msg)
    assert info.value.kind == "step"


def test_frame_from_compressed_msg() -> None:
    rgb = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(rgb).save(out, format="PNG")
    msg = CompressedImage(header=HEADER, format="rgb8; png compressed bgr8")
    msg.data = array.array("B", out.getvalue())
    np.testing.assert_array_equal(frame_from_compressed_msg(_round_trip(msg)).rgb, rgb)
    msg.data = array.array("B", b"garbage")
    with pytest.raises(BadInput) as info:
        frame_from_compressed_msg(msg)
    assert info.value.kind == "compressed"


def test_decode_frame_gives_pixels_camera_and_stamp() -> None:
    """The one decoder of the node and the bag tool: raw or compressed, the camera model
    asked for at the image's own size, the header's stamp in seconds."""
    rgb = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(rgb).save(out, format="PNG")
    compressed = CompressedImage(header=HEADER, format="png")
    compressed.data = array.array("B", out.getvalue())
    raw = image_msg(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", HEADER)
    sizes = []

    def camera(width: int, height: int) -> Intrinsics:
        sizes.append((width, height))
        return Intrinsics.from_hfov(width, height, 90.0)

    for msg in (_round_trip(raw), _round_trip(compressed)):
        frame = decode_frame(msg, DEFAULT_DECODE, camera)
        np.testing.assert_array_equal(frame.rgb, rgb)
        assert frame.intrinsics == Intrinsics.from_hfov(8, 6, 90.0)
        assert frame.stamp == pytest.approx(1_700_000_000.123456789, abs=1e-6)
    assert sizes == [(8, 6), (8, 6)]
    bad = Image(height=4, width=6, encoding="rgb8", step=10, is_bigendian=0)
    bad.data = array.array("B", bytes(40))
    with pytest.raises(BadInput):
        decode_frame(bad, DEFAULT_DECODE, camera)


def _depth_reference(frame_id: str) -> Image:
    header = Header(stamp=HEADER.stamp, frame_id=frame_id)
    return image_msg(np.full((4, 6), 2.0, np.float32), "32FC1", header)


def test_frame_reference_needs_a_depth_reference_in_the_image_frame() -> None:
    ref = frame_reference(_depth_reference("camera_optical"), None, None, 1 << 20,
                          "camera_optical", "/rgbd/depth")
    assert ref is not None and ref.encoding == "32FC1" and ref.depth is not None
    with pytest.raises(BadInput) as info:
        frame_reference(_depth_reference("other_optical"), None, None, 1 << 20,
                        "camera_optical", "/rgbd/depth")
    assert info.value.kind == "reference"
    assert "/rgbd/depth has frame_id 'other_optical', the image 'camera_optical'" in str(
        info.value)
    # an empty frame_id on either side is not checked (nothing to compare)
    assert frame_reference(_depth_reference(""), None, None, 1 << 20, "camera_optical")
    assert frame_reference(_depth_reference("other_optical"), None, None, 1 << 20, "")
    assert frame_reference(None, None, None, 1 << 20, "camera_optical") is None


def test_unsupported_lens_says_why_there_are_no_points() -> None:
    pinhole = Intrinsics(50.0, 50.0, 31.5, 23.5, 64, 48)
    assert unsupported_lens(pinhole, "/cam/camera_info") is None
    assert unsupported_lens(replace(pinhole, distortion_model="plumb_bob",
                                    d=(0.1, 0.0, 0.0, 0.0, 0.0)), "/cam/camera_info") is None
    fisheye = replace(pinhole, distortion_model="kannala_brandt8", d=(0.1,) * 8)
    why = unsupported_lens(fisheye, "/cam/camera_info")
    assert why.startswith("/cam/camera_info: distortion_model 'kannala_brandt8' with D = [0.1")
    assert "cannot be inverted (supported: plumb_bob, rational_polynomial, equidistant)" in why


def test_camera_info_round_trip() -> None:
    intr = Intrinsics(fx=525.0, fy=530.5, cx=319.5, cy=239.25, width=640, height=480)
    msg = _round_trip(camera_info_msg(intr, HEADER))
    _assert_header(msg.header)
    assert (msg.width, msg.height, msg.distortion_model) == (640, 480, "plumb_bob")
    np.testing.assert_array_equal(msg.k, [525.0, 0, 319.5, 0, 530.5, 239.25, 0, 0, 1])
    np.testing.assert_array_equal(msg.p, [525.0, 0, 319.5, 0, 0, 530.5, 239.25, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(msg.r, np.eye(3).reshape(-1))
    assert list(msg.d) == [0.0] * 5
    assert camera_model(msg) == intr
    lens = replace(intr, distortion_model="rational_polynomial",
                   d=(0.1, -0.02, 0.001, 0.002, 0.0, 0.3, 0.01, 0.0))
    raw = _round_trip(camera_info_msg(lens, HEADER))
    assert raw.distortion_model == "rational_polynomial" and list(raw.d) == list(lens.d)
    # raw image: K and D, and the rectified camera of P (= K here)
    assert camera_model(raw) == replace(
        lens, rectified=(lens.fx, lens.fy, lens.cx, lens.cy))


def test_camera_model_roi_binning_and_p_fallback() -> None:
    msg = CameraInfo(width=1280, height=960, binning_x=2, binning_y=2)
    msg.k = np.array([1000.0, 0, 640.0, 0, 1010.0, 480.0, 0, 0, 1])
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 100, 60, 800, 600
    intr = camera_model(msg)
    assert intr == Intrinsics(500.0, 505.0, 270.0, 210.0, 400, 300)
    uncalibrated = CameraInfo(width=64, height=48)
    uncalibrated.p = np.array([50.0, 0, 31.5, 0, 0, 51.0, 23.5, 0, 0, 0, 1, 0])
    assert camera_model(uncalibrated) == Intrinsics(50.0, 51.0, 31.5, 23.5, 64, 48)


@pytest.mark.parametrize("stride", [1, 2])
def test_pointcloud_msg_round_trip(stride: int) -> None:
    gen = torch.Generator().manual_seed(11)
    xyz = torch.rand((6, 8, 3), generator=gen) * 4
    xyz[1, 1, 2] = float("nan")
    rgb = torch.randint(0, 256, (6, 8, 3), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 150, (6, 8), generator=gen)
    packed = pack_cloud(xyz, rgb, labels, stride=stride)
    msg = _round_trip(pointcloud_msg(packed, HEADER))
    assert isinstance(msg, PointCloud2)
    _assert_header(msg.header)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1), ("y", 4, PointField.FLOAT32, 1),
        ("z", 8, PointField.FLOAT32, 1), ("rgb", 12, PointField.FLOAT32, 1),
        ("label", 16, PointField.UINT32, 1),
    ]
    assert msg.is_bigendian == NATIVE_BIG
    assert (msg.height, msg.width, msg.point_step, msg.row_step, msg.is_dense) == (
        packed.height, packed.width, 20, 20 * packed.width, stride > 1)
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype({
        "names": ["x", "y", "z", "rgb", "label"],
        "formats": [order + "f4"] * 4 + [order + "u4"],
        "offsets": [0, 4, 8, 12, 16],
        "itemsize": 20,
    })
    points = np.frombuffer(msg.data, dtype)
    expected = xyz[::stride, ::stride].reshape(-1, 3).numpy()
    keep = np.isfinite(expected).all(-1)
    if stride == 1:
        assert points.size == 48 and np.isnan(points["x"][~keep]).all()
        points = points[keep]
    np.testing.assert_array_equal(np.stack([points["x"], points["y"], points["z"]], -1),
                                  expected[keep])
    bits = points["rgb"].view(order + "u4")
    colors = rgb[::stride, ::stride].reshape(-1, 3).numpy()[keep].astype(np.uint32)
    np.testing.assert_array_equal(bits, (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2])
    np.testing.assert_array_equal(points["label"], labels[::stride, ::stride].reshape(-1)[keep])


def test_fill_keeps_a_checked_message_valid() -> None:
    """With ROS_PYTHON_CHECK_FIELDS semantics the filled field is still an array('B')."""
    from dpt_ros.messages.convert import _fill_uint8

    payload = RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    msg = Image(check_fields=True, height=3, width=4, encoding="rgb8", step=12)
    _fill_uint8(msg, "data", payload[:, ::-1])  # non-contiguous source
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"
    assert "data=[" in repr(msg)  # the checked __repr__ asserts the array type
    back = _round_trip(msg)
    np.testing.assert_array_equal(
        np.frombuffer(back.data, np.uint8).reshape(3, 4, 3), payload[:, ::-1])
