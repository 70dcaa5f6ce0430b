"""dpt_ros.config.params_file: the node's YAML read without ROS and mapped onto Pipeline
arguments; checked against the YAML parsed independently and against the node's own table."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from dpt_ros.config.params_file import (
    load_params_file,
    pipeline_kwargs_from_params,
    settings_from_params,
)
from dpt_ros.config.settings import PipelineSettings

ROOT = Path(__file__).resolve().parents[2]


def test_repo_config_maps_onto_pipeline_arguments():
    doc = yaml.safe_load((ROOT / "config" / "dpt.yaml").read_text())
    raw = doc["/**/dpt_node"]["ros__parameters"]
    params = load_params_file(ROOT / "config" / "dpt.yaml")
    assert params["depth.scale"] == raw["depth"]["scale"]
    assert params["pointcloud.stride"] == raw["pointcloud"]["stride"]
    kwargs = pipeline_kwargs_from_params(params)
    assert kwargs["depth_model"] == raw["depth_model"]
    assert kwargs["segmentation_model"] == raw["segmentation_model"]
    assert kwargs["depth_revision"] == raw["depth_model_revision"]
    assert kwargs["segmentation_revision"] == raw["segmentation_model_revision"]
    assert kwargs["device"] == raw["device"] and kwargs["dtype"] == raw["dtype"]
    assert kwargs["compile_mode"] == raw["compile"]
    assert kwargs["input_size"] is None  # [0, 0] = the checkpoint's own size
    s = kwargs["settings"]
    assert s.depth_scale == raw["depth"]["scale"] and s.depth_shift == raw["depth"]["shift"]
    assert (s.depth_min, s.depth_max) == (raw["depth"]["min"], raw["depth"]["max"])
    assert s.colormap == raw["colormap"]
    assert s.percentiles == tuple(raw["percentiles"])
    assert s.output_resolution == raw["output_resolution"]
    assert s.overlay_alpha == raw["overlay_alpha"]
    pc = raw["pointcloud"]
    assert (s.pointcloud_stride, s.pointcloud_min_range, s.pointcloud_max_range) == (
        pc["stride"], pc["min_range"], pc["max_range"])
    assert (s.pointcloud_color, s.pointcloud_label) == (pc["color"], pc["label"])


def test_metric_example_config():
    params = load_params_file(ROOT / "config" / "depth_anything_metric.yaml")
    s = pipeline_kwargs_from_params(params)["settings"]
    assert (s.depth_min, s.depth_max) == (0.3, 10.0)
    assert (s.pointcloud_stride, s.pointcloud_min_range, s.pointcloud_max_range) == (2, 0.2, 10.0)
    assert s.depth_scale == 0.0  # not in the file: the default


def test_compile_parameter_reaches_the_pipeline_and_is_checked():
    from dpt_ros.config.vocabulary import COMPILE_MODES
    from dpt_ros.offline.config import load_config
    from dpt_ros.offline.exitcodes import CliError

    for mode in COMPILE_MODES:
        config = load_config(None, {"depth_model": "x", "compile": mode})
        assert pipeline_kwargs_from_params(config.values)["compile_mode"] == mode
    with pytest.raises(CliError, match="compile"):
        load_config(None, {"depth_model": "x", "compile": "fast"})


def test_every_setting_has_a_node_parameter():
    """No PipelineSettings field is unreachable from the node's parameter table."""
    from dpt_ros.config.params import SPECS

    names = {spec.name.replace(".", "_") for spec in SPECS}
    missing = [f.name for f in fields(PipelineSettings) if f.name not in names]
    assert not missing


def test_wildcard_namespace_and_precedence(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    colormap: viridis\n    overlay_alpha: 0.25\n"
        "robot:\n  dpt_node:\n    ros__parameters:\n      colormap: inferno\n"
        "other_node:\n  ros__parameters:\n    colormap: turbo\n"
    )
    params = load_params_file(path)
    assert params == {"colormap": "inferno", "overlay_alpha": 0.25}
    s = settings_from_params(params)
    assert (s.colormap, s.overlay_alpha) == ("inferno", 0.25)
    assert load_params_file(path, node_name="other_node")["colormap"] == "turbo"


def test_dotted_and_underscored_names_are_the_same_parameter():
    a = settings_from_params({"depth.scale": 2.0, "pointcloud.max_range": 5})
    b = settings_from_params({"depth_scale": 2.0, "pointcloud_max_range": 5.0})
    assert a == b and a.depth_scale == 2.0 and isinstance(a.pointcloud_max_range, float)
    base = PipelineSettings(colormap="inferno")
    assert settings_from_params({"depth.scale": 1.0}, base).colormap == "inferno"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"depth.scale": "big"}, "depth_scale"),
        ({"pointcloud.stride": 1.5}, "pointcloud_stride"),
        ({"pointcloud.color": 1}, "pointcloud_color"),
        ({"percentiles": [1.0]}, "percentiles"),
        ({"device": 0}, "device"),
        ({"input_size": [0, 64]}, "input_size"),
        ({"input_size": [64]}, "input_size"),
    ],
)
def test_wrong_types_name_the_parameter(params, needle):
    with pytest.raises(ValueError, match=needle):
        pipeline_kwargs_from_params(params)


def test_input_size():
    assert pipeline_kwargs_from_params({"input_size": [384, 512]})["input_size"] == (384, 512)
    assert pipeline_kwargs_from_params({"input_size": []})["input_size"] is None
    assert "input_size" not in pipeline_kwargs_from_params({})


@pytest.mark.parametrize(
    "text",
    ["just a string\n", "someone_else:\n  ros__parameters:\n    a: 1\n", "dpt_node: [1, 2\n"],
)
def test_unusable_files(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"p\.yaml"):
        load_params_file(path)


def test_cli_alignment_modes_are_the_parameter_choices():
    """`--alignment-mode` offers exactly what the alignment.mode parameter accepts."""
    from dpt_ros.config.params import BY_NAME
    from dpt_ros.core.alignment import MODES
    from dpt_ros.offline.cli import build_parser

    parser = build_parser()
    for sub in ("bag", "predict"):
        action = next(a for a in parser._subparsers._group_actions[0].choices[sub]._actions
                      if a.dest == "alignment_mode")
        assert tuple(action.choices) == MODES == tuple(BY_NAME["alignment.mode"].choices)
