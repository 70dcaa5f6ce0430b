"""The serialized publish path against rclpy's own serialization of the message objects.

Truth: `rclpy.serialization.serialize_message` / `deserialize_message` (rmw_fastrtps' type
support) of the message `dpt_ros.messages` builds. rmw leaves CDR padding bytes
uninitialised, so bytes are compared everywhere except at bytes rclpy's output has there
that ours has as zero padding; deserialization then proves every field.
"""

from __future__ import annotations

import gc
import sys
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

import torch
from _node_util import domain_id
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from dpt_ros import messages
from dpt_ros.core.codecs import transfer
from dpt_ros.core.codecs.transfer import HEADROOM, framed_empty, host_frame, to_host
from dpt_ros.core.pipeline.outputs import image_encoding
from dpt_ros.core.pointcloud.pack import pack_cloud
from dpt_ros.messages import cdr as messages_cdr

RNG = np.random.default_rng(13)
FRAME_IDS = ["", "c", "ab", "abc", "camera_optical", "x" * 300, "kamera_ö"]
SIZES = [(1, 1), (3, 5), (7, 13), (48, 64)]


def header(frame_id: str, sec: int = 1_700_000_000, nanosec: int = 987_654_321) -> Header:
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def assert_same_serialization(ours: bytes, msg) -> None:
    """`ours` is rclpy's serialization of `msg` up to padding, and deserializes to `msg`."""
    ref = serialize_message(msg)
    assert len(ours) == len(ref)
    a, b = np.frombuffer(ours, np.uint8), np.frombuffer(ref, np.uint8)
    differ = np.flatnonzero(a != b)
    assert (a[differ] == 0).all(), "only padding (zero in ours) may differ"
    assert differ.size <= 64  # a few alignment gaps, never a field
    assert deserialize_message(ours, type(msg)) == msg


def outputs(height: int, width: int) -> dict[str, np.ndarray]:
    """An array of every image output the pipeline produces (dtypes as FrameResult's)."""
    depth = RNG.uniform(0.3, 9.0, (height, width)).astype(np.float32)
    depth.reshape(-1)[:: max(1, depth.size // 3)] = np.nan  # invalid pixels (REP 118)
    return {
        "depth": depth,
        "relative": RNG.standard_normal((height, width)).astype(np.float32),
        "depth_colorized": RNG.integers(0, 256, (height, width, 3), dtype=np.uint8),
        "segmentation": RNG.integers(0, 150, (height, width), dtype=np.uint8),
        "segmentation16": RNG.integers(0, 600, (height, width), dtype=np.uint16),
        "seg_colorized": RNG.integers(0, 256, (height, width, 3), dtype=np.uint8),
        "overlay": RNG.integers(0, 256, (height, width, 3), dtype=np.uint8),
    }


@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize("frame_id", FRAME_IDS)
def test_every_image_output_serializes_as_rclpy_does(height, width, frame_id):
    head = header(frame_id)
    for name, array in outputs(height, width).items():
        encoding = image_encoding(name.removesuffix("16"), array)
        msg = messages.image_msg(array, encoding, head)
        assert_same_serialization(messages_cdr.image_cdr(array, encoding, head), msg)


@pytest.mark.parametrize("frame_id", ["", "ab", "camera_optical"])
@pytest.mark.parametrize(("dtype", "encoding"), [(">f4", "32FC1"), ("<f4", "32FC1"),
                                                  (">u2", "16UC1"), ("<u2", "16UC1")])
def test_payload_byte_order_goes_into_is_bigendian(frame_id, dtype, encoding):
    array = RNG.integers(0, 1000, (5, 7)).astype(dtype)
    msg = messages.image_msg(array, encoding, header(frame_id))
    assert msg.is_bigendian == int(dtype[0] == ">")
    assert_same_serialization(messages_cdr.image_cdr(array, encoding, header(frame_id)), msg)


@pytest.mark.parametrize("frame_id", ["", "abc", "x" * 300])
def test_big_endian_cdr_deserializes_to_the_same_message(frame_id):
    """The header fields in the other CDR byte order (encapsulation CDR_BE): rclpy reads
    them back to the same message, so the layout holds for both byte orders."""
    big = sys.byteorder != "big"
    head = header(frame_id, sec=-2, nanosec=5)
    for name, array in outputs(3, 5).items():
        encoding = image_encoding(name.removesuffix("16"), array)
        ours = messages_cdr.image_cdr(array, encoding, head, big=big)
        assert ours[:4] == (b"\x00\x00\x00\x00" if big else b"\x00\x01\x00\x00")
        assert deserialize_message(ours, Image) == messages.image_msg(array, encoding, head)
    packed = cloud(3, 5, True, True, 1)
    ours = messages_cdr.pointcloud_cdr(packed, head, big=big)
    assert deserialize_message(ours, PointCloud2) == messages.pointcloud_msg(packed, head)


def cloud(height: int, width: int, rgb: bool, label: bool, stride: int):
    gen = torch.Generator().manual_seed(height * 100 + width)
    xyz = torch.rand((height, width, 3), generator=gen) * 5
    xyz[0, 0, 2] = float("nan")
    colors = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 150, (height, width), generator=gen)
    return pack_cloud(xyz, colors if rgb else None, labels if label else None, stride=stride)


@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize(("rgb", "label"), [(False, False), (True, False), (True, True),
                                            (False, True)])
def test_every_cloud_serializes_as_rclpy_does(height, width, stride, rgb, label):
    packed = cloud(height, width, rgb, label, stride)
    for frame_id in ("", "ab", "camera_optical", "x" * 300):
        head = header(frame_id)
        msg = messages.pointcloud_msg(packed, head)
        assert_same_serialization(messages_cdr.pointcloud_cdr(packed, head), msg)


def test_in_place_framing_equals_the_joined_bytes_and_keeps_the_payload():
    packed = cloud(48, 64, True, True, 1)  # CPU organised cloud: built in a framed buffer
    whole, offset = host_frame(packed.data)
    assert offset == HEADROOM
    before = packed.data.copy()
    for frame_id in ("", "abc", "camera_optical"):
        head = header(frame_id)
        framed = messages_cdr.pointcloud_cdr(packed, head, in_place=True)
        assert isinstance(framed, np.ndarray) and np.shares_memory(framed, whole)
        assert framed.tobytes() == messages_cdr.pointcloud_cdr(packed, head)
        np.testing.assert_array_equal(packed.data, before)  # only head/tailroom written
    too_long = header("x" * HEADROOM)  # no room before the payload: joined bytes instead
    joined = messages_cdr.pointcloud_cdr(packed, too_long, in_place=True)
    assert isinstance(joined, bytes)
    assert_same_serialization(joined, messages.pointcloud_msg(packed, too_long))


def test_only_the_framed_array_itself_is_framed():
    buffer = framed_empty(64)
    array = to_host(buffer)
    assert host_frame(array) is not None
    assert host_frame(array[:32]) is None and host_frame(array.copy()) is None
    assert host_frame(np.zeros(64, np.uint8)) is None
    assert host_frame(to_host(torch.zeros(64, dtype=torch.uint8))) is None
    image = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)  # not framed: joined, never
    assert isinstance(messages_cdr.image_cdr(image, "bgr8", header("a"), in_place=True), bytes)
    assert host_frame(to_host(framed_empty(64)[:32])) is None  # a part: an ordinary view


def test_frame_registry_forgets_freed_buffers():
    gc.collect()
    start = len(transfer._FRAMES)
    arrays = [to_host(framed_empty(1000)) for _ in range(20)]
    assert len(transfer._FRAMES) == start + 20
    del arrays
    gc.collect()
    assert len(transfer._FRAMES) == start


@pytest.fixture
def ros_pair():
    """A publisher and a subscription of PointCloud2 and Image on a private context."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id("test_messages_cdr"))
    node = rclpy.create_node("cdr_test", context=context)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    got: dict[str, list] = {"cloud": [], "image": []}
    pubs = {"cloud": node.create_publisher(PointCloud2, "/cdr_cloud", qos),
            "image": node.create_publisher(Image, "/cdr_image", qos)}
    node.create_subscription(PointCloud2, "/cdr_cloud", got["cloud"].append, qos)
    node.create_subscription(Image, "/cdr_image", got["image"].append, qos)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def wait(key: str, n: int) -> list:
        deadline = time.monotonic() + 10.0
        while len(got[key]) < n and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        return got[key]

    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and not all(
            p.get_subscription_count() for p in pubs.values()):
        executor.spin_once(timeout_sec=0.05)
    yield pubs, wait, node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)


@pytest.mark.parametrize("direct", [True, False])
def test_published_buffers_arrive_as_the_object_path_messages(ros_pair, monkeypatch, direct):
    from dpt_ros.ros import serialized

    pubs, wait, node = ros_pair
    if not direct:  # the fallback: rclpy's publish(bytes)
        monkeypatch.setattr(serialized.FastPath, "enabled", False)
    else:
        reason = serialized.FastPath.check(node)
        if reason:
            pytest.skip(f"fast path off with this rclpy: {reason}")
        assert serialized.FastPath.enabled
    head = header("camera_optical")
    packed = cloud(48, 64, True, True, 1)
    depth = outputs(48, 64)["depth"]
    for use_serialized in (True, False):
        serialized.send_cloud(pubs["cloud"], packed, head, use_serialized)
        serialized.send_image(pubs["image"], depth, "32FC1", head, use_serialized)
    clouds, images = wait("cloud", 2), wait("image", 2)
    assert len(clouds) == 2 and len(images) == 2
    assert clouds[0] == clouds[1] == messages.pointcloud_msg(packed, head)
    assert images[0] == images[1] == messages.image_msg(depth, "32FC1", head)


def test_fast_path_is_refused_for_an_untested_rclpy(ros_pair, monkeypatch):
    """A version it was not tested with: off, and the reason names both versions."""
    from dpt_ros.ros import serialized

    _, _, node = ros_pair
    monkeypatch.setattr(serialized.FastPath, "enabled", True)
    reason = serialized.FastPath.check(node, version="99.0.0")
    assert not serialized.FastPath.enabled
    assert "rclpy 99.0.0" in reason and "7.1.6" in reason


def test_fast_path_round_trip_proves_it_on_this_rclpy(ros_pair):
    """The start-up check on the rclpy of this environment: the round trip passes (or, on
    an untested rclpy, it is off with a reason); the probe's topic is gone afterwards."""
    from dpt_ros.ros import serialized

    _, _, node = ros_pair
    reason = serialized.FastPath.check(node)
    if serialized.rclpy_version() in serialized.TESTED_RCLPY:
        assert reason is None and serialized.FastPath.enabled
    else:
        assert reason and not serialized.FastPath.enabled
    names = [name for name, _ in node.get_topic_names_and_types()]
    assert not any(serialized._CHECK_TOPIC in name for name in names)
