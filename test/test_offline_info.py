"""`dpt-ros info`: checkpoint facts from config files only, checked against transformers."""

from __future__ import annotations

import json

import pytest
from _offline_util import LABELS, checkpoints

from dpt_ros.offline.cli import main
from dpt_ros.offline.exitcodes import ExitCode


def _reference(name: str) -> tuple[dict, dict, int]:
    """(config.json, preprocessor_config.json, tensor element count) via transformers."""
    import transformers

    path = checkpoints()[name]
    config = json.loads((path / "config.json").read_text())
    proc = json.loads((path / "preprocessor_config.json").read_text())
    cls = getattr(transformers, config["architectures"][0])
    model = cls.from_pretrained(path)
    return config, proc, sum(t.numel() for t in model.state_dict().values())


@pytest.fixture
def no_weights(monkeypatch):
    """Any attempt to build a model or read weights fails the test."""
    import safetensors.torch
    import torch

    import dpt_ros.model.loading as loading

    def boom(*args, **kwargs):
        raise AssertionError("info must not load weights or build the model")

    monkeypatch.setattr(loading, "load_model", boom)
    monkeypatch.setattr(loading, "_read_weights", boom)
    monkeypatch.setattr(safetensors.torch, "load_file", boom)
    monkeypatch.setattr(torch, "load", boom)


@pytest.mark.parametrize("name", ["relative", "metric", "segmentation"])
def test_info_json_matches_transformers(name, capsys, no_weights):
    assert main(["info", str(checkpoints()[name]), "--json"]) == ExitCode.OK
    info = json.loads(capsys.readouterr().out)
    config, proc, n_params = _reference(name)
    assert info["architecture"] == config["architectures"][0]
    assert info["model_type"] == config["model_type"]
    assert info["task"] == ("segmentation" if "Segmentation" in info["architecture"] else "depth")
    assert info["input"]["height"] == proc["size"]["height"]
    assert info["input"]["width"] == proc["size"]["width"]
    assert info["input"]["keep_aspect_ratio"] == proc["keep_aspect_ratio"]
    assert info["parameters"] == n_params
    if name == "segmentation":
        assert info["labels"] == {str(i): v for i, v in enumerate(LABELS)}
        assert info["num_labels"] == len(LABELS)
        assert "depth" not in info
    else:
        expected = config.get("depth_estimation_type", "relative")
        assert info["depth"].startswith(expected)
        assert "labels" not in info
    if name == "metric":
        assert info["backbone"] == "dinov2" and info["max_depth_m"] == config["max_depth"]


def test_info_text(capsys, no_weights):
    assert main(["info", str(checkpoints()["segmentation"])]) == ExitCode.OK
    text = capsys.readouterr().out
    assert "DPTForSemanticSegmentation" in text
    assert "task:          segmentation" in text
    assert "input size:    32 x 32" in text
    assert "labels (3): 0: wall, 1: floor, 2: chair" in text
    assert main(["info", str(checkpoints()["metric"])]) == ExitCode.OK
    assert "metric (metres)" in capsys.readouterr().out


def test_info_bad_source(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == ExitCode.INPUT
    (tmp_path / "config.json").write_text("{not json")
    assert main(["info", str(tmp_path)]) == ExitCode.INPUT
    assert "config.json" in capsys.readouterr().err
