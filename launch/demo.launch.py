"""The demo with rviz2: synthetic camera → dpt_node with the shipped synthetic weights.

    ros2 launch dpt_ros demo.launch.py [seed:=1000291 rate:=5.0 use_rviz:=true]

Same processes and topics as `python -m dpt_ros.demo` (camera in /camera, node `dpt_node`
on /camera/image_raw + /camera/camera_info), but live in rviz2 instead of scored to
demo_out/. Ground truth is on /camera/depth_gt, /camera/labels_gt and /camera/pose.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

import dpt_ros
from launch import LaunchDescription

PACKAGE = "dpt_ros"
CAMERA_NS = "/camera"
WEIGHTS = os.path.join(os.path.dirname(dpt_ros.__file__), "weights")


def _share(*parts: str) -> str:
    return os.path.join(get_package_share_directory(PACKAGE), *parts)


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    camera = Node(
        package=PACKAGE,
        executable="synthetic_camera",
        name="synthetic_camera",
        namespace=CAMERA_NS,
        parameters=[{"seed": arg("seed"), "rate": arg("rate"), "width": arg("width"),
                     "height": arg("height")}],
        output="screen",
    )
    dpt = Node(
        package=PACKAGE,
        executable="dpt_node",
        name="dpt_node",
        parameters=[_share("config", "dpt.yaml"),
                    {"depth_model": os.path.join(WEIGHTS, "synthetic-depth"),
                     "segmentation_model": os.path.join(WEIGHTS, "synthetic-seg")}],
        remappings=[("image", f"{CAMERA_NS}/image_raw"),
                    ("camera_info", f"{CAMERA_NS}/camera_info")],
        output="screen",
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", _share("rviz", "dpt.rviz")],
        condition=IfCondition(arg("use_rviz")),
        output="screen",
    )
    return LaunchDescription([
        DeclareLaunchArgument("seed", default_value="1000291", description="world seed"),
        DeclareLaunchArgument("rate", default_value="5.0", description="camera rate (Hz)"),
        DeclareLaunchArgument("width", default_value="640", description="image width"),
        DeclareLaunchArgument("height", default_value="480", description="image height"),
        DeclareLaunchArgument("use_rviz", default_value="true", description="start rviz2"),
        camera,
        dpt,
        rviz,
    ])
