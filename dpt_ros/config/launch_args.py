"""What the launch files start, as plain data: their arguments, and for given argument values
each process's executable, node name, namespace, parameter files, typed overrides and
remappings, with the exact `--ros-args` command line launch_ros builds from them.

No ROS and no launch imports: the launch files turn a `NodeSpec` into a launch_ros action,
and CI (where launch_ros may be absent) runs `NodeSpec.command()` in a real subprocess; the
tests check that the real launch_ros produces the same command line. One home for what a
launch argument means.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PACKAGE = "dpt_ros"
NODE_NAME = "dpt_node"  # dpt_ros.ros.node.NODE_NAME (tested equal; core does not import ros)
NODE_EXECUTABLE = "dpt_node"
LIFECYCLE_EXECUTABLE = "dpt_lifecycle_node"  # same node name, managed (rclpy.lifecycle)
CAMERA_EXECUTABLE = "synthetic_camera"
DEMO_CAMERA_NS = "/camera"
# Launch arguments that, when not empty, override the parameter of the same name (strings).
MODEL_OVERRIDES = ("depth_model", "segmentation_model", "device")
# Alignment inputs (dpt_ros.ros.reference_input), remapped only when the argument is given.
REFERENCE_INPUTS = ("depth_reference", "points_reference")


@dataclass(frozen=True)
class LaunchArg:
    """One declared launch argument; `default=None`: computed at launch (a share path)."""

    name: str
    default: str | None
    description: str


DPT_ARGS: tuple[LaunchArg, ...] = (
    LaunchArg("params_file", None, "dpt_node parameter file, passed to the node as a file "
              "(keyed '/**/dpt_node:' so it applies in any namespace); default: the "
              "installed config/dpt.yaml"),
    LaunchArg("image", "camera/image_raw", "Input image topic (relative names resolve in "
              "'namespace')"),
    LaunchArg("camera_info", "camera/camera_info", "Input camera_info topic (relative names "
              "resolve in 'namespace')"),
    LaunchArg("depth_reference", "", "Metric depth image for alignment (remap of "
              "depth_reference: registered 32FC1 m / 16UC1 mm); '' = not remapped"),
    LaunchArg("points_reference", "", "Metric point cloud for alignment (remap of "
              "points_reference: PointCloud2 x/y/z); '' = not remapped"),
    LaunchArg("namespace", "", "Namespace of dpt_node (and rviz2): outputs under "
              "/<namespace>/dpt_node/..."),
    LaunchArg("depth_model", "", "Override depth_model: Hub id or local directory ('' = the "
              "parameter file's)"),
    LaunchArg("segmentation_model", "", "Override segmentation_model ('' = the parameter "
              "file's)"),
    LaunchArg("device", "", "Override device: auto, cpu, cuda, cuda:N ('' = the parameter "
              "file's)"),
    LaunchArg("use_sim_time", "false", "Use /clock time (true | false)"),
    LaunchArg("lifecycle", "false", "Start dpt_node as a managed (lifecycle) node that "
              "waits for configure / activate (true | false)"),
    LaunchArg("autostart", "false", "With lifecycle:=true, configure and then activate the "
              "node from the launch file (true | false); false leaves that to a lifecycle "
              "manager"),
    LaunchArg("use_rviz", "false", "Start rviz2 with rviz/dpt.rviz, its topics moved into "
              "'namespace' (true | false)"),
)

DEMO_ARGS: tuple[LaunchArg, ...] = (
    LaunchArg("seed", "1000291", "World seed (integer)"),
    LaunchArg("rate", "5.0", "Camera rate in Hz (5 and 5.0 both work)"),
    LaunchArg("width", "640", "Image width in pixels (integer)"),
    LaunchArg("height", "480", "Image height in pixels (integer)"),
    LaunchArg("use_rviz", "true", "Start rviz2 (true | false)"),
)


@dataclass
class NodeSpec:
    """One process a launch file starts, in the terms of launch_ros.actions.Node."""

    package: str
    executable: str
    name: str
    namespace: str = "/"  # absolute: "/robot1", "/" for the root namespace
    arguments: list[str] = field(default_factory=list)  # before --ros-args
    params_files: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # typed: str | bool | int | float
    remappings: list[tuple[str, str]] = field(default_factory=list)
    lifecycle: bool = False
    autostart: bool = False  # lifecycle: the launch file drives configure, then activate

    def ros_args(self) -> list[str]:
        """The arguments after the executable, in launch_ros' order: arguments, then
        `--ros-args -r __node:= -r __ns:= --params-file... -p... -r from:=to...`."""
        args = [*self.arguments, "--ros-args", "-r", f"__node:={self.name}",
                "-r", f"__ns:={self.namespace}"]
        for path in self.params_files:
            args += ["--params-file", path]
        for name, value in self.params.items():
            args += ["-p", f"{name}:={yaml_value(value)}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args

    def command(self, executable: str) -> list[str]:
        """`executable` (the installed script, or e.g. [python, -m, module]) with ros_args."""
        return [executable, *self.ros_args()]


def yaml_value(value: Any) -> str:
    """A `-p name:=value` value that ROS parses back with the value's own type (a string
    stays a string even when it reads like a number: '123', 'true')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):  # '1.0e-07', not '1e-07', which YAML 1.1 reads as a string
        mantissa, e, exponent = repr(value).partition("e")
        return (mantissa if "." in mantissa else mantissa + ".0") + e + exponent
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"no launch override type for {value!r}")


def parse_bool(name: str, text: str) -> bool:
    """A launch argument that is true / false (also 1 / 0, any case), as launch's conditions
    read them; anything else is an error naming the argument."""
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"launch argument {name}:={text!r}: expected true or false")


def _parse_number(name: str, text: str, kind: type) -> int | float:
    try:
        value = kind(text.strip())
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"launch argument {name}:={text!r}: expected {what}") from None
    if not math.isfinite(value):
        raise ValueError(f"launch argument {name}:={text!r}: expected a finite number")
    return value


def absolute_namespace(namespace: str) -> str:
    """'robot1' and '/robot1/' -> '/robot1'; '' -> '/' (the root namespace), as launch_ros
    passes it on (`-r __ns:=/`)."""
    return "/" + "/".join(p for p in namespace.strip().split("/") if p)


def resolve_topic(topic: str, namespace: str) -> str:
    """Where a relative remap target lands for a node in `namespace` (absolute stays)."""
    if topic.startswith("/"):
        return topic
    return f"{absolute_namespace(namespace).rstrip('/')}/{topic}"


def defaults(args: tuple[LaunchArg, ...], share: str) -> dict[str, str]:
    """Every argument's default value; the computed ones from the package share `share`."""
    out = {a.name: a.default for a in args if a.default is not None}
    if any(a.name == "params_file" for a in args):
        out["params_file"] = default_params_file(share)
    return out


def default_params_file(share: str) -> str:
    return os.path.join(share, "config", "dpt.yaml")


def rviz_template(share: str) -> str:
    return os.path.join(share, "rviz", "dpt.rviz")


def dpt_node_spec(values: Mapping[str, str]) -> NodeSpec:
    """dpt_node (or dpt_lifecycle_node) for dpt.launch.py's argument values (every DPT_ARGS
    name present, as `defaults` fills them)."""
    params: dict[str, Any] = {name: values[name] for name in MODEL_OVERRIDES if values[name]}
    params["use_sim_time"] = parse_bool("use_sim_time", values["use_sim_time"])
    lifecycle = parse_bool("lifecycle", values["lifecycle"])
    autostart = parse_bool("autostart", values.get("autostart", "false"))
    if autostart and not lifecycle:
        raise ValueError("launch argument autostart:=true needs lifecycle:=true (a plain "
                         "dpt_node is active from start-up)")
    for name in ("image", "camera_info"):
        if not values[name].strip():
            raise ValueError(f"launch argument {name} must not be empty")
    return NodeSpec(
        package=PACKAGE,
        executable=LIFECYCLE_EXECUTABLE if lifecycle else NODE_EXECUTABLE,
        name=NODE_NAME,
        namespace=absolute_namespace(values["namespace"]),
        params_files=[values["params_file"]],
        params=params,
        remappings=[("image", values["image"]), ("camera_info", values["camera_info"]),
                    *((name, values[name].strip()) for name in REFERENCE_INPUTS
                      if values.get(name, "").strip())],
        lifecycle=lifecycle,
        autostart=autostart,
    )


def rviz_spec(values: Mapping[str, str], config_path: str) -> NodeSpec:
    """rviz2 on `config_path` (the namespaced config; started when use_rviz is true)."""
    return NodeSpec(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=absolute_namespace(values["namespace"]),
        arguments=["-d", config_path],
        params={"use_sim_time": parse_bool("use_sim_time", values["use_sim_time"])},
    )


def demo_camera_spec(values: Mapping[str, str]) -> NodeSpec:
    """synthetic_camera for demo.launch.py's argument values, each typed as the camera
    declares it (rate:=5 is the double 5.0)."""
    return NodeSpec(
        package=PACKAGE,
        executable=CAMERA_EXECUTABLE,
        name=CAMERA_EXECUTABLE,
        namespace=DEMO_CAMERA_NS,
        params={
            "seed": _parse_number("seed", values["seed"], int),
            "rate": float(_parse_number("rate", values["rate"], float)),
            "width": _parse_number("width", values["width"], int),
            "height": _parse_number("height", values["height"], int),
        },
    )


def demo_dpt_values(values: Mapping[str, str], weights: str) -> dict[str, str]:
    """dpt.launch.py's arguments for the demo: the camera's topics, the shipped weights."""
    return {
        "image": f"{DEMO_CAMERA_NS}/image_raw",
        "camera_info": f"{DEMO_CAMERA_NS}/camera_info",
        "depth_model": os.path.join(weights, "synthetic-depth"),
        "segmentation_model": os.path.join(weights, "synthetic-seg"),
        "use_rviz": values["use_rviz"],
    }
