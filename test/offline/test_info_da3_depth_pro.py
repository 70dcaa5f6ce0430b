"""`dpt-ros info` describes the new families: DA3 metric (focal / 300, sky), DA3 mono
(relative depth up to scale, sky), Depth Pro (metres from the focal length, FOV)."""

from __future__ import annotations

import json

from dpt_ros.model import (
    DepthAnything3Config,
    DepthAnything3ForDepthEstimation,
    DepthProConfig,
    DepthProForDepthEstimation,
)
from dpt_ros.offline.info import checkpoint_info, format_info

SMALL_NET = {"name": "vits", "out_layers": [2, 5, 8, 11]}
SMALL_HEAD = {"dim_in": 384, "features": 64, "out_channels": [48, 96, 192, 384]}


def _da3(tmp_path, name):
    config = DepthAnything3Config.from_dict({"model_name": name, "net": SMALL_NET,
                                             "head": SMALL_HEAD})
    return DepthAnything3ForDepthEstimation(config).save_pretrained(tmp_path / name)


def test_da3_metric_and_mono(tmp_path):
    metric = checkpoint_info(str(_da3(tmp_path, "da3metric-large")))
    assert metric["depth"].startswith("metric") and "/ 300" in metric["depth"]
    assert metric["sky"] is True and metric["input"]["longest_side"] == 504
    mono = checkpoint_info(str(_da3(tmp_path, "da3mono-large")))
    assert mono["depth"] == "relative (depth up to scale)" and mono["sky"] is True
    assert "sky head" in format_info(mono)


def test_depth_pro(tmp_path):
    dino = {"model_type": "dinov2", "hidden_size": 32, "num_hidden_layers": 3,
            "num_attention_heads": 2, "patch_size": 16}
    config = DepthProConfig.from_dict({
        "use_fov_model": True, "fusion_hidden_size": 16, "patch_size": 64,
        "intermediate_hook_ids": [2, 1], "intermediate_feature_dims": [16, 16],
        "scaled_images_feature_dims": [32, 32, 16], "image_model_config": dino,
        "patch_model_config": dino, "fov_model_config": dino})
    directory = DepthProForDepthEstimation(config).save_pretrained(tmp_path / "dp")
    (directory / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": "DepthProImageProcessorFast",
         "size": {"height": 256, "width": 256}}))
    info = checkpoint_info(str(directory))
    assert info["depth"].startswith("metric") and "field-of-view" in info["depth"]
    assert info["field_of_view"] is True and info["input"]["height"] == 256
    assert "field of view: estimated" in format_info(info)
