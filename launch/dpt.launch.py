"""Start dpt_node (and optionally rviz2) on a camera.

    ros2 launch dpt_ros dpt.launch.py image:=/camera/image_raw camera_info:=/camera/camera_info
    ros2 launch dpt_ros dpt.launch.py params_file:=/path/to/my.yaml depth_model:=/models/dpt

The node runs as `dpt_node --ros-args --params-file <params_file> -r image:=<image>
-r camera_info:=<camera_info> [-p depth_model:=...]`. A parameter file keyed `dpt_node:` only
applies to a node in the root namespace, so with `namespace:=...` its `ros__parameters` are
passed on as a dictionary instead (launch_ros writes them for the namespaced node).
"""

from __future__ import annotations

import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "dpt_ros"
NODE_NAME = "dpt_node"
# Launch arguments that, when not empty, override the parameter of the same name.
OVERRIDES = ("depth_model", "segmentation_model", "device")


def _share(*parts: str) -> str:
    return os.path.join(get_package_share_directory(PACKAGE), *parts)


def _flatten(params: dict, prefix: str = "") -> dict:
    flat: dict = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def node_parameters(path: str) -> dict:
    """dpt_node's `ros__parameters` from a parameter file, dotted names (`/**` entries first,
    then the node's own)."""
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    merged: dict = {}
    for key in ("/**", "**", NODE_NAME, f"/{NODE_NAME}", f"/**/{NODE_NAME}"):
        block = doc.get(key)
        if isinstance(block, dict) and isinstance(block.get("ros__parameters"), dict):
            merged.update(_flatten(block["ros__parameters"]))
    return merged


def _actions(context, *args, **kwargs):
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    params_file = arg("params_file")
    namespace = arg("namespace")
    parameters: list = [params_file] if not namespace else [node_parameters(params_file)]
    overrides = {name: arg(name) for name in OVERRIDES if arg(name)}
    if overrides:
        parameters.append(overrides)
    dpt = Node(
        package=PACKAGE,
        executable="dpt_node",
        name=NODE_NAME,
        namespace=namespace,
        parameters=parameters,
        remappings=[("image", arg("image")), ("camera_info", arg("camera_info"))],
        output="screen",
        emulate_tty=True,
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=namespace,
        arguments=["-d", _share("rviz", "dpt.rviz")],
        condition=IfCondition(arg("use_rviz")),
        output="screen",
    )
    return [dpt, rviz]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=_share("config", "dpt.yaml"),
                description="dpt_node parameter file (dpt_node: ros__parameters: ...)",
            ),
            DeclareLaunchArgument(
                "image", default_value="/camera/image_raw", description="Input image topic"
            ),
            DeclareLaunchArgument(
                "camera_info",
                default_value="/camera/camera_info",
                description="Input camera_info topic",
            ),
            DeclareLaunchArgument("namespace", default_value="", description="Node namespace"),
            DeclareLaunchArgument(
                "depth_model", default_value="", description="Override depth_model ('' = file)"
            ),
            DeclareLaunchArgument(
                "segmentation_model",
                default_value="",
                description="Override segmentation_model ('' = file)",
            ),
            DeclareLaunchArgument(
                "device", default_value="", description="Override device ('' = file)"
            ),
            DeclareLaunchArgument(
                "use_rviz", default_value="false", description="Start rviz2 with rviz/dpt.rviz"
            ),
            OpaqueFunction(function=_actions),
        ]
    )
