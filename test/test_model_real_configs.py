"""Real-size configs (the config.json of the Hub checkpoints we target, written out here since
there is no network): random weights in the transformers model, save_pretrained, our strict
load_model, one small forward compared. Slow (hundreds of MB per model) but run in CI."""

from __future__ import annotations

import gc

import pytest
import torch

T = pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")

from _model_util import assert_close, image, randomize  # noqa: E402

from dpt_ros.model import load_model  # noqa: E402

pytestmark = pytest.mark.slow

ADE20K = (
    "wall building sky floor tree ceiling road bed windowpane grass cabinet sidewalk person "
    "earth door table mountain plant curtain chair car water painting sofa shelf house sea "
    "mirror rug field armchair seat fence desk rock wardrobe lamp bathtub railing cushion base "
    "box column signboard chest_of_drawers counter sand sink skyscraper fireplace refrigerator "
    "grandstand path stairs runway case pool_table pillow screen_door stairway river bridge "
    "bookcase blind coffee_table toilet flower book hill bench countertop stove palm "
    "kitchen_island computer swivel_chair boat bar arcade_machine hovel bus towel light truck "
    "tower chandelier awning streetlight booth television_receiver airplane dirt_track apparel "
    "pole land bannister escalator ottoman bottle buffet poster stage van ship fountain "
    "conveyer_belt canopy washer plaything swimming_pool stool barrel basket waterfall tent bag "
    "minibike cradle oven ball food step tank trade_name microwave pot animal bicycle lake "
    "dishwasher screen blanket sculpture hood sconce vase traffic_light tray ashcan fan pier "
    "crt_screen plate monitor bulletin_board shower radiator glass clock flag"
).split()

_DPT_LARGE = {
    "model_type": "dpt",
    "architectures": ["DPTForDepthEstimation"],
    "attention_probs_dropout_prob": 0.0,
    "auxiliary_loss_weight": 0.4,
    "backbone_out_indices": [5, 11, 17, 23],
    "fusion_hidden_size": 256,
    "head_in_index": -1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "hidden_size": 1024,
    "image_size": 384,
    "initializer_range": 0.02,
    "intermediate_size": 4096,
    "is_hybrid": False,
    "layer_norm_eps": 1e-12,
    "neck_hidden_sizes": [256, 512, 1024, 1024],
    "num_attention_heads": 16,
    "num_channels": 3,
    "num_hidden_layers": 24,
    "patch_size": 16,
    "qkv_bias": True,
    "readout_type": "project",
    "reassemble_factors": [4, 2, 1, 0.5],
    "semantic_classifier_dropout": 0.1,
    "semantic_loss_ignore_index": 255,
    "use_auxiliary_head": True,
    "use_batch_norm_in_fusion_residual": False,
}
CONFIGS = {
    "Intel/dpt-large": _DPT_LARGE,
    "Intel/dpt-large-ade": {
        **_DPT_LARGE,
        "architectures": ["DPTForSemanticSegmentation"],
        "use_batch_norm_in_fusion_residual": True,
        "id2label": {str(i): name for i, name in enumerate(ADE20K)},
        "label2id": {name: i for i, name in enumerate(ADE20K)},
    },
    "Intel/dpt-hybrid-midas": {
        **_DPT_LARGE,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "backbone_out_indices": [2, 5, 8, 11],
        "is_hybrid": True,
        "neck_hidden_sizes": [256, 512, 768, 768],
        "reassemble_factors": [1, 1, 1, 0.5],
        "backbone_featmap_shape": [1, 1024, 24, 24],
        "neck_ignore_stages": [0, 1],
        "backbone_config": {
            "model_type": "bit",
            "depths": [3, 4, 9],
            "embedding_dynamic_padding": True,
            "embedding_size": 64,
            "global_padding": "SAME",
            "hidden_act": "relu",
            "hidden_sizes": [256, 512, 1024, 2048],
            "layer_type": "bottleneck",
            "num_channels": 3,
            "num_groups": 32,
            "out_features": ["stage1", "stage2", "stage3"],
            "output_stride": 32,
            "drop_path_rate": 0.0,
            "width_factor": 1,
        },
    },
}
_DA_V2_SMALL = {
    "model_type": "depth_anything",
    "architectures": ["DepthAnythingForDepthEstimation"],
    "backbone_config": {
        "model_type": "dinov2",
        "architectures": ["Dinov2Model"],
        "hidden_size": 384,
        "image_size": 518,
        "num_attention_heads": 6,
        "out_features": ["stage3", "stage6", "stage9", "stage12"],
        "out_indices": [3, 6, 9, 12],
        "patch_size": 14,
        "reshape_hidden_states": False,
        "apply_layernorm": True,
        "layer_norm_eps": 1e-6,
        "layerscale_value": 1.0,
        "mlp_ratio": 4,
        "num_hidden_layers": 12,
        "use_swiglu_ffn": False,
    },
    "fusion_hidden_size": 64,
    "head_hidden_size": 32,
    "head_in_index": -1,
    "initializer_range": 0.02,
    "neck_hidden_sizes": [48, 96, 192, 384],
    "patch_size": 14,
    "reassemble_factors": [4, 2, 1, 0.5],
    "reassemble_hidden_size": 384,
    "depth_estimation_type": "relative",
    "max_depth": None,
}
CONFIGS["depth-anything/Depth-Anything-V2-Small-hf"] = _DA_V2_SMALL
CONFIGS["depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"] = {
    **_DA_V2_SMALL, "depth_estimation_type": "metric", "max_depth": 20,
}
# (input size: the reference accepts only 384 for the hybrid; small elsewhere to stay quick)
SIZES = {
    "Intel/dpt-large": (64, 64),
    "Intel/dpt-large-ade": (64, 64),
    "Intel/dpt-hybrid-midas": (384, 384),
    "depth-anything/Depth-Anything-V2-Small-hf": (70, 98),
    "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf": (70, 98),
}


def build_reference(config: dict) -> torch.nn.Module:
    d = dict(config)
    if d["model_type"] == "depth_anything":
        if d["max_depth"] is None:  # absent from the relative checkpoints' configs
            del d["max_depth"]
        cls, cfg = T.DepthAnythingForDepthEstimation, T.DepthAnythingConfig.from_dict(d)
    else:
        cls, cfg = getattr(T, d["architectures"][0]), T.DPTConfig.from_dict(d)
    # built on the meta device and left uninitialised: randomize() writes every tensor
    with torch.device("meta"):
        model = cls(cfg)
    return model.to_empty(device="cpu")


def _output(model, x):
    with torch.no_grad():
        out = model(x)
    return out.logits if hasattr(out, "logits") else out.predicted_depth


@pytest.mark.parametrize("repo", list(CONFIGS))
def test_real_size_config(tmp_path, repo):
    assert len(ADE20K) == 150
    ref = randomize(build_reference(CONFIGS[repo])).eval()
    x = image(*SIZES[repo])
    expected = _output(ref, x)
    ref.save_pretrained(str(tmp_path))
    n_params = sum(p.numel() for p in ref.parameters())
    del ref
    gc.collect()
    ours = load_model(tmp_path)
    assert type(ours).__name__ == CONFIGS[repo]["architectures"][0]
    assert sum(p.numel() for p in ours.parameters()) == n_params
    assert_close(_output(ours, x), expected)
    if "ade" in repo:
        assert ours.config.labels[149] == "flag" and ours.config.task == "segmentation"
    assert ours.config.is_metric is ("Metric" in repo)
