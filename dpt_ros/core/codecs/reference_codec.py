"""Metric reference messages' buffers → arrays: a `depth_reference` image (32FC1 metres or
16UC1 millimetres) and a `points_reference` cloud (x/y/z of a PointCloud2).

No ROS import: the arguments are the message fields, so the node (rclpy messages) and the
bag tool (deserialised bag messages) read references the same way. Everything is a numpy
view or one vectorised copy; every problem is a `BadInput("reference", ...)` that costs the
frame its reference, never the frame.
"""

from __future__ import annotations

import numpy as np

from dpt_ros.core.alignment.reference import DEPTH_ENCODINGS
from dpt_ros.core.codecs.image_codec import row_view
from dpt_ros.core.errors import BadInput

_DEPTH_DTYPES = {"32FC1": np.dtype("<f4"), "16UC1": np.dtype("<u2")}
# PointField datatypes x/y/z may have (FLOAT32, FLOAT64)
_POINT_TYPES = {7: "f4", 8: "f8"}


def _bad(message: str) -> BadInput:
    return BadInput("reference", message)


def parse_depth_reference(data: object, encoding: str, width: int, height: int, step: int,
                          is_bigendian: int | bool, max_pixels: int) -> np.ndarray:
    """(H, W) float32 metres (32FC1) or uint16 millimetres (16UC1), native byte order,
    row padding cut off. `core.alignment.depth_in_metres` makes metres of either on the
    model's device (the millimetres travel at half the size)."""
    if encoding not in DEPTH_ENCODINGS:
        raise _bad(f"depth_reference encoding {encoding!r} is not one of "
                   f"{', '.join(DEPTH_ENCODINGS)} (metres / millimetres)")
    width, height, step = int(width), int(height), int(step)
    if width <= 0 or height <= 0:
        raise _bad(f"depth_reference size {width}x{height} is empty")
    if width * height > max_pixels:
        raise _bad(f"depth_reference {width}x{height} has more than input.max_pixels "
                   f"{max_pixels} pixels")
    dtype = _DEPTH_DTYPES[encoding]
    if is_bigendian:
        dtype = dtype.newbyteorder(">")
    rows = row_view(data, width * dtype.itemsize, height, step,
                    f"depth_reference {encoding} {width}x{height}", "reference")
    return np.ascontiguousarray(rows).view(dtype).reshape(height, width).astype(
        dtype.newbyteorder("="), copy=False)


# compressed_depth_image_transport's payload: ConfigHeader {int32 format; float
# depthParam[2]} (little-endian, 12 bytes), then the PNG
_CD_HEADER = np.dtype([("format", "<i4"), ("quant_a", "<f4"), ("quant_b", "<f4")])


def decode_compressed_depth(fmt: str, data: object, max_pixels: int) -> tuple[np.ndarray, str]:
    """A `<depth>/compressedDepth` CompressedImage (image_transport's compressed_depth
    plugin, png) → ((H, W) array, encoding) as `parse_depth_reference` returns them:
    16UC1 millimetres as sent; 32FC1 from the plugin's inverse-depth quantisation,
    ``depth = quant_a / (v - quant_b)`` for v > 0 (0 = no depth: NaN). The size is checked
    against `max_pixels` before the PNG is decoded."""
    import io

    from PIL import Image as PILImage

    encoding = fmt.split(";")[0].strip()
    if encoding not in DEPTH_ENCODINGS:
        raise _bad(f"compressedDepth format {fmt!r}: encoding {encoding!r} is not one of "
                   f"{', '.join(DEPTH_ENCODINGS)}")
    if "compressedDepth" not in fmt or "rvl" in fmt:
        raise _bad(f"compressedDepth format {fmt!r}: only the png variant is read")
    raw = memoryview(bytes(data) if not isinstance(data, bytes | bytearray) else data)
    if len(raw) <= _CD_HEADER.itemsize:
        raise _bad(f"compressedDepth payload of {len(raw)} bytes has no image")
    header = np.frombuffer(raw[:_CD_HEADER.itemsize], _CD_HEADER)[0]
    try:
        png = PILImage.open(io.BytesIO(raw[_CD_HEADER.itemsize:]))
        width, height = png.size
        if width * height > max_pixels:
            raise _bad(f"compressedDepth {width}x{height} has more than input.max_pixels "
                       f"{max_pixels} pixels")
        values = np.asarray(png, dtype=np.uint16) if png.mode.startswith("I") else None
    except BadInput:
        raise
    except Exception as exc:  # whatever the decoder raises costs the frame its reference
        raise _bad(f"compressedDepth png could not be decoded: {exc}") from exc
    if values is None or values.shape != (height, width):
        raise _bad(f"compressedDepth png of mode {png.mode!r} is not 16-bit grey")
    if encoding == "16UC1":
        return values, encoding
    quant_a, quant_b = float(header["quant_a"]), float(header["quant_b"])
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = (quant_a / (values.astype(np.float32) - np.float32(quant_b))).astype(np.float32)
    depth[values == 0] = np.nan
    return depth, encoding


def parse_points_reference(data: object, fields: list[tuple[str, int, int, int]],
                           width: int, height: int, point_step: int, row_step: int,
                           is_bigendian: int | bool) -> np.ndarray:
    """(N, 3) float32 x/y/z of a PointCloud2's points, non-finite points dropped.

    `fields`: (name, offset, datatype, count) of the message's PointFields; x, y and z must
    be FLOAT32 or FLOAT64 with count 1 (what LiDAR drivers publish; other fields are
    ignored)."""
    layout = {name: (offset, datatype, count) for name, offset, datatype, count in fields}
    missing = [n for n in "xyz" if n not in layout]
    if missing:
        raise _bad(f"points_reference has no {'/'.join(missing)} field "
                   f"(fields: {', '.join(layout) or 'none'})")
    width, height, point_step, row_step = int(width), int(height), int(point_step), int(row_step)
    order = ">" if is_bigendian else "<"
    formats, offsets = [], []
    for name in "xyz":
        offset, datatype, count = layout[name]
        if datatype not in _POINT_TYPES or count not in (0, 1):
            raise _bad(f"points_reference field {name} has datatype {datatype} count {count}; "
                       "expected FLOAT32 or FLOAT64, count 1")
        size = int(_POINT_TYPES[datatype][1])
        if offset < 0 or offset + size > point_step:
            raise _bad(f"points_reference field {name} at offset {offset} does not fit "
                       f"point_step {point_step}")
        formats.append(order + _POINT_TYPES[datatype])
        offsets.append(int(offset))
    if width * height == 0:
        return np.zeros((0, 3), np.float32)
    rows = row_view(data, width * point_step, height, row_step,
                    f"points_reference {width}x{height} (row_step)", "reference")
    point = np.dtype({"names": list("xyz"), "formats": formats, "offsets": offsets,
                      "itemsize": point_step})
    pts = np.ascontiguousarray(rows).view(point).reshape(-1)
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], axis=-1).astype(np.float32, copy=False)
    return xyz[np.isfinite(xyz).all(axis=1)]
