"""DPT-Swinv2 (MiDaS v3.1) and the Swin V2 backbone against transformers (the oracle):
tiny random-weight reference models saved with save_pretrained, loaded with our loader,
compared in fp32 (max|Δ| <= 1e-4 * max|reference|), at the trained size, larger and
non-square sizes, and sizes the windows do not tile (zero-padded as in the reference)."""

from __future__ import annotations

import pytest
import torch
from _model_util import assert_close, image, randomize, tiny_swinv2
from safetensors.torch import load_file

T = pytest.importorskip("transformers")

from dpt_ros.model import ConfigError, DPTConfig, load_model  # noqa: E402
from dpt_ros.model.backbones.swinv2 import Swinv2Backbone, Swinv2Config  # noqa: E402


def _dpt_swinv2(**backbone) -> T.DPTConfig:
    return T.DPTConfig(backbone_config=tiny_swinv2(**backbone),
                       neck_hidden_sizes=[8, 16, 32, 64], fusion_hidden_size=16)


def _pair(tmp_path, cfg: T.DPTConfig):
    ref = randomize(T.DPTForDepthEstimation(cfg)).eval()
    ref.save_pretrained(str(tmp_path))
    return ref, load_model(tmp_path)


def _run(model, x, **kw):
    with torch.no_grad():
        return model(x, **kw)


# trained 64x64; 2x larger (4x the windows); non-square; 96 = 24/12/6/3 tokens: windows of
# 4 padded and odd grids padded before merging; 68 is not a multiple of 32 at all
SIZES = [(64, 64), (128, 128), (64, 160), (96, 96), (68, 68)]


@pytest.mark.parametrize("size", SIZES)
def test_dpt_swinv2_depth(tmp_path, size):
    ref, ours = _pair(tmp_path, _dpt_swinv2())
    assert ours.config.backbone_type == "swinv2" and ours.neck.reassemble_stage is None
    x = image(*size, batch=2)
    r, o = _run(ref, x).predicted_depth, _run(ours, x).predicted_depth
    assert (r > 0).float().mean() > 0.05, "depth almost all clipped: weak test"
    assert_close(o, r)
    if size[0] % 32 == 0 and size[1] % 32 == 0:
        assert o.shape == (2, *size)


def test_pretrained_window_sizes_and_hidden_states_attentions(tmp_path):
    """Position-bias coordinates normalised by the pretraining window (base/large layout);
    hidden states (embeddings + every stage) and the attentions the reference returns (the
    last block of each stage)."""
    ref, ours = _pair(tmp_path, _dpt_swinv2(pretrained_window_sizes=[3, 3, 3, 2]))
    x = image(64, 96)
    kw = dict(output_hidden_states=True, output_attentions=True)
    r, o = _run(ref, x, **kw), _run(ours, x, **kw)
    assert_close(o.predicted_depth, r.predicted_depth)
    assert len(o.hidden_states) == len(r.hidden_states) == 5
    for a, b in zip(o.hidden_states, r.hidden_states):
        assert_close(a, b)
    assert len(o.attentions) == len(r.attentions) == 4
    for a, b in zip(o.attentions, r.attentions):
        assert_close(a, b)


@pytest.mark.parametrize("kw", [
    {"out_features": ["stem", "stage2", "stage4"]},
    {"qkv_bias": False, "mlp_ratio": 2.0, "hidden_act": "relu", "window_size": 8,
     "out_indices": [3]},
])
def test_swinv2_backbone_maps(tmp_path, kw):
    cfg = {k: v for k, v in tiny_swinv2(**kw).items() if k != "model_type"}
    if "out_indices" in kw:
        cfg.pop("out_features")
    ref = randomize(T.Swinv2Backbone(T.Swinv2Config(**cfg))).eval()
    ref.save_pretrained(str(tmp_path))
    ours = Swinv2Backbone(Swinv2Config.from_dict(ref.config.to_dict())).eval()
    ours.load_state_dict(load_file(tmp_path / "model.safetensors"), strict=True)
    assert ours.channels == list(ref.channels)
    for size in ((64, 64), (96, 64)):
        x = image(*size)
        with torch.no_grad():
            want, got = ref(x).feature_maps, ours(x)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert_close(a, b)


def test_config_fields_match_transformers_and_round_trip():
    ref = T.Swinv2Config(**{k: v for k, v in tiny_swinv2().items() if k != "model_type"})
    ours = Swinv2Config.from_dict(ref.to_dict())
    for name in ("embed_dim", "depths", "num_heads", "window_size", "pretrained_window_sizes",
                 "out_features", "out_indices", "stage_names", "hidden_size",
                 "layer_norm_eps"):
        want = getattr(ref, name)
        assert getattr(ours, name) == (list(want) if isinstance(want, tuple) else want), name
    assert Swinv2Config.from_dict(ours.to_dict()) == ours
    defaults, reference = Swinv2Config(), T.Swinv2Config()
    for name in ("embed_dim", "window_size", "patch_size", "mlp_ratio", "layer_norm_eps"):
        assert getattr(defaults, name) == getattr(reference, name), name


@pytest.mark.parametrize(("change", "field"), [
    ({"neck_hidden_sizes": [8, 16, 32, 32]}, "neck_hidden_sizes"),
    ({"backbone_config": {**tiny_swinv2(), "num_heads": [1, 2]}}, "backbone_config"),
    ({"backbone_config": {**tiny_swinv2(), "use_absolute_embeddings": True}},
     "backbone_config"),
])
def test_invalid_dpt_swinv2_configs_name_the_field(change, field):
    d = {**_dpt_swinv2().to_dict(), **change}
    with pytest.raises(ConfigError, match=f"field {field}"):
        DPTConfig.from_dict(d)
