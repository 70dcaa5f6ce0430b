"""Publishing images and clouds as ready serialized messages (`serialized_publish`).

rclpy 7.1.6 (Jazzy) publishes serialized data with `Publisher.publish(bytes)`: its C++
`publish_raw(std::string)` copies the bytes into a std::string, then rmw copies them into
the DDS sample, so a 14.7 MB cloud is still copied three times (join, string, sample) and
costs what the message-object path costs (measured: 3.1 vs 3.1 ms on the cpu-vm).
`rcl_publish_serialized_message`, the C function behind it, takes a pointer and a length:
called here directly (ctypes, on the `rcl_publisher_t` address rclpy exposes as
`handle.pointer`, inside rclpy's own handle guard) the only copy left is the DDS sample's,
and when the payload sits in a framed host buffer (`core.codecs.transfer`) the message is laid out
around it in place, so nothing else is copied at all. ctypes releases the GIL for the call.

That call reads structs laid out by hand and rclpy's private handle pointer: in an rclpy /
rcl build other than the ones it was tested with, a layout change would corrupt memory
instead of raising. So the fast path is used only when `FastPath.check` proves, at start-up,
that it matches the running rclpy: its version is one it was tested with (`TESTED_RCLPY`),
librcl and the handle's pointer are there, and one message published through it on a
private topic comes back byte for byte through an ordinary raw subscription. Otherwise the
node publishes through rclpy's own `publish(bytes)` (same messages, two more copies) and says
why, once.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from dpt_ros import messages
from dpt_ros.core.pointcloud.pack import PackedCloud
from dpt_ros.messages import cdr as messages_cdr

log = logging.getLogger(__name__)


class _Allocator(ctypes.Structure):
    """rcutils_allocator_t (unused by rcl_publish_serialized_message, but part of the
    struct it reads)."""

    _fields_ = [(name, ctypes.c_void_p) for name in
                ("allocate", "deallocate", "reallocate", "zero_allocate", "state")]


class _SerializedMessage(ctypes.Structure):
    """rcl_serialized_message_t = rcutils_uint8_array_t."""

    _fields_ = [("buffer", ctypes.c_void_p), ("buffer_length", ctypes.c_size_t),
                ("buffer_capacity", ctypes.c_size_t), ("allocator", _Allocator)]


def _load_rcl():
    """rcl_publish_serialized_message from the librcl rclpy has loaded, or None."""
    try:
        import rclpy.impl.implementation_singleton  # noqa: F401  (loads librcl; optional: a
        # build without it publishes bytes through rclpy, hence here, inside the try)

        lib = ctypes.CDLL("librcl.so")
        fn = lib.rcl_publish_serialized_message
    except (ImportError, OSError, AttributeError) as exc:
        log.info("rcl_publish_serialized_message not reachable (%s): using publish(bytes)",
                 exc)
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(_SerializedMessage), ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


_RCL_PUBLISH = _load_rcl()
# rclpy versions the ctypes layouts above were tested with (pip ros-jazzy-rclpy; Jazzy's rcl
# and rcutils of the same release): anything else publishes through rclpy
TESTED_RCLPY = ("7.1.6",)
_CHECK_TOPIC = "_dpt_serialized_publish_check"


def rclpy_version() -> str:
    """The running rclpy's version: the pip wheel's distribution, else the package.xml of a
    distro install (share/rclpy next to the Python tree), else 'unknown'."""
    for dist in ("ros-jazzy-rclpy", "rclpy"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    import rclpy  # deferred: loads librcl; this check runs only where the fast path is asked for

    for parent in Path(rclpy.__file__).resolve().parents:
        xml = parent / "share" / "rclpy" / "package.xml"
        if xml.is_file():
            text = xml.read_text()
            start = text.find("<version>")
            if start >= 0:
                return text[start + 9:text.find("</version>", start)].strip()
    return "unknown"


class FastPath:
    """Whether `rcl_publish_serialized_message` through ctypes may be used in this process
    (`check`); `publish_buffer` asks it. Off until checked."""

    enabled = False
    reason = "not checked yet"

    @classmethod
    def check(cls, node: Any, version: str | None = None) -> str | None:
        """Enable the fast path when it provably matches the running rclpy; else the reason
        it stays off (one sentence for the log). `version` overrides the detected one
        (tests)."""
        cls.enabled, cls.reason = False, ""
        version = version or rclpy_version()
        if version not in TESTED_RCLPY:
            cls.reason = (f"rclpy {version} is not a version it was tested with "
                          f"({', '.join(TESTED_RCLPY)})")
        elif _RCL_PUBLISH is None:
            cls.reason = "librcl's rcl_publish_serialized_message is not reachable"
        else:
            cls.reason = _round_trip(node) or ""
        cls.enabled = not cls.reason
        return cls.reason or None


def _round_trip(node: Any) -> str | None:
    """Publish one Image through the fast path on a private topic and take it back through a
    raw subscription of the same node; None when the bytes are identical."""
    # deferred with the rest of the fast path's start-up check (loads the message modules)
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
    topic = f"~/{_CHECK_TOPIC}"
    pub = node.create_publisher(Image, topic, qos)
    sub = node.create_subscription(Image, topic, lambda _msg: None, qos, raw=True)
    try:
        if not hasattr(type(pub.handle), "pointer"):
            return "this rclpy's publisher handle has no pointer"
        header = Header(frame_id="dpt_serialized_check")
        header.stamp.sec, header.stamp.nanosec = 1, 2
        pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
        sent = bytes(messages_cdr.image_cdr(pixels, "rgb8", header))
        deadline = time.monotonic() + 3.0
        while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        _publish_rcl(pub, sent)
        while time.monotonic() < deadline:
            with sub.handle:
                got = sub.handle.take_message(sub.msg_type, sub.raw)
            if got is not None:
                if bytes(got[0]) != sent:
                    return "a message published through it came back different"
                return None
            time.sleep(0.01)
        return "a message published through it did not come back within 3 s"
    except Exception as exc:  # any failure of the probe means: do not use it
        return f"the check raised {type(exc).__name__}: {exc}"
    finally:
        node.destroy_subscription(sub)
        node.destroy_publisher(pub)


def _publish_rcl(pub, buffer: messages_cdr.Buffer) -> None:
    view = np.frombuffer(buffer, np.uint8)  # keeps `buffer` alive across the call
    msg = _SerializedMessage(view.ctypes.data, view.nbytes, view.nbytes)
    handle = pub.handle
    with handle:  # rclpy's guard: the publisher cannot be destroyed during the call
        ret = _RCL_PUBLISH(handle.pointer, ctypes.byref(msg), None)
    if ret != 0:
        raise RuntimeError(f"rcl_publish_serialized_message failed (rcl_ret_t {ret}) "
                           f"on {pub.topic_name}")


def publish_buffer(pub, buffer: messages_cdr.Buffer) -> None:
    """Publish one serialized message (bytes or a C-contiguous uint8 array) on `pub`:
    through rcl directly when `FastPath` was proven, else through rclpy's publish(bytes)."""
    if not FastPath.enabled:
        pub.publish(buffer if isinstance(buffer, bytes) else bytes(buffer))
        return
    _publish_rcl(pub, buffer)


def silent(pub) -> bool:
    """A lifecycle publisher of an inactive node: nothing may go out (the rcl call would
    bypass its gate)."""
    return not getattr(pub, "is_activated", True)


def send_image(pub, array: np.ndarray, encoding: str, header, serialized: bool) -> None:
    """Publish an Image of `array`: serialized in place, or as a message object."""
    if silent(pub):
        return
    if serialized:
        publish_buffer(pub, messages_cdr.image_cdr(array, encoding, header, in_place=True))
    else:
        pub.publish(messages.image_msg(array, encoding, header))


def send_cloud(pub, packed: PackedCloud, header, serialized: bool) -> None:
    """Publish a PointCloud2 of `packed`: serialized in place, or as a message object."""
    if silent(pub):
        return
    if serialized:
        publish_buffer(pub, messages_cdr.pointcloud_cdr(packed, header, in_place=True))
    else:
        pub.publish(messages.pointcloud_msg(packed, header))
