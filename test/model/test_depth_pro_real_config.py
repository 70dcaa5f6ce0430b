"""apple/DepthPro-hf: its config (transformers' conversion script: DINOv2-L/16 encoders at
384, fusion 256, hooks 11 / 5, ratios 0.25 / 0.5 / 1, FOV model on) builds our model with
the tensor names and shapes the Hub file has (meta device, no weights)."""

from __future__ import annotations

import json

import pytest
import torch

T = pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")


def depth_pro_hf_config() -> dict:
    large = {"model_type": "dinov2", "hidden_size": 1024, "num_hidden_layers": 24,
             "num_attention_heads": 16, "patch_size": 16, "image_size": 384,
             "layerscale_value": 1.0, "mlp_ratio": 4, "use_swiglu_ffn": False}
    return T.DepthProConfig(
        fusion_hidden_size=256, patch_size=384, intermediate_hook_ids=[11, 5],
        intermediate_feature_dims=[256, 256], scaled_images_ratios=[0.25, 0.5, 1],
        scaled_images_overlap_ratios=[0.0, 0.5, 0.25],
        scaled_images_feature_dims=[1024, 1024, 512], use_fov_model=True,
        num_fov_head_layers=2, image_model_config=large, patch_model_config=large,
        fov_model_config=large, architectures=["DepthProForDepthEstimation"]).to_dict()


def test_hub_layout_loads_strictly():
    from transformers.core_model_loading import revert_weight_conversion

    from dpt_ros.model import DepthProConfig
    from dpt_ros.model.auto import build_model
    from dpt_ros.model.checkpoint import align_checkpoint_keys, check_keys

    config = depth_pro_hf_config()
    with torch.device("meta"):
        ref = T.DepthProForDepthEstimation(T.DepthProConfig.from_dict(config))
    hub = dict(revert_weight_conversion(ref, ref.state_dict()))
    ours = build_model(DepthProConfig.from_dict(json.loads(json.dumps(config))))
    check_keys(ours, align_checkpoint_keys(ours, hub), "apple/DepthPro-hf")
    assert sum(p.numel() for p in ours.parameters()) == sum(t.numel() for t in hub.values())
    assert ours.config.is_metric and ours.config.has_fov and ours.config.encoder_grid == 24
