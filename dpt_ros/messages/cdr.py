"""Serialized (CDR) sensor_msgs/Image and PointCloud2, built without a message object.

`Publisher.publish(bytes)` (rclpy's raw publish) hands a ready serialized message to the
middleware, skipping the two steps that dominate the object path for multi-MB payloads:
rclpy's conversion of the Python message into its C struct (a copy of `data`) and the
middleware's serialization of that struct (another copy). Both messages are a small header,
one uint8[] payload and (PointCloud2) one trailing byte, so the layout is fixed once the
sizes and names are known: everything but the stamp is cached per layout, and the payload
is copied once, straight from the host buffer the pipeline produced (`bytes.join` reads it
through the buffer protocol).

Layout: XCDR1 (what rmw_fastrtps writes for these types): a 4-byte encapsulation header,
then fields in declaration order, each aligned to its size (8-byte types to 8) relative to
the end of that header; strings are uint32 length (with the NUL) + UTF-8 bytes + NUL;
sequences are uint32 count + elements. Padding bytes are zero here (rmw leaves them
uninitialised; readers never look at them).

The message-object path (`dpt_ros.messages`) stays for tests, the bag tool and as the
fallback; `test/messages/test_cdr.py` proves both paths give the same message.
"""

from __future__ import annotations

import struct
import sys
from functools import lru_cache

import numpy as np

from dpt_ros.core.codecs.transfer import host_frame
from dpt_ros.core.pointcloud.pack import PackedCloud
from dpt_ros.messages.convert import image_layout

_NATIVE_BIG = sys.byteorder == "big"
# encapsulation kind (big-endian on the wire), options 0: CDR_BE = 0, CDR_LE = 1
Buffer = bytes | np.ndarray  # a serialized message: new bytes, or a uint8 view
_ENCAPSULATION = {False: b"\x00\x01\x00\x00", True: b"\x00\x00\x00\x00"}
_LAYOUT_CACHE = 256  # distinct (size, frame_id, encoding, fields) layouts kept


class _Writer:
    """Appends CDR primitives with alignment relative to the stream origin."""

    def __init__(self, big: bool, start: int) -> None:
        self._order = ">" if big else "<"
        self.parts: list[bytes] = []
        self.pos = start  # bytes since the origin (the end of the encapsulation header)

    def _put(self, code: str, value: int) -> None:
        """One primitive (a struct code), aligned to its own size."""
        size = struct.calcsize(code)
        self.parts.append(b"\x00" * (-self.pos % size))
        self.pos += -self.pos % size + size
        self.parts.append(struct.pack(self._order + code, value))

    def u8(self, value: int) -> None:
        self._put("B", value)

    def u32(self, value: int) -> None:
        self._put("I", value)

    def string(self, text: str) -> None:
        # rosidl copies a str as UTF-8 up to its first NUL (rosidl_runtime_c String assign)
        data = text.encode("utf-8").split(b"\x00", 1)[0] + b"\x00"
        self.u32(len(data))
        self.parts.append(data)
        self.pos += len(data)

    def value(self) -> bytes:
        return b"".join(self.parts)


@lru_cache(maxsize=_LAYOUT_CACHE)
def _image_tail(frame_id: str, height: int, width: int, encoding: str, is_bigendian: int,
                step: int, nbytes: int, big: bool) -> bytes:
    """Everything of a serialized Image between the stamp and the payload."""
    w = _Writer(big, start=8)
    w.string(frame_id)  # std_msgs/Header after its stamp (written per message)
    w.u32(height)
    w.u32(width)
    w.string(encoding)
    w.u8(is_bigendian)
    w.u32(step)
    w.u32(nbytes)
    return w.value()


@lru_cache(maxsize=_LAYOUT_CACHE)
def _cloud_tail(frame_id: str, height: int, width: int,
                fields: tuple[tuple[str, int, int, int], ...], is_bigendian: bool,
                point_step: int, row_step: int, nbytes: int, big: bool) -> bytes:
    """Everything of a serialized PointCloud2 between the stamp and the payload."""
    w = _Writer(big, start=8)
    w.string(frame_id)  # std_msgs/Header after its stamp (written per message)
    w.u32(height)
    w.u32(width)
    w.u32(len(fields))
    for name, offset, datatype, count in fields:  # sensor_msgs/PointField
        w.string(name)
        w.u32(offset)
        w.u8(datatype)
        w.u32(count)
    w.u8(int(is_bigendian))
    w.u32(point_step)
    w.u32(row_step)
    w.u32(nbytes)
    return w.value()


def _stamp(header, big: bool) -> bytes:
    stamp = header.stamp
    return struct.pack(">iI" if big else "<iI", stamp.sec, stamp.nanosec)


def _payload(array: np.ndarray) -> np.ndarray:
    """The array's bytes, flat, without a copy when it is C-contiguous (what the pipeline
    hands over); other layouts are made contiguous first, as the object path does."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def _assemble(head: bytes, array: np.ndarray, data: np.ndarray, tail: bytes,
              in_place: bool) -> Buffer:
    """head + data + tail: written around `array` in its framed host buffer when it has one
    (no copy of the payload; the result views that buffer and is valid until the next call
    for the same array), else joined into new bytes (one copy)."""
    frame = host_frame(array) if in_place else None
    if frame is not None:
        whole, offset = frame
        start, end = offset - len(head), offset + data.nbytes + len(tail)
        if start >= 0 and end <= whole.size:
            whole[start:offset] = np.frombuffer(head, np.uint8)
            whole[offset + data.nbytes:end] = np.frombuffer(tail, np.uint8)
            return whole[start:end]
    return b"".join((head, data, tail))


def image_cdr(array: np.ndarray, encoding: str, header, big: bool = _NATIVE_BIG,
              in_place: bool = False) -> Buffer:
    """The serialized Image that `messages.image_msg(array, encoding, header)` would give.

    `big` picks the CDR byte order of the header fields (native by default, as rmw does);
    the payload's own byte order is the array's and goes into `is_bigendian`. `in_place`:
    lay the message out around the payload when it sits in a framed host buffer
    (`core.codecs.transfer`), returning a uint8 view of it; else (and by default) new bytes.
    """
    height, width, bigendian, step = image_layout(array, encoding)
    data = _payload(array)
    tail = _image_tail(header.frame_id, height, width, encoding, bigendian, step,
                       data.nbytes, big)
    return _assemble(_ENCAPSULATION[big] + _stamp(header, big) + tail, array, data, b"",
                     in_place)


def pointcloud_cdr(packed: PackedCloud, header, big: bool = _NATIVE_BIG,
                   in_place: bool = False) -> Buffer:
    """The serialized PointCloud2 that `messages.pointcloud_msg(packed, header)` would give
    (`big`, `in_place`: as for `image_cdr`)."""
    data = _payload(packed.data)
    fields = tuple((name, int(offset), int(datatype), 1)
                   for name, offset, datatype in packed.fields)
    tail = _cloud_tail(header.frame_id, int(packed.height), int(packed.width), fields,
                       _NATIVE_BIG, int(packed.point_step), int(packed.row_step),
                       data.nbytes, big)
    return _assemble(_ENCAPSULATION[big] + _stamp(header, big) + tail, packed.data, data,
                     b"\x01" if packed.is_dense else b"\x00", in_place)
