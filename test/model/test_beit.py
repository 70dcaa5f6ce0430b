"""DPT-BEiT (MiDaS v3.1) and the BEiT backbone against transformers (the oracle): tiny
random-weight reference models saved with save_pretrained, loaded with our loader, compared
in fp32 (max|Δ| <= 1e-4 * max|reference|) at the trained size and at other multiples of the
patch size, where the relative position bias is resampled."""

from __future__ import annotations

import pytest
import torch
from _model_util import assert_close, eager, image, randomize, tiny_beit
from safetensors.torch import load_file, save_file

T = pytest.importorskip("transformers")

from dpt_ros.model import ConfigError, DPTConfig, DPTForDepthEstimation, load_model  # noqa: E402
from dpt_ros.model.backbones.beit import BeitBackbone, BeitConfig  # noqa: E402
from dpt_ros.model.checkpoint import align_checkpoint_keys  # noqa: E402


def _dpt_beit(**backbone) -> T.DPTConfig:
    return T.DPTConfig(backbone_config=tiny_beit(**backbone),
                       neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16)


def _pair(tmp_path, cfg: T.DPTConfig, seed: int = 0):
    ref = eager(randomize(T.DPTForDepthEstimation(cfg), seed)).eval()
    ref.save_pretrained(str(tmp_path))
    return ref, load_model(tmp_path)


def _depth(model, x, **kw):
    with torch.no_grad():
        return model(x, **kw)


# (h, w): the trained 4x4 grid, smaller, larger and non-square (odd 3x5) grids, where the
# bias is resampled
SIZES = [(64, 64), (32, 32), (96, 128), (48, 80)]


@pytest.mark.parametrize("size", SIZES)
def test_dpt_beit_depth_any_multiple_of_16(tmp_path, size):
    ref, ours = _pair(tmp_path, _dpt_beit())
    assert isinstance(ours, DPTForDepthEstimation) and ours.config.backbone_type == "beit"
    assert not ours.config.is_metric
    x = image(*size, batch=2)
    r, o = _depth(ref, x).predicted_depth, _depth(ours, x).predicted_depth
    assert (r > 0).float().mean() > 0.05, "depth almost all clipped: weak test"
    assert_close(o, r)  # shapes included
    if size[0] % 32 == 0 and size[1] % 32 == 0:  # even grid: the 0.5 stage halves it exactly
        assert o.shape == (2, *size)


def test_dpt_beit_hidden_states_attentions_and_tuple(tmp_path):
    ref, ours = _pair(tmp_path, _dpt_beit())
    x = image(48, 80)
    kw = dict(output_hidden_states=True, output_attentions=True)
    r, o = _depth(ref, x, **kw), _depth(ours, x, **kw)
    assert len(o.hidden_states) == len(r.hidden_states) == 5
    for a, b in zip(o.hidden_states, r.hidden_states):
        assert_close(a, b)
    assert len(o.attentions) == len(r.attentions) == 4
    for a, b in zip(o.attentions, r.attentions):  # (B, heads, 1+N, 1+N) probabilities
        assert_close(a, b)
    plain = _depth(ours, x, return_dict=False)
    assert isinstance(plain, tuple) and len(plain) == len(_depth(ref, x, return_dict=False))
    assert_close(plain[0], o.predicted_depth, tol=1e-5)  # SDPA vs eager softmax: ~1e-7


@pytest.mark.parametrize("kw", [
    {"use_relative_position_bias": False, "use_shared_relative_position_bias": True},
    {"use_relative_position_bias": False, "use_absolute_position_embeddings": True},
    {"layer_scale_init_value": 0.0, "reshape_hidden_states": True, "out_indices": [0, 2, 4]},
    {"use_mask_token": True, "qkv_bias": True, "hidden_act": "gelu_new", "image_size": 48},
])
def test_beit_backbone_variants(tmp_path, kw):
    """BeitBackbone alone against transformers' BeitBackbone (feature maps), for the
    options DPT-BEiT does not use: shared bias, absolute embeddings (resampled bicubically),
    no layer scale, maps instead of tokens."""
    cfg = {k: v for k, v in tiny_beit(**kw).items() if k != "qkv_bias"}
    if "out_indices" in kw:
        cfg.pop("out_features")
    ref = randomize(T.BeitBackbone(T.BeitConfig(**cfg))).eval()
    ref.save_pretrained(str(tmp_path))
    ours = BeitBackbone(BeitConfig.from_dict(ref.config.to_dict())).eval()
    state = align_checkpoint_keys(ours, load_file(tmp_path / "model.safetensors"))
    ours.load_state_dict(state, strict=True)
    for size in ((64, 64), (48, 96)):
        x = image(*size)
        with torch.no_grad():
            want, got = ref(x).feature_maps, ours(x)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert_close(a, b)


def test_checkpoint_with_relative_position_index_loads(tmp_path):
    """Checkpoints converted from MiDaS may still carry the index buffers the reference
    recomputes; they load (and are ignored), like transformers' _keys_to_ignore."""
    ref, _ = _pair(tmp_path, _dpt_beit())
    path = tmp_path / "model.safetensors"
    state = load_file(path)
    key = "backbone.encoder.layer.0.attention.attention.relative_position_bias."
    state[key + "relative_position_index"] = torch.zeros(17, 17, dtype=torch.long)
    save_file(state, str(path))
    ours = load_model(tmp_path)
    x = image(64, 64)
    assert_close(_depth(ours, x).predicted_depth, _depth(ref, x).predicted_depth)


def test_config_fields_match_transformers_and_round_trip():
    ref = T.BeitConfig(**{k: v for k, v in tiny_beit().items() if k != "model_type"})
    ours = BeitConfig.from_dict(ref.to_dict())
    for name in ("hidden_size", "num_hidden_layers", "layer_scale_init_value",
                 "use_relative_position_bias", "out_features", "out_indices", "stage_names",
                 "layer_norm_eps", "drop_path_rate", "use_mean_pooling"):
        assert getattr(ours, name) == getattr(ref, name), name
    assert BeitConfig.from_dict(ours.to_dict()) == ours
    defaults = BeitConfig()
    for name in ("hidden_size", "image_size", "patch_size", "layer_scale_init_value",
                 "use_relative_position_bias", "layer_norm_eps"):
        assert getattr(defaults, name) == getattr(T.BeitConfig(), name), name


@pytest.mark.parametrize(("backbone", "field"), [
    ({"reshape_hidden_states": True}, "backbone_config.reshape_hidden_states"),
    ({"out_features": ["stage1", "stage2"], "out_indices": [1, 2]},
     "backbone_config.out_features"),
    ({"add_fpn": True, "out_indices": [1, 2, 3, 4], "out_features": None},
     "backbone_config"),
])
def test_invalid_dpt_beit_configs_name_the_field(backbone, field):
    d = _dpt_beit().to_dict()
    d["backbone_config"].update(backbone)
    if d["backbone_config"].get("out_features") is None:
        d["backbone_config"].pop("out_features")
    with pytest.raises(ConfigError, match=f"field {field}"):
        DPTConfig.from_dict(d)


def test_semantic_segmentation_with_beit_is_rejected_like_reference_cannot_build():
    d = {**_dpt_beit().to_dict(), "architectures": ["DPTForSemanticSegmentation"]}
    with pytest.raises(ConfigError, match="architectures"):
        DPTConfig.from_dict(d)
