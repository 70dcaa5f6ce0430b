"""BiT and DINOv2 backbones against transformers (the oracle): small random-weight reference
models are saved with `save_pretrained` (the Hub tensor layout), loaded into ours with
strict=True, and the feature maps compared. Configs are checked against transformers' configs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

transformers = pytest.importorskip("transformers")

from dpt_ros.model.backbones.bit import BitBackbone, BitConfig  # noqa: E402
from dpt_ros.model.backbones.dinov2 import Dinov2Backbone, Dinov2Config  # noqa: E402

TOL = 1e-4  # max|Δ| <= TOL * max|ref|, fp32


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter random (norm scales and layer scales around 1), so a wrong norm,
    a swapped tensor or a dropped bias shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if p.ndim >= 2 and "token" not in name and "position" not in name:
                p.copy_(r / math.sqrt(p[0].numel()))
            elif name.endswith("lambda1") or ("norm" in name and name.endswith("weight")):
                p.copy_(1.0 + 0.3 * r)
            else:
                p.copy_(0.3 * r)


def _hub_state_dict(model, tmp_path: Path) -> dict[str, torch.Tensor]:
    """The tensors exactly as a Hub checkpoint stores them."""
    model.save_pretrained(tmp_path)
    return load_file(tmp_path / "model.safetensors")


def _assert_close(ours: list[torch.Tensor], ref: tuple[torch.Tensor, ...]) -> None:
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        scale = b.abs().max().item()
        assert scale > 0
        err = (a - b).abs().max().item()
        assert err <= TOL * scale, f"max|Δ|={err:.3g} vs max|ref|={scale:.3g}"


def _pixels(b: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- DINOv2

DINO_SMALL = dict(
    hidden_size=32, num_hidden_layers=3, num_attention_heads=4, image_size=56, patch_size=14
)


def _dinov2_pair(tmp_path: Path, **kw) -> tuple[torch.nn.Module, Dinov2Backbone]:
    ref = transformers.Dinov2Backbone(transformers.Dinov2Config(**{**DINO_SMALL, **kw})).eval()
    _randomize(ref)
    ours = Dinov2Backbone(Dinov2Config.from_dict(ref.config.to_dict())).eval()
    ours.load_state_dict(_hub_state_dict(ref, tmp_path), strict=True)
    return ref, ours


@pytest.mark.parametrize(
    ("kw", "size"),
    [
        (dict(out_indices=[1, 2, 3]), (14 * 16, 14 * 20)),  # Depth Anything style, 4D maps
        (dict(out_indices=[1, 2, 3]), (56, 56)),  # trained grid: no interpolation
        (dict(out_features=["stem", "stage2"], reshape_hidden_states=False), (84, 84)),
        (dict(out_indices=[-1], apply_layernorm=False), (14 * 5, 14 * 3)),
        (
            dict(
                out_features=["stage1", "stage3"],
                apply_layernorm=False,
                reshape_hidden_states=False,
            ),
            (14 * 6, 14 * 4),
        ),
        (
            dict(
                use_swiglu_ffn=True,
                qkv_bias=False,
                layerscale_value=0.5,
                hidden_act="gelu",
                out_indices=[2, 3],
            ),
            (14 * 4, 14 * 7),
        ),
        (dict(use_mask_token=False, mlp_ratio=3, hidden_act="silu"), (70, 70)),
    ],
)
def test_dinov2_matches_transformers(tmp_path, kw, size):
    ref, ours = _dinov2_pair(tmp_path, **kw)
    x = _pixels(2, *size)
    with torch.no_grad():
        want = ref(x).feature_maps
        got = ours(x)
    _assert_close(got, want)
    assert ours.channels == ref.channels
    assert ours.patch_size == 14 and ours.hidden_size == 32


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_dinov2_position_interpolation_half_precision(tmp_path, dtype):
    """Interpolation runs in float32 and is cast back, as the reference: same embeddings."""
    ref, ours = _dinov2_pair(tmp_path)
    ref.to(dtype)
    ours.to(dtype)
    x = _pixels(1, 14 * 6, 14 * 9)
    with torch.no_grad():
        want = ref.embeddings(x)
        got = ours.embeddings(x)
    assert got.dtype == want.dtype == dtype
    assert torch.equal(got, want)


def test_dinov2_state_dict_keys_are_hub_keys(tmp_path):
    for kw in ({}, {"use_swiglu_ffn": True}):
        ref, ours = _dinov2_pair(tmp_path, **kw)
        assert set(ours.state_dict()) == set(_hub_state_dict(ref, tmp_path))


# ---------------------------------------------------------------- BiT

BIT_SMALL = dict(embedding_size=16, hidden_sizes=[32, 64, 128], depths=[2, 2, 2], num_groups=4)
HYBRID = dict(
    layer_type="bottleneck",
    global_padding="same",
    embedding_dynamic_padding=True,
    out_features=["stage1", "stage2", "stage3"],
)


def _bit_pair(tmp_path: Path, **kw) -> tuple[torch.nn.Module, BitBackbone]:
    ref = transformers.BitBackbone(transformers.BitConfig(**{**BIT_SMALL, **kw})).eval()
    _randomize(ref)
    ours = BitBackbone(BitConfig.from_dict(ref.config.to_dict())).eval()
    sd = _hub_state_dict(ref, tmp_path)
    assert set(sd) == set(ref.state_dict())
    ours.load_state_dict(sd, strict=True)
    return ref, ours


@pytest.mark.parametrize(
    ("kw", "size"),
    [
        (HYBRID, (384, 384)),
        (HYBRID, (203, 333)),  # odd sizes: asymmetric dynamic padding
        ({**HYBRID, "out_features": ["stem", "stage2"]}, (96, 160)),
        ({}, (97, 130)),  # preactivation, static padding
        ({"out_indices": [0, 1, 2, 3]}, (64, 64)),
        ({"global_padding": "same", "embedding_dynamic_padding": True}, (101, 77)),
        ({"layer_type": "bottleneck"}, (120, 90)),  # static padding + stem ConstantPad2d
        (  # output_stride reached: the last stages dilate instead of striding
            dict(
                layer_type="bottleneck",
                global_padding="same",
                output_stride=8,
                hidden_sizes=[32, 64, 128, 128],
                depths=[1, 2, 2, 1],
                out_features=["stage2", "stage3", "stage4"],
            ),
            (80, 96),
        ),
        ({"hidden_act": "gelu", "out_features": ["stage1", "stage3"]}, (72, 88)),
    ],
)
def test_bit_matches_transformers(tmp_path, kw, size):
    ref, ours = _bit_pair(tmp_path, **kw)
    x = _pixels(2, *size)
    with torch.no_grad():
        want = ref(x).feature_maps
        got = ours(x)
    _assert_close(got, want)
    assert ours.channels == ref.channels == [m.shape[1] for m in got]


# ---------------------------------------------------------------- configs

_COMMON = ("out_features", "out_indices", "stage_names")
_DINO_FIELDS = (
    "hidden_size num_hidden_layers num_attention_heads mlp_ratio hidden_act hidden_dropout_prob "
    "attention_probs_dropout_prob initializer_range layer_norm_eps image_size patch_size "
    "num_channels qkv_bias layerscale_value drop_path_rate use_swiglu_ffn apply_layernorm "
    "reshape_hidden_states use_mask_token"
).split() + list(_COMMON)
_BIT_FIELDS = (
    "num_channels embedding_size hidden_sizes depths layer_type hidden_act global_padding "
    "num_groups drop_path_rate embedding_dynamic_padding output_stride width_factor"
).split() + list(_COMMON)


@pytest.mark.parametrize(
    ("ours_cls", "ref_cls", "fields", "kw"),
    [
        (Dinov2Config, "Dinov2Config", _DINO_FIELDS, {}),
        (
            Dinov2Config,
            "Dinov2Config",
            _DINO_FIELDS,
            dict(
                hidden_size=384,
                num_attention_heads=6,
                out_indices=[9, 10, 11, 12],
                reshape_hidden_states=False,
                image_size=518,
            ),
        ),
        (Dinov2Config, "Dinov2Config", _DINO_FIELDS, dict(out_features=["stage3", "stage12"])),
        (BitConfig, "BitConfig", _BIT_FIELDS, {}),
        (
            BitConfig,
            "BitConfig",
            _BIT_FIELDS,
            {**HYBRID, "depths": [3, 4, 9], "hidden_sizes": [256, 512, 1024]},
        ),
        (BitConfig, "BitConfig", _BIT_FIELDS, {"out_indices": [-2, -1]}),
    ],
)
def test_config_matches_transformers_and_round_trips(ours_cls, ref_cls, fields, kw):
    hf = getattr(transformers, ref_cls)(**kw).to_dict()
    cfg = ours_cls.from_dict(hf)
    d = cfg.to_dict()
    for name in fields:
        assert d[name] == hf[name], name
    assert d["model_type"] == hf["model_type"]
    assert d["id2label"] == hf["id2label"]  # unmodelled keys survive
    assert ours_cls.from_dict(d) == cfg
    assert ours_cls.from_dict(d).to_dict() == d


def test_config_defaults_match_transformers():
    for ours, ref, fields in (
        (Dinov2Config(), transformers.Dinov2Config(), _DINO_FIELDS),
        (BitConfig(), transformers.BitConfig(), _BIT_FIELDS),
    ):
        for name in fields:
            assert getattr(ours, name) == getattr(ref, name), name


@pytest.mark.parametrize(
    ("cls", "d", "field"),
    [
        (Dinov2Config, {"hidden_size": 30, "num_attention_heads": 4}, "num_attention_heads"),
        (Dinov2Config, {"hidden_size": 0}, "hidden_size"),
        (Dinov2Config, {"num_hidden_layers": 2.5}, "num_hidden_layers"),
        (Dinov2Config, {"hidden_act": "nope"}, "hidden_act"),
        (Dinov2Config, {"layer_norm_eps": 0}, "layer_norm_eps"),
        (Dinov2Config, {"patch_size": [14, 14, 14]}, "patch_size"),
        (Dinov2Config, {"image_size": -5}, "image_size"),
        (Dinov2Config, {"apply_layernorm": "yes"}, "apply_layernorm"),
        (Dinov2Config, {"drop_path_rate": 1.5}, "drop_path_rate"),
        (Dinov2Config, {"out_indices": [13]}, "out_indices"),
        (Dinov2Config, {"out_indices": [3, 2]}, "out_indices"),
        (Dinov2Config, {"out_indices": [1, -12]}, "out_indices"),
        (Dinov2Config, {"out_features": ["stage99"]}, "out_features"),
        (Dinov2Config, {"out_features": ["stage2", "stage1"]}, "out_features"),
        (Dinov2Config, {"out_features": ["stage1"], "out_indices": [2]}, "out_indices"),
        (Dinov2Config, {"num_hidden_layers": 2, "stage_names": ["stem", "s1"]}, "stage_names"),
        (Dinov2Config, {"model_type": "bit"}, "model_type"),
        (BitConfig, {"layer_type": "resnet"}, "layer_type"),
        (BitConfig, {"global_padding": "full"}, "global_padding"),
        (BitConfig, {"depths": [3, 4], "hidden_sizes": [64, 128, 256]}, "hidden_sizes"),
        (BitConfig, {"depths": []}, "depths"),
        (BitConfig, {"depths": [3, 0, 1, 1]}, "depths"),
        (BitConfig, {"num_groups": 24}, "num_groups"),
        (BitConfig, {"embedding_dynamic_padding": 1}, "embedding_dynamic_padding"),
        (BitConfig, {"width_factor": 0}, "width_factor"),
        (BitConfig, {"hidden_act": "mish"}, "hidden_act"),
        (BitConfig, {"out_features": ["stage5"]}, "out_features"),
        (BitConfig, {"model_type": "dinov2"}, "model_type"),
    ],
)
def test_config_rejects_invalid_values(cls, d, field):
    with pytest.raises(ValueError, match=field):
        cls.from_dict(d)


def test_global_padding_is_case_insensitive():
    assert BitConfig.from_dict({"global_padding": "same"}).global_padding == "SAME"
    assert BitConfig.from_dict({"global_padding": "Valid"}).global_padding == "VALID"
