"""launch/dpt.launch.py, setup.py, config and rviz agree with the node.

launch_ros is not installable here, so the launch file is imported with recording stand-ins
for `launch`, `launch_ros` and the package index, its OpaqueFunction is run with a fake
context, and what it would start is compared with setup.py's console script and data_files,
the node's inputs, and the topics rviz shows. Where launch_ros exists, the real one is used
too.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
import types
from glob import glob
from pathlib import Path

import pytest
import yaml
from _node_util import ROOT

from dpt_ros.core.outputs import OUTPUT_TOPICS
from dpt_ros.core.params_file import load_params_file
from dpt_ros.ros import node as dpt_node

LAUNCH = ROOT / "launch" / "dpt.launch.py"
ARGS = {"params_file", "image", "camera_info", "namespace", "depth_model",
        "segmentation_model", "device", "use_rviz"}


def _setup_call() -> ast.Call:
    tree = ast.parse((ROOT / "setup.py").read_text())
    return next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")


def _setup_kw(name: str):
    kw = next(k for k in _setup_call().keywords if k.arg == name)
    return eval(  # the literal from setup.py, with its two names
        compile(ast.Expression(kw.value), "setup.py", "eval"), {"PACKAGE": "dpt_ros", "glob": glob}
    )


def console_scripts() -> dict[str, str]:
    return dict(s.replace(" ", "").split("=") for s in _setup_kw("entry_points")["console_scripts"])


@pytest.fixture
def share(tmp_path, monkeypatch):
    """An install tree built from setup.py's data_files (as colcon / pip would lay it out)."""
    monkeypatch.chdir(ROOT)
    prefix = tmp_path / "install"
    for dest, files in _setup_kw("data_files"):
        for f in files:
            target = prefix / dest / Path(f).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / f, target)
    return prefix / "share" / "dpt_ros"


# ---------------------------------------------------------------- recording stand-ins
class Recorded:
    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration(Recorded):
    def perform(self, context) -> str:
        return context.launch_configurations[self.args[0]]


class IfCondition(Recorded):
    pass


class FakeContext:
    def __init__(self, values: dict[str, str]) -> None:
        self.launch_configurations = values


def _load_with_stubs(monkeypatch, share_dir: Path):
    mods = {
        "launch": {"LaunchDescription": lambda entities: list(entities)},
        "launch.actions": {"DeclareLaunchArgument": Recorded, "OpaqueFunction": Recorded},
        "launch.conditions": {"IfCondition": IfCondition},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": Recorded},
        "ament_index_python": {},
        "ament_index_python.packages": {
            "get_package_share_directory": lambda pkg: str(share_dir) if pkg == "dpt_ros"
            else pytest.fail(f"unexpected package {pkg}")
        },
    }
    for name, attrs in mods.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("dpt_launch_under_test", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _start(monkeypatch, share_dir: Path, **overrides: str) -> tuple[Recorded, Recorded, dict]:
    module = _load_with_stubs(monkeypatch, share_dir)
    entities = module.generate_launch_description()
    declared = {e.args[0]: e.kwargs for e in entities if e.args and isinstance(e.args[0], str)}
    values = {name: kw["default_value"] for name, kw in declared.items()}
    values.update(overrides)
    opaque = next(e for e in entities if "function" in e.kwargs)
    dpt, rviz = opaque.kwargs["function"](FakeContext(values))
    return dpt, rviz, declared


# ---------------------------------------------------------------------------- tests
def test_launch_arguments_are_declared_with_descriptions():
    tree = ast.parse(LAUNCH.read_text())
    names = {
        n.args[0].value for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "DeclareLaunchArgument"
    }
    assert names == ARGS


def test_node_entry_point_matches_setup_py(monkeypatch, share):
    dpt, _, _ = _start(monkeypatch, share)
    assert dpt.kwargs["package"] == "dpt_ros"
    assert dpt.kwargs["name"] == dpt_node.NODE_NAME == "dpt_node"
    target = console_scripts()[dpt.kwargs["executable"]]
    module, func = target.split(":")
    assert module == "dpt_ros.ros.node" and func == "main"
    assert getattr(importlib.import_module(module), func) is dpt_node.main


def test_default_parameter_file_is_installed_and_valid(monkeypatch, share):
    dpt, _, declared = _start(monkeypatch, share)
    default = Path(declared["params_file"]["default_value"])
    assert default == share / "config" / "dpt.yaml" and default.is_file()
    assert dpt.kwargs["parameters"] == [str(default)]  # passed on as --params-file
    assert load_params_file(default) == load_params_file(ROOT / "config" / "dpt.yaml")
    for name in ("depth_anything_metric.yaml", "dpt_large_ade.yaml"):
        assert (share / "config" / name).is_file()


def test_remappings_are_the_node_inputs(monkeypatch, share):
    dpt, _, declared = _start(monkeypatch, share, image="/front/image_raw",
                              camera_info="/front/camera_info")
    assert dict(dpt.kwargs["remappings"]) == {
        dpt_node.IMAGE_INPUT: "/front/image_raw", dpt_node.INFO_INPUT: "/front/camera_info"}
    assert declared["image"]["default_value"] == "/camera/image_raw"


def test_model_overrides_and_namespace(monkeypatch, share, tmp_path):
    dpt, _, _ = _start(monkeypatch, share, depth_model="/models/d", device="cpu")
    assert dpt.kwargs["parameters"][1] == {"depth_model": "/models/d", "device": "cpu"}

    # A `dpt_node:` key only applies in the root namespace, so a namespaced node gets the
    # file's parameters as a dict (same names and values as the file).
    dpt, _, _ = _start(monkeypatch, share, namespace="robot1")
    assert dpt.kwargs["namespace"] == "robot1"
    assert dpt.kwargs["parameters"] == [load_params_file(ROOT / "config" / "dpt.yaml")]
    custom = tmp_path / "p.yaml"
    custom.write_text("/**:\n  ros__parameters:\n    device: cpu\n"
                      "dpt_node:\n  ros__parameters:\n    pointcloud:\n      stride: 2\n")
    dpt, _, _ = _start(monkeypatch, share, namespace="r", params_file=str(custom))
    assert dpt.kwargs["parameters"] == [{"device": "cpu", "pointcloud.stride": 2}]


def test_rviz_is_optional_and_shows_node_topics(monkeypatch, share):
    _, rviz, _ = _start(monkeypatch, share)
    assert rviz.kwargs["condition"].args[0] == "false"
    _, rviz, _ = _start(monkeypatch, share, use_rviz="true")
    assert rviz.kwargs["condition"].args[0] == "true"
    config = Path(rviz.kwargs["arguments"][1])
    assert rviz.kwargs["arguments"][0] == "-d" and config == share / "rviz" / "dpt.rviz"

    doc = yaml.safe_load(config.read_text())
    displays = doc["Visualization Manager"]["Displays"]
    topics = {d["Class"]: [] for d in displays}
    for d in displays:
        if "Topic" in d:
            topics[d["Class"]].append(d["Topic"]["Value"])
    node_topics = {name: "/dpt_node" + t[1:] for name, t in OUTPUT_TOPICS.items()}
    assert topics["rviz_default_plugins/PointCloud2"] == [node_topics["points"]]
    assert set(topics["rviz_default_plugins/Image"]) == {
        "/camera/image_raw", node_topics["depth_colorized"], node_topics["overlay"]}
    for d in displays:  # outputs are reliable; a reliable reader matches them
        if "Topic" in d:
            assert d["Topic"]["Reliability Policy"] == "Reliable"


def test_real_launch_file_loads_when_launch_ros_exists():
    pytest.importorskip("launch_ros")
    from launch.actions import OpaqueFunction

    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location("dpt_launch_real", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    for entity in description.entities:
        if not isinstance(entity, OpaqueFunction):
            entity.visit(context)
    opaque = next(e for e in description.entities if isinstance(e, OpaqueFunction))
    nodes = opaque.execute(context)
    assert nodes[0].node_executable == "dpt_node"
