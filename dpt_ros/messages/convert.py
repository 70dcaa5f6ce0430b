"""numpy ↔ sensor_msgs conversion; large uint8[] fields are filled straight from buffers.

How a uint8[] field is set matters (rclpy Jazzy 7.1.6, generated sensor_msgs 5.3.6; 0.9 MB /
6.1 MB payloads on a 2-core EPYC VM; `benchmarks/bench_node.py --fill-methods` re-measures):

- `msg.data = bytes`: 0.06 / 0.6 ms by default, but 115 / 450-1000 ms when field checks are
  on (ROS_PYTHON_CHECK_FIELDS=1): the setter then tests every element in Python.
- `msg.data = array.array('B', ndarray_or_memoryview)`: 50-60 / 200-630 ms. array.array only
  memcpy's a bytes/bytearray initialiser; any other buffer is iterated element by element.
- `msg.data = ndarray`: rejected by the checks; unchecked, the setter's `array('B', value)`
  iterates it element by element as above. A Python list is element-wise in every case.
- `a = array('B'); a.frombytes(buffer)`: one memcpy. Through the setter it costs a second
  copy when checks are off (`array('B', a)`: 0.05 / 0.8 ms); stored in the `_data` slot that
  the generated property reads it is one copy in total, 0.02 / 0.2 ms, checks on or off.
  That is what `_fill_uint8` does. The message stays well formed (the field holds an
  `array('B')`, as the setter would leave it) and serialization reads it through the buffer
  protocol (one more memcpy, in C).

Reading is free: `np.frombuffer(msg.data, np.uint8)` views the received array in place.
"""

from __future__ import annotations

import array as pyarray
import sys
from collections.abc import Callable, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import (
    CameraInfo,
    CompressedImage,
    Image,
    PointCloud2,
    PointField,
    RegionOfInterest,
)
from std_msgs.msg import Header

from dpt_ros.config.settings import DEFAULT_DECODE, DecodeOptions
from dpt_ros.core.alignment import Extrinsic, FrameReference
from dpt_ros.core.camera import camera_info
from dpt_ros.core.camera.distortion import COEFFICIENTS, MODELS
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.codecs.image_codec import (
    RawImage,
    decode_compressed,
    decode_image,
    parse_image,
    row_view,
)
from dpt_ros.core.codecs.reference_codec import (
    decode_compressed_depth,
    parse_depth_reference,
    parse_points_reference,
)
from dpt_ros.core.errors import BadInput
from dpt_ros.core.pipeline.frame import Frame
from dpt_ros.core.pointcloud.pack import (
    POINTFIELD_FLOAT32,
    POINTFIELD_FLOAT64,
    POINTFIELD_INT8,
    POINTFIELD_INT16,
    POINTFIELD_INT32,
    POINTFIELD_UINT8,
    POINTFIELD_UINT16,
    POINTFIELD_UINT32,
    PackedCloud,
)

# encoding → (dtype, channels) accepted by image_msg
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "32FC1": (np.dtype(np.float32), 1),
    "mono8": (np.dtype(np.uint8), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgb8": (np.dtype(np.uint8), 3),
}


# one-channel Image encodings -> sample type (image_array)
_SAMPLE_DTYPES = {"mono8": np.dtype(np.uint8), "8UC1": np.dtype(np.uint8),
                  "mono16": np.dtype(np.uint16), "16UC1": np.dtype(np.uint16),
                  "32FC1": np.dtype(np.float32)}
# PointField datatype -> numpy type (cloud_fields)
_FIELD_TYPES = {POINTFIELD_INT8: np.int8, POINTFIELD_UINT8: np.uint8,
                POINTFIELD_INT16: np.int16, POINTFIELD_UINT16: np.uint16,
                POINTFIELD_INT32: np.int32, POINTFIELD_UINT32: np.uint32,
                POINTFIELD_FLOAT32: np.float32, POINTFIELD_FLOAT64: np.float64}


def _fill_uint8(msg: object, field: str, buffer: np.ndarray) -> None:
    """Set a uint8[] message field from a buffer with one memcpy (see the module notes)."""
    contiguous = np.ascontiguousarray(buffer)
    data = pyarray.array("B")
    data.frombytes(contiguous.reshape(-1).view(np.uint8))
    slot = "_" + field
    if slot in getattr(type(msg), "__slots__", ()):
        setattr(msg, slot, data)
    else:  # not a rosidl-generated class: the public setter accepts array('B') as is
        setattr(msg, field, data)


def _is_bigendian(dtype: np.dtype) -> bool:
    if dtype.byteorder == ">":
        return True
    if dtype.byteorder == "<":
        return False
    return sys.byteorder == "big"  # native ('=') or not applicable ('|')


def header_copy(header: Header) -> Header:
    """An independent copy of a header (messages published together must not share one)."""
    return Header(
        stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec),
        frame_id=header.frame_id,
    )


def rgb_from_image_msg(msg: Image, options: DecodeOptions = DEFAULT_DECODE) -> np.ndarray:
    """RGB uint8 (H, W, 3) from a raw Image, decoded on the host (YUV and Bayer included);
    raises BadInput. May be a view of `msg.data`."""
    return decode_image(msg.data, msg.encoding, msg.width, msg.height, msg.step,
                        msg.is_bigendian, options)


def frame_from_image_msg(msg: Image, options: DecodeOptions = DEFAULT_DECODE) -> Frame:
    """The pipeline's Frame of a raw Image (no intrinsics yet): host RGB, or, for YUV 4:2:2
    and Bayer, the sensor rows that Pipeline converts on the model's device. Raises BadInput."""
    image = parse_image(msg.data, msg.encoding, msg.width, msg.height, msg.step,
                        msg.is_bigendian, options)
    return Frame(raw=image) if isinstance(image, RawImage) else Frame(image)


def frame_from_compressed_msg(
    msg: CompressedImage, options: DecodeOptions = DEFAULT_DECODE
) -> Frame:
    """The pipeline's Frame of a CompressedImage (decoded on the host); raises BadInput."""
    return Frame(decode_compressed(msg.data, msg.format, options))


def decode_frame(msg: Image | CompressedImage, options: DecodeOptions,
                 camera: Callable[[int, int], Intrinsics]) -> Frame:
    """An input image as the pipeline's Frame, the one decoder of the node and the bag tool:
    decoded (`frame_from_image_msg` / `frame_from_compressed_msg`), its camera model
    `camera(width, height)` (camera_info or parameter intrinsics) and its stamp (seconds).
    Raises BadInput."""
    if isinstance(msg, CompressedImage):
        frame = frame_from_compressed_msg(msg, options)
    else:  # YUV / Bayer stay sensor bytes here: converted on the model's device
        frame = frame_from_image_msg(msg, options)
    height, width = frame.size
    frame.intrinsics = camera(width, height)
    frame.stamp = camera_info.stamp_ns(msg.header) / 1e9
    return frame


def image_array(msg: Image) -> np.ndarray:
    """A one-channel Image's samples as published: (H, W) uint8 (mono8, 8UC1), uint16
    (mono16, 16UC1) or float32 (32FC1: depth in metres), native byte order, row padding cut
    off; may be a view of `msg.data`. Class ids and depth read back this way (colour images:
    `rgb_from_image_msg`). Raises BadInput."""
    dtype = _SAMPLE_DTYPES.get(msg.encoding)
    if dtype is None:
        raise BadInput("encoding", f"{msg.encoding!r} is not a one-channel encoding "
                                   f"({', '.join(_SAMPLE_DTYPES)})")
    if msg.is_bigendian:
        dtype = dtype.newbyteorder(">")
    width, height = int(msg.width), int(msg.height)
    rows = row_view(msg.data, width * dtype.itemsize, height, int(msg.step),
                    f"{msg.encoding} {width}x{height}")
    samples = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    return samples.astype(dtype.newbyteorder("="), copy=False)


def cloud_fields(msg: PointCloud2, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named fields of every point of a PointCloud2, (width * height,) each in row-major
    order, native byte order, invalid (NaN) points kept so that the columns stay aligned with
    each other and with an organised cloud's pixels; a field the cloud lacks is left out.
    Raises BadInput."""
    layout = {f.name: f for f in msg.fields}
    width, height, step = int(msg.width), int(msg.height), int(msg.point_step)
    rows = row_view(msg.data, width * step, height, int(msg.row_step),
                    f"PointCloud2 {width}x{height}")
    points = np.ascontiguousarray(rows).reshape(width * height, step)
    out: dict[str, np.ndarray] = {}
    for name in names:
        field = layout.get(name)
        if field is None:
            continue
        dtype = np.dtype(_FIELD_TYPES[field.datatype])
        if msg.is_bigendian:
            dtype = dtype.newbyteorder(">")
        column = np.ascontiguousarray(points[:, field.offset:field.offset + dtype.itemsize])
        out[name] = column.view(dtype)[:, 0].astype(dtype.newbyteorder("="), copy=False)
    return out


def unsupported_lens(intr: Intrinsics | None, info_topic: str) -> str | None:
    """Why a frame with this camera model gets no point cloud (a lens model we cannot invert:
    depth is still computed), or None when its lens is supported (or the model estimates the
    camera: `intr` None)."""
    if intr is None or intr.supported:
        return None
    return (f"{info_topic}: distortion_model '{intr.distortion_model}' with D = "
            f"{list(intr.d)} cannot be inverted (supported: {', '.join(MODELS)})")


def image_layout(array: np.ndarray, encoding: str) -> tuple[int, int, int, int]:
    """(height, width, is_bigendian, step) of the Image for a (H, W) or (H, W, 3) array:
    step = width * bytes per pixel (no padding); the array's byte order is kept and reported
    in `is_bigendian` (native unless the dtype says otherwise). Raises ValueError for an
    array that does not fit `encoding`. Shared by both publish paths (`messages.cdr`)."""
    if encoding not in IMAGE_ENCODINGS:
        known = ", ".join(IMAGE_ENCODINGS)
        raise ValueError(f"unsupported encoding {encoding!r}; expected one of {known}")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    want_shape = "(H, W)" if channels == 1 else f"(H, W, {channels})"
    shape_ok = array.ndim == 2 if channels == 1 else array.ndim == 3 and array.shape[2] == channels
    if not shape_ok or array.dtype.newbyteorder("=") != dtype:
        raise ValueError(
            f"{encoding} needs a {dtype} array of shape {want_shape}, "
            f"got {array.dtype} {array.shape}"
        )
    height, width = array.shape[:2]
    return height, width, int(_is_bigendian(array.dtype)), width * channels * dtype.itemsize


def image_msg(array: np.ndarray, encoding: str, header: Header) -> Image:
    """An Image for a (H, W) or (H, W, 3) array (layout: `image_layout`)."""
    height, width, is_bigendian, step = image_layout(array, encoding)
    msg = Image(
        header=header_copy(header),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=step,
    )
    _fill_uint8(msg, "data", array)
    return msg


def camera_info_msg(intr: Intrinsics, header: Header) -> CameraInfo:
    """A CameraInfo for a camera model we made (synthetic camera, parameter intrinsics):
    K from `intr`, R identity, P = [K | 0], D and its model from `intr` (plumb_bob zeros for
    an undistorted camera)."""
    model = intr.distortion_model or "plumb_bob"
    msg = CameraInfo(
        header=header_copy(header),
        width=int(intr.width),
        height=int(intr.height),
        distortion_model=model,
    )
    msg.k = np.array([intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0])
    msg.r = np.eye(3).reshape(-1)
    msg.p = np.array(
        [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    )
    d = intr.d if intr.distortion_model else ()
    d = tuple(d) + (0.0,) * (COEFFICIENTS.get(model, 0) - len(d))
    msg.d = pyarray.array("d", d)
    return msg


def republished_camera_info(
    info: CameraInfo, header: Header, source: tuple[int, int], size: tuple[int, int]
) -> CameraInfo:
    """The input's CameraInfo for an output image with `header`: the input's own fields
    (distortion model, D, K, R, P, binning, ROI) when the output has the input image's size
    `source` (width, height), else the same camera rescaled to `size`
    (core.camera.camera_info.scaled_fields)."""
    msg = CameraInfo(header=header_copy(header))
    if tuple(size) == tuple(source):
        for name in ("height", "width", "distortion_model", "binning_x", "binning_y"):
            setattr(msg, name, getattr(info, name))
        msg.d, msg.k, msg.r, msg.p = info.d, info.k, info.r, info.p
        msg.roi = RegionOfInterest(
            x_offset=info.roi.x_offset, y_offset=info.roi.y_offset, height=info.roi.height,
            width=info.roi.width, do_rectify=info.roi.do_rectify,
        )
        return msg
    fields = camera_info.scaled_fields(info, source, size)
    msg.width, msg.height = fields["width"], fields["height"]
    msg.distortion_model = fields["distortion_model"]
    msg.d = pyarray.array("d", fields["d"])
    msg.k, msg.r, msg.p = (np.array(fields[n]) for n in ("k", "r", "p"))
    return msg


def depth_camera_info(
    info: CameraInfo | None, intr: Intrinsics, header: Header, source: tuple[int, int]
) -> CameraInfo:
    """`~/depth/camera_info` for depth images described by `intr` (the pipeline's, scaled to
    the output size) from an input image of `source` (width, height): the input's own
    CameraInfo (rescaled when the sizes differ), or — for parameter intrinsics, `info` None —
    a CameraInfo of those."""
    if info is None:
        return camera_info_msg(intr, header)
    return republished_camera_info(info, header, source, (intr.width, intr.height))


def pointcloud_msg(packed: PackedCloud, header: Header) -> PointCloud2:
    """A PointCloud2 around a packed payload (native byte order, as pack_cloud builds it)."""
    msg = PointCloud2(
        header=header_copy(header),
        height=int(packed.height),
        width=int(packed.width),
        fields=[
            PointField(name=name, offset=offset, datatype=datatype, count=1)
            for name, offset, datatype in packed.fields
        ],
        is_bigendian=sys.byteorder == "big",
        point_step=int(packed.point_step),
        row_step=int(packed.row_step),
        is_dense=bool(packed.is_dense),
    )
    _fill_uint8(msg, "data", packed.data)
    return msg


def frame_reference(depth: Image | CompressedImage | None, points: PointCloud2 | None,
                    extrinsic: Extrinsic | None, max_pixels: int, image_frame: str = "",
                    depth_topic: str = "the depth reference") -> FrameReference | None:
    """The metric reference of a frame from its paired `depth_reference` Image and/or
    `points_reference` PointCloud2 (`core.codecs.reference_codec`); raises BadInput('reference'),
    also for a depth reference whose frame_id is not the image's `image_frame` (a depth
    reference must be registered to the camera; an empty frame_id on either is not checked).
    `depth_topic` names the depth reference in that message."""
    if depth is None and points is None:
        return None
    if depth is not None and depth.header.frame_id and image_frame and (
            depth.header.frame_id != image_frame):
        raise BadInput("reference", f"{depth_topic} has frame_id '{depth.header.frame_id}', "
                       f"the image '{image_frame}': a depth reference must be registered to "
                       "the camera (same optical frame)")
    ref = FrameReference(extrinsic=extrinsic)
    if depth is not None and hasattr(depth, "format"):  # <depth>/compressedDepth
        ref.depth, ref.encoding = decode_compressed_depth(depth.format, depth.data, max_pixels)
    elif depth is not None:
        ref.depth = parse_depth_reference(depth.data, depth.encoding, depth.width,
                                          depth.height, depth.step, depth.is_bigendian,
                                          max_pixels)
        ref.encoding = depth.encoding
    if points is not None:
        fields = [(f.name, f.offset, f.datatype, f.count) for f in points.fields]
        ref.points = parse_points_reference(points.data, fields, points.width, points.height,
                                            points.point_step, points.row_step,
                                            points.is_bigendian)
    return ref


def xyz_cloud_msg(points: np.ndarray, header: Header) -> PointCloud2:
    """An unorganised x/y/z float32 PointCloud2 of (N, 3) points (a LiDAR scan)."""
    xyz = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    msg = PointCloud2(
        header=header_copy(header), height=1, width=int(xyz.shape[0]),
        fields=[PointField(name=n, offset=4 * i, datatype=POINTFIELD_FLOAT32, count=1)
                for i, n in enumerate("xyz")],
        is_bigendian=sys.byteorder == "big", point_step=12, row_step=12 * int(xyz.shape[0]),
        is_dense=bool(np.isfinite(xyz).all()),
    )
    _fill_uint8(msg, "data", xyz)
    return msg
