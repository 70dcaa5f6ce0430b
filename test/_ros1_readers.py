"""Decode messages with the ROS tools users already have: cv_bridge and point_cloud2.

Run by the system Python (`/usr/bin/python3 test/_ros1_readers.py IN.npz OUT.npz`), where
Debian's python3-cv-bridge, python3-sensor-msgs and python3-roslib are installed (ROS 1
builds against numpy 1.x: they cannot load in the project's venv). IN holds the fields of
each message as the project publishes them (`img.<name>.<field>`, `pc.<name>.<field>`);
OUT gets what the real tools decode: `img.<name>` = CvBridge().imgmsg_to_cv2(msg,
"passthrough"); `pc.<name>.<field>` = one column of sensor_msgs.point_cloud2.read_points.
Only this script imports them; it never imports dpt_ros.
"""

import sys

import numpy as np
import sensor_msgs.point_cloud2 as point_cloud2
from cv_bridge import CvBridge
from sensor_msgs.msg import Image, PointCloud2, PointField


def _text(value) -> str:
    return str(value[()]) if isinstance(value, np.ndarray) else str(value)


def image(fields: dict) -> Image:
    msg = Image()
    msg.header.frame_id = _text(fields["frame_id"])
    msg.height, msg.width = int(fields["height"]), int(fields["width"])
    msg.encoding = _text(fields["encoding"])
    msg.is_bigendian = int(fields["is_bigendian"])
    msg.step = int(fields["step"])
    msg.data = fields["data"].tobytes()
    return msg


def cloud(fields: dict) -> PointCloud2:
    msg = PointCloud2()
    msg.header.frame_id = _text(fields["frame_id"])
    msg.height, msg.width = int(fields["height"]), int(fields["width"])
    msg.fields = [PointField(name=str(n), offset=int(o), datatype=int(d), count=int(c))
                  for n, o, d, c in zip(fields["field_names"], fields["field_offsets"],
                                        fields["field_datatypes"], fields["field_counts"])]
    msg.is_bigendian = bool(fields["is_bigendian"])
    msg.point_step, msg.row_step = int(fields["point_step"]), int(fields["row_step"])
    msg.data = fields["data"].tobytes()
    msg.is_dense = bool(fields["is_dense"])
    return msg


def main(src: str, dst: str) -> None:
    data = np.load(src, allow_pickle=False)
    groups: dict = {}
    for key in data.files:
        kind, name, field = key.split(".", 2)
        groups.setdefault((kind, name), {})[field] = data[key]
    out = {}
    bridge = CvBridge()
    for (kind, name), fields in groups.items():
        if kind == "img":
            out[f"img.{name}"] = np.asarray(bridge.imgmsg_to_cv2(image(fields), "passthrough"))
        else:
            msg = cloud(fields)
            names = [f.name for f in msg.fields]
            rows = list(point_cloud2.read_points(msg, field_names=names, skip_nans=False))
            table = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
            for i, field in enumerate(names):
                out[f"pc.{name}.{field}"] = table[:, i]
    np.savez(dst, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
