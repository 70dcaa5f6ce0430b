"""Real-size configs (the config.json of the Hub checkpoints we target, written out here since
there is no network): random weights in the transformers model, save_pretrained, our strict
load_model, one small forward compared. Slow (hundreds of MB per model) but run in CI.

The MiDaS v3.1 and ZoeDepth checkpoints (DPT-BEiT, DPT-Swinv2, ZoeDepth) are built with
transformers' config classes exactly as its conversion scripts built the Hub configs. All of
them are checked on the meta device (the Hub tensor names and shapes, as save_pretrained
writes them, load into our models: no memory, no time); three of them (the two smallest and
ZoeDepth NYU-KITTI) also run a forward here, the large DPTs in benchmarks/bench_model.py."""

from __future__ import annotations

import gc
import json

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


def _dpt_beit(size: int, large: bool) -> dict:
    """Intel/dpt-beit-{large-512,large-384,base-384} (convert_dpt_beit_to_hf.py)."""
    n = 24 if large else 12
    backbone = T.BeitConfig(
        image_size=size, num_hidden_layers=n, hidden_size=1024 if large else 768,
        intermediate_size=4096 if large else 3072, num_attention_heads=16 if large else 12,
        use_relative_position_bias=True, reshape_hidden_states=False,
        out_features=[f"stage{n // 4 * i}" for i in range(1, 5)])
    neck = [256, 512, 1024, 1024] if large else [96, 192, 384, 768]
    return T.DPTConfig(backbone_config=backbone, neck_hidden_sizes=neck,
                       architectures=["DPTForDepthEstimation"]).to_dict()


def _dpt_swinv2(kind: str, size: int) -> dict:
    """Intel/dpt-swinv2-{tiny-256,base-384,large-384} (convert_dpt_swinv2_to_hf.py)."""
    embed, depths, heads, window, pretrained = {
        "tiny": (96, [2, 2, 6, 2], [3, 6, 12, 24], 16, [0, 0, 0, 0]),
        "base": (128, [2, 2, 18, 2], [4, 8, 16, 32], 24, [12, 12, 12, 6]),
        "large": (192, [2, 2, 18, 2], [6, 12, 24, 48], 24, [12, 12, 12, 6]),
    }[kind]
    backbone = T.Swinv2Config(
        image_size=size, embed_dim=embed, depths=depths, window_size=window,
        pretrained_window_sizes=pretrained, num_heads=heads,
        out_features=["stage1", "stage2", "stage3", "stage4"])
    return T.DPTConfig(backbone_config=backbone, neck_hidden_sizes=[embed * 2**i for i in range(4)],
                       architectures=["DPTForDepthEstimation"]).to_dict()


def _zoedepth(name: str) -> dict:
    """Intel/zoedepth-{nyu,kitti,nyu-kitti} (convert_zoedepth_to_hf.py; the KITTI model's
    config really has the NYU bins, 10 m, on the Hub)."""
    backbone = T.BeitConfig(
        image_size=384, num_hidden_layers=24, hidden_size=1024, intermediate_size=4096,
        num_attention_heads=16, use_relative_position_bias=True, reshape_hidden_states=False,
        out_features=["stage6", "stage12", "stage18", "stage24"])
    nyu = {"name": "nyu", "n_bins": 64, "min_depth": 1e-3, "max_depth": 10.0}
    kitti = {"name": "kitti", "n_bins": 64, "min_depth": 1e-3, "max_depth": 80.0}
    routed = name == "nyu-kitti"
    return T.ZoeDepthConfig(
        backbone_config=backbone, neck_hidden_sizes=[256, 512, 1024, 1024],
        bin_centers_type="normed" if name == "kitti" else "softplus",
        bin_configurations=[nyu, kitti] if routed else [nyu],
        num_patch_transformer_layers=4 if routed else None,
        patch_transformer_hidden_size=128 if routed else None,
        patch_transformer_intermediate_size=1024 if routed else None,
        patch_transformer_num_attention_heads=4 if routed else None,
        architectures=["ZoeDepthForDepthEstimation"]).to_dict()


MIDAS31_CONFIGS = {
    "Intel/dpt-beit-large-512": _dpt_beit(512, True),
    "Intel/dpt-beit-large-384": _dpt_beit(384, True),
    "Intel/dpt-beit-base-384": _dpt_beit(384, False),
    "Intel/dpt-swinv2-tiny-256": _dpt_swinv2("tiny", 256),
    "Intel/dpt-swinv2-base-384": _dpt_swinv2("base", 384),
    "Intel/dpt-swinv2-large-384": _dpt_swinv2("large", 384),
    "Intel/zoedepth-nyu": _zoedepth("nyu"),
    "Intel/zoedepth-kitti": _zoedepth("kitti"),
    "Intel/zoedepth-nyu-kitti": _zoedepth("nyu-kitti"),
}
# materialised and run here (the rest: meta-device key/shape check, forwards in the benchmark)
MIDAS31_SIZES = {"Intel/dpt-beit-base-384": (64, 96), "Intel/dpt-swinv2-tiny-256": (256, 256),
                 "Intel/zoedepth-nyu-kitti": (64, 96)}


def _fill_derived_buffers(model: torch.nn.Module) -> torch.nn.Module:
    """`to_empty` leaves non-persistent buffers uninitialised and randomize() does not touch
    them: recompute the ones the reference derives from its config (Swin V2's position
    tables, ZoeDepth's binomial indices)."""
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "create_coords_table_and_index"):
                table, index = module.create_coords_table_and_index()
                module.relative_coords_table.copy_(table)
                module.relative_position_index.copy_(index)
            if hasattr(module, "k_idx") and hasattr(module, "k_minus_1"):
                module.k_idx.copy_(torch.arange(module.k).view(1, -1, 1, 1))
                module.k_minus_1.fill_(module.k - 1)
    return model


def build_reference(config: dict, device: str = "cpu") -> torch.nn.Module:
    """The transformers model of a config.json dict, uninitialised (randomize() writes every
    tensor), on `device` ('meta': shapes only)."""
    d = dict(config)
    if d["model_type"] == "zoedepth":
        with torch.device("meta"):
            model = T.ZoeDepthForDepthEstimation(T.ZoeDepthConfig.from_dict(d))
        return model if device == "meta" else _fill_derived_buffers(model.to_empty(device=device))
    if d["model_type"] == "depth_anything":
        if d["max_depth"] is None:  # absent from the relative checkpoints' configs
            del d["max_depth"]
        cls, cfg = T.DepthAnythingForDepthEstimation, T.DepthAnythingConfig.from_dict(d)
    else:
        cls, cfg = getattr(T, d["architectures"][0]), T.DPTConfig.from_dict(d)
    # built on the meta device and left uninitialised: randomize() writes every tensor
    with torch.device("meta"):
        model = cls(cfg)
    return model if device == "meta" else _fill_derived_buffers(model.to_empty(device=device))


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


@pytest.mark.parametrize("repo", list(MIDAS31_CONFIGS))
def test_midas31_and_zoedepth_checkpoint_layout_loads(repo):
    """The tensors save_pretrained writes for the real config (names after transformers'
    save-time renaming, shapes), on the meta device, pass our strict loader's checks."""
    from transformers.core_model_loading import revert_weight_conversion

    from dpt_ros.model.auto import build_model, config_from_dict
    from dpt_ros.model.checkpoint import align_checkpoint_keys, check_keys

    config = MIDAS31_CONFIGS[repo]
    ref = build_reference(config, device="meta")
    hub = dict(revert_weight_conversion(ref, ref.state_dict()))
    ours = build_model(config_from_dict(json.loads(json.dumps(config))))
    assert type(ours).__name__ == config["architectures"][0]
    check_keys(ours, align_checkpoint_keys(ours, hub), repo)
    assert sum(p.numel() for p in ours.parameters()) == sum(t.numel() for t in hub.values())
    assert ours.config.is_metric is ("zoedepth" in repo)


@pytest.mark.parametrize("repo", list(MIDAS31_SIZES))
def test_midas31_real_size_forward(tmp_path, repo):
    ref = randomize(build_reference(MIDAS31_CONFIGS[repo])).eval()
    x = image(*MIDAS31_SIZES[repo])
    expected = _output(ref, x)
    ref.save_pretrained(str(tmp_path))
    del ref
    gc.collect()
    assert_close(_output(load_model(tmp_path), x), expected)


def test_shipped_configs_name_checkpoints_of_the_kind_they_promise():
    """config/dpt.yaml (what `ros2 launch dpt_ros dpt.launch.py` runs) names a metric
    checkpoint, so the default launch publishes ~/depth and ~/points; the aligned examples
    name relative ones, with alignment on (their metres come from the reference). Whether
    a repo is metric is `test_real_size_config`'s check on its real config."""
    from pathlib import Path

    from dpt_ros.config.params_file import load_params_file

    config = Path(__file__).resolve().parents[2] / "config"
    default = load_params_file(config / "dpt.yaml")["depth_model"]
    assert default in CONFIGS and CONFIGS[default]["depth_estimation_type"] == "metric"
    for name in ("aligned_rgbd.yaml", "aligned_lidar.yaml"):
        params = load_params_file(config / name)
        repo = params["depth_model"]
        assert repo in CONFIGS, repo
        assert CONFIGS[repo].get("depth_estimation_type", "relative") == "relative", repo
        assert params["alignment.mode"] == "scale_shift", name
