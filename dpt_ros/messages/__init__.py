"""ROS messages ↔ the core's arrays, for the node and the bag tool (the only ROS-aware layer
below them): `convert` builds and reads `sensor_msgs` objects, filled straight from buffers;
`cdr` writes the same Image / PointCloud2 as serialized CDR around the device→host buffer.

The conversion functions are re-exported here: `from dpt_ros import messages;
messages.image_msg(...)`.
"""

from dpt_ros.messages.convert import (
    camera_info_msg,
    cloud_fields,
    decode_frame,
    depth_camera_info,
    frame_from_compressed_msg,
    frame_from_image_msg,
    frame_reference,
    header_copy,
    image_array,
    image_layout,
    image_msg,
    pointcloud_msg,
    republished_camera_info,
    rgb_from_image_msg,
    unsupported_lens,
    xyz_cloud_msg,
)

__all__ = [
    "camera_info_msg",
    "cloud_fields",
    "decode_frame",
    "depth_camera_info",
    "frame_from_compressed_msg",
    "frame_from_image_msg",
    "frame_reference",
    "header_copy",
    "image_array",
    "image_layout",
    "image_msg",
    "pointcloud_msg",
    "republished_camera_info",
    "rgb_from_image_msg",
    "unsupported_lens",
    "xyz_cloud_msg",
]
