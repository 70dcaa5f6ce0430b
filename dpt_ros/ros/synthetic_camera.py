"""`synthetic_camera`: a camera flying through the procedural world, with ground truth.

Publishes (relative names, so `__ns:=/camera` gives /camera/image_raw etc.), all with the same
header (stamp, `frame_id`):
- `image_raw` (sensor_msgs/Image, rgb8) and `camera_info`; like a real driver
  (image_transport's CameraPublisher) the camera_info goes out after its image
  (`camera_info_delay_ms` later), and a lens (`distortion_model` plumb_bob /
  rational_polynomial / equidistant, coefficients `distortion`) renders a raw, distorted
  image exactly through the lens model, described by D in the camera_info
- `depth_gt` (32FC1, Z-depth in metres, REP 118) and `labels_gt` (mono8 class ids:
  0 floor, 1 wall, 2 ceiling, 3 box, 4 sphere, 5 cylinder)
- `pose` (geometry_msgs/PoseStamped, header.frame_id = `world_frame`): the optical frame in
  the world, so consumers can compare points with the exact scene surfaces.
- with `tof: true`, `tof_depth`: a simulated low-resolution time-of-flight camera
  (`synthetic.sensors.ToFCamera`: `tof_width` x `tof_height`, 0.2-4 m, 1 % noise, holes,
  flying pixels) registered exactly to the image (same optical frame and header), `16UC1`
  millimetres (0 = none) or `32FC1` metres (NaN = none) by `tof_encoding`;
- with `lidar: true`, `lidar_points`: a simulated 32-ring LiDAR scan (`sensors.Lidar`,
  PointCloud2 x/y/z float32) in its own frame `lidar_frame_id` (x forward, y left, z up),
  mounted by the known extrinsic `lidar_extrinsic` (camera <- lidar, [x, y, z, qx, qy, qz,
  qw]: give dpt_node the same as `alignment.extrinsic`), stamped like the image.
Both are metric references for dpt_node's alignment (`depth_reference`, `points_reference`);
off by default, so the demo is unchanged. Each capture is reproducible (seeded by world seed
and frame index).
`switch_every` > 0 alternates the resolution between width x height and alt_width x
alt_height every that many frames (a driver switching modes), with a camera_info per mode.
Outputs use reliable QoS: the pip Fast DDS silently drops best-effort messages of about 1 MB
and more between processes (a 640x480 rgb8 image is 0.9 MB, its depth 1.2 MB).
"""

from __future__ import annotations

import sys
import time

import rclpy
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from dpt_ros.core.alignment import Extrinsic
from dpt_ros.messages import camera_info_msg, image_msg, xyz_cloud_msg
from dpt_ros.synthetic import Renderer, make_world, path_pose
from dpt_ros.synthetic.sensors import (
    DEFAULT_LIDAR_EXTRINSIC,
    Lidar,
    LidarSpec,
    ToFCamera,
    ToFSpec,
    to_millimetres,
)

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


def _text(desc: str) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, read_only=True)


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
            "distortion_model": self.declare_parameter(
                "distortion_model", "", _text("lens: '' (pinhole), plumb_bob, "
                                              "rational_polynomial or equidistant")),
            "distortion": self.declare_parameter(
                "distortion", Parameter.Type.DOUBLE_ARRAY,
                _text("the lens's D coefficients (ROS order); empty: a typical lens")),
            "camera_info_delay_ms": self.declare_parameter(
                "camera_info_delay_ms", 2.0,
                _float("camera_info published this long after its image; < 0: before it",
                       -1000.0, 1000.0)),
            "switch_every": self.declare_parameter(
                "switch_every", 0, _int("frames between resolution switches, 0 = never",
                                        0, 2**31 - 1)),
            "alt_width": self.declare_parameter("alt_width", 320, _int("second width (px)",
                                                                        16, 4096)),
            "alt_height": self.declare_parameter("alt_height", 240,
                                                 _int("second height (px)", 16, 4096)),
            "tof": self.declare_parameter("tof", False, _text(
                "publish tof_depth, a simulated ToF depth registered to the image")),
            "tof_encoding": self.declare_parameter("tof_encoding", "16UC1", _text(
                "tof_depth encoding: 16UC1 (mm, 0 = none) or 32FC1 (m, NaN = none)")),
            "tof_width": self.declare_parameter("tof_width", 160, _int("ToF width (px)",
                                                                        8, 4096)),
            "tof_height": self.declare_parameter("tof_height", 120, _int("ToF height (px)",
                                                                          8, 4096)),
            "lidar": self.declare_parameter("lidar", False, _text(
                "publish lidar_points, a simulated 32-ring LiDAR scan")),
            "lidar_frame_id": self.declare_parameter("lidar_frame_id", "lidar"),
            "lidar_extrinsic": self.declare_parameter(
                "lidar_extrinsic", list(DEFAULT_LIDAR_EXTRINSIC.translation)
                + list(DEFAULT_LIDAR_EXTRINSIC.quaternion),
                _text("camera <- lidar [x, y, z, qx, qy, qz, qw] (metres, quaternion)")),
        }
        v = {k: par.value for k, par in p.items()}
        self.rate, self.frames = float(v["rate"]), int(v["frames"])
        self.frame_id, self.world_frame = str(v["frame_id"]), str(v["world_frame"])
        self.info_delay = float(v["camera_info_delay_ms"]) / 1000.0
        self.switch_every = int(v["switch_every"])
        self.world = make_world(int(v["seed"]))
        lens = lens_coefficients(str(v["distortion_model"]), list(v["distortion"] or []))
        self.renderers = [
            Renderer.from_hfov(int(w), int(h), float(v["hfov"]), *lens)
            for w, h in ((v["width"], v["height"]), (v["alt_width"], v["alt_height"]))
        ]
        self.renderer = self.renderers[0]
        self.tof_encoding = str(v["tof_encoding"])
        if self.tof_encoding not in ("16UC1", "32FC1"):
            raise ValueError(f"tof_encoding '{self.tof_encoding}' is not 16UC1 or 32FC1")
        spec = ToFSpec(width=int(v["tof_width"]), height=int(v["tof_height"]))
        self.tofs = ({id(r): ToFCamera(r.intrinsics, spec) for r in self.renderers}
                     if v["tof"] else {})
        self.lidar_frame = str(v["lidar_frame_id"])
        self.lidar = (Lidar(LidarSpec(extrinsic=Extrinsic.from_list(list(v["lidar_extrinsic"]))))
                      if v["lidar"] else None)
        self.seed = int(v["seed"])
        self.pub_tof = self.create_publisher(Image, "tof_depth", OUTPUT_QOS) if self.tofs else None
        self.pub_lidar = (self.create_publisher(PointCloud2, "lidar_points", OUTPUT_QOS)
                          if self.lidar else None)
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
        if self.switch_every:
            self.renderer = self.renderers[(self.index // self.switch_every) % 2]
        frame = self.renderer.render(self.world, path_pose(self.world, self.index / self.rate))
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
        references = self._references(frame, header)  # captured first: sent right after
        info = camera_info_msg(frame.intrinsics, header)
        if self.info_delay < 0:
            self.pub_info.publish(info)
        self.pub_image.publish(image_msg(frame.rgb, "rgb8", header))
        if self.info_delay >= 0:  # after the image, as image_transport's CameraPublisher
            time.sleep(self.info_delay)
            self.pub_info.publish(info)
        for pub, msg in references:
            pub.publish(msg)
        self.pub_depth.publish(image_msg(frame.depth, "32FC1", header))
        self.pub_labels.publish(image_msg(frame.labels, "mono8", header))
        self.pub_pose.publish(pose_msg(frame.pose, header, self.world_frame))
        self.index += 1

    def _references(self, frame, header: Header) -> list:
        """(publisher, message) of this frame's ToF depth and LiDAR scan (when enabled),
        captured at the frame's pose with the image's stamp."""
        out = []
        tof = self.tofs.get(id(self.renderer))
        if tof is not None:
            depth = tof.capture(self.world, frame.pose, (self.seed, self.index, 0)).depth
            if self.tof_encoding == "16UC1":
                out.append((self.pub_tof, image_msg(to_millimetres(depth), "16UC1", header)))
            else:
                out.append((self.pub_tof, image_msg(depth, "32FC1", header)))
        if self.lidar is not None:
            scan = self.lidar.capture(self.world, frame.pose, (self.seed, self.index, 1))
            out.append((self.pub_lidar, xyz_cloud_msg(
                scan.points, Header(stamp=header.stamp, frame_id=self.lidar_frame))))
        return out


TYPICAL_LENSES = {  # D of lenses like those on robot cameras, when `distortion` is empty
    "plumb_bob": (-0.28, 0.09, 0.0012, -0.0009, -0.012),
    "rational_polynomial": (2.1, 0.9, 0.0008, -0.0005, 0.05, 2.45, 1.6, 0.2),
    "equidistant": (-0.013, 0.021, -0.011, 0.0021),
}


def lens_coefficients(model: str, d: list[float]) -> tuple[str, tuple[float, ...]]:
    """(distortion_model, D) of the synthetic lens; ValueError for an unknown model."""
    if not model:
        return "", ()
    if model not in TYPICAL_LENSES:
        raise ValueError(f"distortion_model '{model}' is not one of "
                         f"'', {', '.join(TYPICAL_LENSES)}")
    return model, tuple(d) if d else TYPICAL_LENSES[model]


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
