"""Start dpt_node (and optionally rviz2) on a camera.

    ros2 launch dpt_ros dpt.launch.py                      # camera/image_raw, camera/camera_info
    ros2 launch dpt_ros dpt.launch.py namespace:=robot1    # /robot1/camera/... in,
                                                           # /robot1/dpt_node/... out
    ros2 launch dpt_ros dpt.launch.py params_file:=/path/my.yaml depth_model:=/models/dpt
    ros2 launch dpt_ros dpt.launch.py lifecycle:=true      # managed node, left unconfigured
    ros2 launch dpt_ros dpt.launch.py lifecycle:=true autostart:=true  # configured + activated

What each argument turns into lives in dpt_ros.config.launch_args (ROS-free, tested without
launch_ros): the node runs as `dpt_node --ros-args -r __node:=dpt_node -r __ns:=/<ns>
--params-file <params_file> [-p depth_model:=...] -p use_sim_time:=false -r image:=<image>
-r camera_info:=<camera_info>`. The parameter file reaches the node unchanged, as a file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from dpt_ros.config.launch_args import (
    DPT_ARGS,
    PACKAGE,
    defaults,
    dpt_node_spec,
    parse_bool,
    rviz_spec,
    rviz_template,
)
from dpt_ros.config.rviz_config import namespaced_config
from dpt_ros.ros.launch_actions import autostart, launch_node
from launch import LaunchDescription


def _actions(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in DPT_ARGS}
    spec = dpt_node_spec(values)
    node = launch_node(spec)
    actions = [node, *(autostart(node) if spec.autostart else [])]
    if parse_bool("use_rviz", values["use_rviz"]):
        template = Path(rviz_template(get_package_share_directory(PACKAGE)))
        with tempfile.NamedTemporaryFile(
            "w", prefix="dpt_rviz_", suffix=".rviz", delete=False
        ) as config:
            config.write(namespaced_config(template.read_text(), values["namespace"],
                                           values["image"]))
        actions.append(launch_node(rviz_spec(values, config.name)))
    return actions


def generate_launch_description() -> LaunchDescription:
    initial = defaults(DPT_ARGS, get_package_share_directory(PACKAGE))
    return LaunchDescription([
        *(DeclareLaunchArgument(a.name, default_value=initial[a.name], description=a.description)
          for a in DPT_ARGS),
        OpaqueFunction(function=_actions),
    ])
