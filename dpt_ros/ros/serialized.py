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
If librcl or the handle's pointer is not there (another rclpy), `publish(bytes)` is used.
"""

from __future__ import annotations

import ctypes
import logging

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


def publish_buffer(pub, buffer: messages_cdr.Buffer) -> None:
    """Publish one serialized message (bytes or a C-contiguous uint8 array) on `pub`."""
    handle = pub.handle
    if _RCL_PUBLISH is None or not hasattr(type(handle), "pointer"):
        pub.publish(buffer if isinstance(buffer, bytes) else bytes(buffer))
        return
    view = np.frombuffer(buffer, np.uint8)  # keeps `buffer` alive across the call
    msg = _SerializedMessage(view.ctypes.data, view.nbytes, view.nbytes)
    with handle:  # rclpy's guard: the publisher cannot be destroyed during the call
        ret = _RCL_PUBLISH(handle.pointer, ctypes.byref(msg), None)
    if ret != 0:
        raise RuntimeError(f"rcl_publish_serialized_message failed (rcl_ret_t {ret}) "
                           f"on {pub.topic_name}")


def send_image(pub, array: np.ndarray, encoding: str, header, serialized: bool) -> None:
    """Publish an Image of `array`: serialized in place, or as a message object."""
    if serialized:
        publish_buffer(pub, messages_cdr.image_cdr(array, encoding, header, in_place=True))
    else:
        pub.publish(messages.image_msg(array, encoding, header))


def send_cloud(pub, packed: PackedCloud, header, serialized: bool) -> None:
    """Publish a PointCloud2 of `packed`: serialized in place, or as a message object."""
    if serialized:
        publish_buffer(pub, messages_cdr.pointcloud_cdr(packed, header, in_place=True))
    else:
        pub.publish(messages.pointcloud_msg(packed, header))
