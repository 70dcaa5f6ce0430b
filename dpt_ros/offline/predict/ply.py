"""PointCloud2 payloads (PackedCloud) as binary little-endian PLY files.

The cloud is the one the node would publish, so it is read back from its byte layout rather
than recomputed: invalid (NaN) points are dropped and the packed 'rgb' float becomes
red/green/blue bytes, which is what PLY viewers expect.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dpt_ros.core.pointcloud.pack import PackedCloud

# sensor_msgs/PointField datatype -> (numpy little-endian type, PLY type)
POINTFIELD_TYPES = {
    1: ("i1", "char"),
    2: ("u1", "uchar"),
    3: ("<i2", "short"),
    4: ("<u2", "ushort"),
    5: ("<i4", "int"),
    6: ("<u4", "uint"),
    7: ("<f4", "float"),
    8: ("<f8", "double"),
}


def cloud_points(cloud: PackedCloud) -> np.ndarray:
    """The cloud's points as a structured array (one record per point, padding dropped)."""
    names, formats, offsets = [], [], []
    for name, offset, datatype in cloud.fields:
        names.append(name)
        formats.append(POINTFIELD_TYPES[datatype][0])
        offsets.append(offset)
    dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": cloud.point_step}
    )
    rows = np.asarray(cloud.data, dtype=np.uint8).reshape(cloud.height, cloud.row_step)
    packed = np.ascontiguousarray(rows[:, : cloud.width * cloud.point_step])
    return packed.view(dtype).reshape(-1)


def ply_vertices(cloud: PackedCloud) -> np.ndarray:
    """Finite points as a packed structured array: x, y, z [, red, green, blue] [, label]."""
    points = cloud_points(cloud)
    keep = np.isfinite(points["x"]) & np.isfinite(points["y"]) & np.isfinite(points["z"])
    points = points[keep]
    fields: list[tuple[str, str]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    names = points.dtype.names or ()
    if "rgb" in names:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if "label" in names:
        fields.append(("label", points.dtype["label"].str))
    out = np.empty(len(points), dtype=np.dtype(fields))
    for axis in ("x", "y", "z"):
        out[axis] = points[axis]
    if "rgb" in names:
        # PCL convention: 0x00RRGGBB stored in the bytes of a float32 (or uint32).
        packed = np.ascontiguousarray(points["rgb"]).view("<u4")
        out["red"] = (packed >> 16) & 0xFF
        out["green"] = (packed >> 8) & 0xFF
        out["blue"] = packed & 0xFF
    if "label" in names:
        out["label"] = points["label"]
    return out


def ply_header(vertices: np.ndarray) -> bytes:
    types = {np.dtype(np_type).str: ply for np_type, ply in POINTFIELD_TYPES.values()}
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {len(vertices)}"]
    for name in vertices.dtype.names or ():
        lines.append(f"property {types[vertices.dtype[name].str]} {name}")
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def write_ply(cloud: PackedCloud, path: str | Path) -> int:
    """Write `cloud` to `path` (atomically: temp file + rename); returns the point count."""
    vertices = ply_vertices(cloud)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(ply_header(vertices))
        f.write(vertices.tobytes())
    os.replace(tmp, path)
    return len(vertices)
