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
    import torch

    import dpt_ros.model.auto as auto
    import dpt_ros.model.checkpoint as checkpoint

    def boom(*args, **kwargs):
        raise AssertionError("info must not load weights or build the model")

    monkeypatch.setattr(auto, "load_model", boom)
    monkeypatch.setattr(checkpoint, "read_weights", boom)
    monkeypatch.setattr(checkpoint, "load_file", boom)
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


@pytest.fixture(scope="module")
def midas31(tmp_path_factory):
    """Tiny DPT-BEiT, DPT-Swinv2 and ZoeDepth (NYU-KITTI) checkpoints saved by transformers,
    with the preprocessor configs their Hub checkpoints have (at small sizes)."""
    import transformers as T
    from _model_util import tiny_beit, tiny_swinv2, tiny_zoedepth

    root = tmp_path_factory.mktemp("midas31")
    dpt = dict(neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16)
    models = {
        "beit": (T.DPTForDepthEstimation(T.DPTConfig(backbone_config=tiny_beit(), **dpt)),
                 T.DPTImageProcessorPil(size={"height": 64, "width": 64},
                                        ensure_multiple_of=32)),
        "swinv2": (T.DPTForDepthEstimation(T.DPTConfig(
            backbone_config=tiny_swinv2(), neck_hidden_sizes=[8, 16, 32, 64],
            fusion_hidden_size=16)), T.DPTImageProcessorPil(size={"height": 64, "width": 64})),
        "zoedepth": (T.ZoeDepthForDepthEstimation(T.ZoeDepthConfig(**tiny_zoedepth(True))),
                     T.ZoeDepthImageProcessorPil(size={"height": 64, "width": 96},
                                                 ensure_multiple_of=32)),
    }
    paths = {}
    for name, (model, processor) in models.items():
        paths[name] = root / name
        model.save_pretrained(paths[name])
        processor.save_pretrained(paths[name])
    return paths


@pytest.mark.parametrize("name", ["beit", "swinv2", "zoedepth"])
def test_info_midas31_and_zoedepth(midas31, name, capsys, no_weights):
    assert main(["info", str(midas31[name]), "--json"]) == ExitCode.OK
    info = json.loads(capsys.readouterr().out)
    config = json.loads((midas31[name] / "config.json").read_text())
    assert info["architecture"] == config["architectures"][0]
    assert info["backbone"] == config["backbone_config"]["model_type"]
    assert info["depth"].startswith("metric" if name == "zoedepth" else "relative")
    assert info["patch_size"] == config["backbone_config"]["patch_size"]
    if name == "zoedepth":
        bins = config["bin_configurations"]
        assert [h["max_depth_m"] for h in info["metric_heads"]] == [b["max_depth"] for b in bins]
        assert info["router"] is True and info["bin_centers"] == config["bin_centers_type"]
        assert info["input"]["reflect_padding"] is True
        assert "max_depth_m" not in info  # softplus bins are not clipped to the range
    assert main(["info", str(midas31[name])]) == ExitCode.OK
    text = capsys.readouterr().out
    if name == "zoedepth":
        assert "metric heads:  nyu 0.001-10 m, kitti 0.001-80 m, softplus bins" in text
        assert "reflect-padded" in text
