"""The demo with rviz2: synthetic camera -> dpt_node with the shipped synthetic weights.

    ros2 launch dpt_ros demo.launch.py [seed:=1000291 rate:=5 width:=640 height:=480 use_rviz:=true]

Same processes and topics as `python -m dpt_ros.demo` (camera in /camera, node `dpt_node`
on /camera/image_raw + /camera/camera_info), but live in rviz2 instead of scored to
demo_out/. Ground truth is on /camera/depth_gt, /camera/labels_gt and /camera/pose.
dpt_node and rviz2 come from dpt.launch.py; the camera's arguments are typed as the camera
declares them (dpt_ros.config.launch_args.demo_camera_spec), so rate:=5 is the double 5.0.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

import dpt_ros
from dpt_ros.config.launch_args import DEMO_ARGS, PACKAGE, demo_camera_spec, demo_dpt_values
from dpt_ros.ros.launch_actions import launch_node
from launch import LaunchDescription

WEIGHTS = os.path.join(os.path.dirname(dpt_ros.__file__), "weights")


def _actions(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in DEMO_ARGS}
    dpt_launch = os.path.join(get_package_share_directory(PACKAGE), "launch", "dpt.launch.py")
    return [
        launch_node(demo_camera_spec(values)),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(dpt_launch),
            launch_arguments=demo_dpt_values(values, WEIGHTS).items(),
        ),
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        *(DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
          for a in DEMO_ARGS),
        OpaqueFunction(function=_actions),
    ])
