"""Distill-Any-Depth (xingyang1/Distill-Any-Depth-{Small,Large}-hf) loads through the Depth
Anything path unchanged: transformers' conversion script (convert_distill_any_depth_to_hf.py)
makes a relative DepthAnythingConfig on DINOv2-{small,base,large} with the Depth Anything V2
necks and a DPTImageProcessor (518, keep aspect ratio, multiple of 14, ImageNet mean / std).
Those configs, written out here, with random weights in transformers' model: our strict
load_model and a forward compared (Small; Large on the meta device: names and shapes)."""

from __future__ import annotations

import pytest
import torch

T = pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")

from _model_util import (  # noqa: E402
    assert_close,
    build_reference,
    image,
    randomize,
)

from dpt_ros.model import DepthAnythingForDepthEstimation, load_model, load_processor  # noqa: E402

# facebook/dinov2-{small,base,large} as the conversion script reads them
_DINOV2 = {"small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}
_NECK = {"small": (64, [48, 96, 192, 384], [3, 6, 9, 12]),
         "base": (128, [96, 192, 384, 768], [3, 6, 9, 12]),
         "large": (256, [256, 512, 1024, 1024], [5, 12, 18, 24])}
PROCESSOR = {
    "image_processor_type": "DPTImageProcessor", "do_resize": True,
    "size": {"height": 518, "width": 518}, "ensure_multiple_of": 14, "keep_aspect_ratio": True,
    "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 3,
}


def distill_config(size: str) -> dict:
    hidden, layers, heads = _DINOV2[size]
    fusion, neck, out_indices = _NECK[size]
    return {
        "model_type": "depth_anything",
        "architectures": ["DepthAnythingForDepthEstimation"],
        "backbone_config": {
            "model_type": "dinov2", "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "image_size": 518, "patch_size": 14,
            "mlp_ratio": 4, "layerscale_value": 1.0, "layer_norm_eps": 1e-6,
            "use_swiglu_ffn": False, "out_indices": out_indices,
            "out_features": [f"stage{i}" for i in out_indices],
            "apply_layernorm": True, "reshape_hidden_states": False,
        },
        "fusion_hidden_size": fusion, "head_hidden_size": 32, "head_in_index": -1,
        "neck_hidden_sizes": neck, "patch_size": 14, "reassemble_factors": [4, 2, 1, 0.5],
        "reassemble_hidden_size": hidden, "depth_estimation_type": "relative",
        "max_depth": None,  # the script passes None: absent / 1 in the Hub file
    }


REPOS = {"xingyang1/Distill-Any-Depth-Small-hf": "small",
         "xingyang1/Distill-Any-Depth-Large-hf": "large"}


def _save(tmp_path, config: dict):
    import json

    ref = randomize(build_reference(config, "cpu").eval())
    ref.save_pretrained(str(tmp_path))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(PROCESSOR))
    return ref


def test_small_loads_and_matches_transformers(tmp_path):
    ref = _save(tmp_path, distill_config("small"))
    ours = load_model(tmp_path)
    assert isinstance(ours, DepthAnythingForDepthEstimation) and not ours.config.is_metric
    x = image(70, 98)
    with torch.no_grad():
        assert_close(ours(x).predicted_depth, ref(x).predicted_depth)
    proc = load_processor(tmp_path)
    assert proc.output_size(480, 640) == (518, 686)  # the script's expected (1, 518, 686)


@pytest.mark.parametrize("size", ["base", "large"])
def test_larger_sizes_names_and_shapes(size):
    """The tensors save_pretrained writes for the config (after transformers' save-time
    renaming), on the meta device, pass our strict loader's checks."""
    import json

    from transformers.core_model_loading import revert_weight_conversion

    from dpt_ros.model.auto import build_model, config_from_dict
    from dpt_ros.model.checkpoint import align_checkpoint_keys, check_keys

    config = distill_config(size)
    ref = build_reference(config, "meta")
    hub = dict(revert_weight_conversion(ref, ref.state_dict()))
    ours = build_model(config_from_dict(json.loads(json.dumps(config))))
    check_keys(ours, align_checkpoint_keys(ours, hub), size)
    assert sum(p.numel() for p in ours.parameters()) == sum(t.numel() for t in hub.values())
