"""The published DA3 checkpoints' configs (config.json as on the Hub: only model_name)
build our network with the official key names and shapes (meta device, no weights)."""

from __future__ import annotations

import pytest
import torch
from _da3_oracle import oracle

from dpt_ros.model import ConfigError, DepthAnything3ForDepthEstimation
from dpt_ros.model.depth_anything3.configuration import DepthAnything3Config

REAL = {"depth-anything/DA3METRIC-LARGE": "da3metric-large",
        "depth-anything/DA3MONO-LARGE": "da3mono-large"}


@pytest.fixture(scope="module")
def official_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    """Key -> shape of the official network of each preset, from the package's own YAML.
    Built for real (its constructor calls .item(), so not on the meta device): once for
    the two presets when their YAMLs describe the same network."""
    oracle()
    from depth_anything_3.cfg import create_object, load_config
    from depth_anything_3.registry import MODEL_REGISTRY

    configs = {name: load_config(MODEL_REGISTRY[name]) for name in REAL.values()}
    shapes: dict[str, dict[str, tuple[int, ...]]] = {}
    built: list[tuple[object, dict[str, tuple[int, ...]]]] = []
    for name, config in configs.items():
        for other, keys in built:
            if other == config:
                shapes[name] = keys
                break
        else:
            net = create_object(config)
            keys = {f"model.{k}": tuple(v.shape) for k, v in net.state_dict().items()}
            del net
            built.append((config, keys))
            shapes[name] = keys
    return shapes


def _meta_model(config: DepthAnything3Config) -> DepthAnything3ForDepthEstimation:
    with torch.device("meta"):
        return DepthAnything3ForDepthEstimation(config)


def _official_keys(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    state = model.model_to_checkpoint(model.state_dict())
    return {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("repo", sorted(REAL))
def test_real_config_keys_and_shapes(repo):
    config = DepthAnything3Config.from_dict({"model_name": REAL[repo]})
    keys = _official_keys(_meta_model(config))
    assert keys["model.backbone.pretrained.blocks.23.attn.qkv.weight"] == (3072, 1024)
    assert keys["model.backbone.pretrained.pos_embed"] == (1, 1370, 1024)
    assert keys["model.head.scratch.layer4_rn.weight"] == (256, 1024, 3, 3)
    assert keys["model.head.resize_layers.3.weight"] == (1024, 1024, 3, 3)
    assert keys["model.head.scratch.sky_output_conv2.2.weight"] == (1, 32, 1, 1)
    assert not any("refinenet4.resConfUnit1" in k for k in keys)
    assert config.is_metric == REAL[repo].startswith("da3metric")
    assert config.to_dict() == {"model_name": REAL[repo]}


@pytest.mark.parametrize("repo", sorted(REAL))
def test_real_config_equals_official_network(repo, official_shapes):
    config = DepthAnything3Config.from_dict({"model_name": REAL[repo]})
    assert _official_keys(_meta_model(config)) == official_shapes[REAL[repo]]


@pytest.mark.parametrize("name", ["da3-small", "da3-base", "da3-large", "da3-giant",
                                  "da3nested-giant-large"])
def test_other_presets_are_refused_with_the_reason(name):
    with pytest.raises(ConfigError, match="not supported"):
        DepthAnything3Config.from_dict({"model_name": name})


def test_shipped_example_configs_name_the_new_checkpoints():
    """config/da3_metric.yaml runs DA3METRIC (metric, sky NaN by default); depth_pro.yaml
    Depth Pro with its field of view as calibration."""
    from pathlib import Path

    from dpt_ros.config.params_file import load_params_file

    config = Path(__file__).resolve().parents[2] / "config"
    da3 = load_params_file(config / "da3_metric.yaml")
    assert da3["depth_model"] in REAL and REAL[da3["depth_model"]].startswith("da3metric")
    assert da3["depth.keep_sky"] is False
    pro = load_params_file(config / "depth_pro.yaml")
    assert pro["depth_model"] == "apple/DepthPro-hf" and pro["camera.estimate_intrinsics"]
