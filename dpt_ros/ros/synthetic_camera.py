"""`synthetic_camera`: a camera flying through the procedural world, with ground truth.

Publishes (relative names, so `__ns:=/camera` gives /camera/image_raw etc.), all with the same
header (stamp, `frame_id`):
- `image_raw` (sensor_msgs/Image, rgb8) and `camera_info` (pinhole, no distortion)
- `depth_gt` (32FC1, Z-depth in metres, REP 118) and `labels_gt` (mono8 class ids:
  0 floor, 1 wall, 2 ceiling, 3 box, 4 sphere, 5 cylinder)
- `pose` (geometry_msgs/PoseStamped, header.frame_id = `world_frame`): the optical frame in
  the world, so consumers can compare points with the exact scene surfaces.
Outputs use reliable QoS: the pip Fast DDS silently drops best-effort messages of about 1 MB
and more between processes (a 640x480 rgb8 image is 0.9 MB, its depth 1.2 MB).
"""

from __future__ import annotations

import sys

import rclpy
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from dpt_ros.messages import camera_info_msg, image_msg
from dpt_ros.synthetic import Renderer, make_world, path_pose

OUTPUT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=2,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


def _float(desc: str, lo: float, hi: float) -> ParameterDescriptor:
    return ParameterDescriptor(
        description=desc, read_only=True,
        floating_point_range=[FloatingPointRange(from_value=lo, to_value=hi, step=0.0)])


def _int(desc: str, lo: int, hi: int) -> ParameterDescriptor:
    return ParameterDescriptor(
        description=desc, read_only=True,
        integer_range=[IntegerRange(from_value=lo, to_value=hi, step=1)])


class SyntheticCamera(Node):
    """Timer-driven renderer: frame k shows the world at path time k / rate."""

    def __init__(self, **kwargs) -> None:
        super().__init__("synthetic_camera", **kwargs)
        p = {
            "rate": self.declare_parameter("rate", 10.0, _float("frames per second", 0.1, 120.0)),
            "width": self.declare_parameter("width", 640, _int("image width (px)", 16, 4096)),
            "height": self.declare_parameter("height", 480, _int("image height (px)", 16, 4096)),
            "seed": self.declare_parameter("seed", 0, _int("world seed", 0, 2**31 - 1)),
            "hfov": self.declare_parameter("hfov", 70.0, _float("horizontal FOV (deg)", 10.0,
                                                                 150.0)),
            "frames": self.declare_parameter("frames", 0, _int("frames to publish, 0 = forever",
                                                               0, 2**31 - 1)),
            "frame_id": self.declare_parameter("frame_id", "camera_optical_frame"),
            "world_frame": self.declare_parameter("world_frame", "world"),
        }
        v = {k: par.value for k, par in p.items()}
        self.rate, self.frames = float(v["rate"]), int(v["frames"])
        self.frame_id, self.world_frame = str(v["frame_id"]), str(v["world_frame"])
        self.world = make_world(int(v["seed"]))
        self.renderer = Renderer.from_hfov(int(v["width"]), int(v["height"]), float(v["hfov"]))
        self.pub_image = self.create_publisher(Image, "image_raw", OUTPUT_QOS)
        self.pub_info = self.create_publisher(CameraInfo, "camera_info", OUTPUT_QOS)
        self.pub_depth = self.create_publisher(Image, "depth_gt", OUTPUT_QOS)
        self.pub_labels = self.create_publisher(Image, "labels_gt", OUTPUT_QOS)
        self.pub_pose = self.create_publisher(PoseStamped, "pose", OUTPUT_QOS)
        self.index = 0
        self.done = False
        self.timer = self.create_timer(1.0 / self.rate, self._tick)
        k = self.renderer.intrinsics
        self.get_logger().info(
            f"world seed {v['seed']} ({len(self.world.objects)} objects), {k.width}x{k.height} "
            f"hfov {v['hfov']:.0f} deg at {self.rate:g} Hz, "
            f"{'forever' if self.frames == 0 else f'{self.frames} frames'}")

    def _tick(self) -> None:
        if self.frames and self.index >= self.frames:
            self.timer.cancel()
            self.done = True
            return
        frame = self.renderer.render(self.world, path_pose(self.world, self.index / self.rate))
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
        # camera_info first: a consumer that pairs each image with the latest camera_info
        # then never sees an image before its intrinsics.
        self.pub_info.publish(camera_info_msg(frame.intrinsics, header))
        self.pub_image.publish(image_msg(frame.rgb, "rgb8", header))
        self.pub_depth.publish(image_msg(frame.depth, "32FC1", header))
        self.pub_labels.publish(image_msg(frame.labels, "mono8", header))
        self.pub_pose.publish(pose_msg(frame.pose, header, self.world_frame))
        self.index += 1


def pose_msg(pose, header: Header, world_frame: str) -> PoseStamped:
    """The optical frame's pose in `world_frame`, stamped like the image."""
    msg = PoseStamped()
    msg.header = Header(stamp=header.stamp, frame_id=world_frame)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (
        float(c) for c in pose.position)
    q = pose.quaternion()
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = q
    return msg


def main(args: list[str] | None = None) -> int:
    """Spin until `frames` are published (then linger 1 s so readers get the last ones) or
    until interrupted."""
    rclpy.init(args=args)
    node = None
    try:
        node = SyntheticCamera()
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.1)
        if node.done:
            node.get_logger().info(f"published {node.index} frames")
            end = node.get_clock().now().nanoseconds + 1_000_000_000
            while rclpy.ok() and node.get_clock().now().nanoseconds < end:
                rclpy.spin_once(node, timeout_sec=0.1)
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        print(f"synthetic_camera: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())
