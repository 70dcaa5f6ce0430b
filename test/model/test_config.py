"""DPTConfig against transformers' DPTConfig / DepthAnythingConfig (the oracle): defaults,
post-init consequences, round trips both ways, and the errors for bad values."""

from __future__ import annotations

import dataclasses

import pytest

T = pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")

from _model_util import tiny_bit, tiny_dinov2, tiny_vit  # noqa: E402

from dpt_ros.model import ConfigError, DPTConfig, ZoeDepthConfig  # noqa: E402
from dpt_ros.model.dpt.configuration import _DEPTH_ANYTHING_KEYS, _DPT_KEYS  # noqa: E402
from dpt_ros.model.layers.activations import ACTIVATION_NAMES, ACTIVATIONS  # noqa: E402


def _json_like(v):
    return list(v) if isinstance(v, tuple) else v


def _modelled(cfg: DPTConfig) -> DPTConfig:
    """The config without the backbone's bookkeeping extras (transformers adds some)."""
    bb = cfg.backbone_config
    return cfg if bb is None else dataclasses.replace(
        cfg, backbone_config=dataclasses.replace(bb, extra={}))


def _assert_fields_match(ours: DPTConfig, ref, keys) -> None:
    for key in keys:
        assert _json_like(getattr(ours, key)) == _json_like(getattr(ref, key)), key


def test_dpt_defaults_and_post_init_match_transformers():
    _assert_fields_match(DPTConfig.from_dict({"model_type": "dpt"}), T.DPTConfig(), _DPT_KEYS)
    ours = DPTConfig.from_dict({"model_type": "dpt", "is_hybrid": True})
    ref = T.DPTConfig(is_hybrid=True)
    _assert_fields_match(ours, ref, _DPT_KEYS)
    bb, ref_bb = ours.backbone_config, ref.backbone_config
    for key in ("depths", "layer_type", "global_padding", "out_features",
                "embedding_dynamic_padding", "embedding_size", "num_groups"):
        assert _json_like(getattr(bb, key)) == _json_like(getattr(ref_bb, key)), key
    # transformers keeps a 4th, unused width for the 3 stages; we keep one per stage
    assert bb.hidden_sizes == ref_bb.hidden_sizes[: len(ref_bb.depths)]


def test_depth_anything_defaults_match_transformers():
    ours = DPTConfig.from_dict({"model_type": "depth_anything"})
    ref = T.DepthAnythingConfig()
    _assert_fields_match(ours, ref, _DEPTH_ANYTHING_KEYS)
    for key in ("hidden_size", "num_attention_heads", "out_indices", "out_features",
                "reshape_hidden_states", "image_size", "patch_size", "num_hidden_layers"):
        assert _json_like(getattr(ours.backbone_config, key)) == _json_like(
            getattr(ref.backbone_config, key)), key
    assert not ours.is_metric and ours.task == "depth"


def test_non_hybrid_drops_hybrid_only_fields_like_reference():
    ours = DPTConfig.from_dict({"model_type": "dpt", "backbone_featmap_shape": [1, 2, 3, 4],
                                "neck_ignore_stages": [0], "pooler_output_size": 0})
    ref = T.DPTConfig(backbone_featmap_shape=[1, 2, 3, 4], neck_ignore_stages=[0],
                      pooler_output_size=0)
    _assert_fields_match(ours, ref, ("backbone_featmap_shape", "neck_ignore_stages",
                                     "pooler_output_size"))
    assert ours.backbone_featmap_shape is None and ours.neck_ignore_stages == []


@pytest.mark.parametrize(
    ("d", "task", "metric"),
    [
        ({"model_type": "dpt"}, "depth", False),
        ({"model_type": "dpt", "architectures": ["DPTForSemanticSegmentation"]},
         "segmentation", False),
        ({"model_type": "dpt", "architectures": ["DPTModel"]}, "features", False),
        ({"model_type": "dpt", "backbone_config": tiny_dinov2(), "backbone_out_indices": None,
          "neck_hidden_sizes": [8, 8, 8, 8]}, "depth", True),
        ({"model_type": "dpt", "depth_estimation_type": "metric"}, "depth", True),
        ({"model_type": "dpt", "backbone_config": tiny_dinov2(), "neck_hidden_sizes": [8] * 4,
          "depth_estimation_type": "relative"}, "depth", False),
        ({"model_type": "depth_anything", "depth_estimation_type": "metric", "max_depth": 20},
         "depth", True),
    ],
)
def test_task_and_metric(d, task, metric):
    cfg = DPTConfig.from_dict(d)
    assert cfg.task == task
    assert cfg.is_metric is metric


def test_labels_from_id2label_or_num_labels():
    cfg = DPTConfig.from_dict({"model_type": "dpt", "id2label": {"0": "wall", "1": "floor"}})
    assert cfg.labels == {0: "wall", 1: "floor"} and cfg.label2id == {"wall": 0, "floor": 1}
    cfg = DPTConfig.from_dict({"model_type": "dpt", "num_labels": 3})
    assert cfg.labels == T.DPTConfig(num_labels=3).id2label


@pytest.mark.parametrize(
    "d",
    [
        {"model_type": "dpt", **tiny_vit(readout_type="add"), "architectures": ["DPTModel"],
         "depth_estimation_type": "metric"},
        {"model_type": "dpt", **tiny_vit(is_hybrid=True, backbone_config=tiny_bit()),
         "id2label": {"0": "a", "1": "b", "2": "c"}},
        {"model_type": "dpt", "backbone_config": tiny_dinov2(), "backbone_out_indices": None,
         "add_projection": True, "use_bias_in_fusion_residual": False},
        {"model_type": "depth_anything", "backbone_config": tiny_dinov2(),
         "reassemble_hidden_size": 32, "depth_estimation_type": "metric", "max_depth": 80},
    ],
)
def test_to_dict_round_trips_through_ours_and_transformers(d):
    ours = DPTConfig.from_dict(d)
    written = ours.to_dict()
    assert _modelled(DPTConfig.from_dict(written)) == _modelled(ours)
    ref_cls = T.DPTConfig if ours.model_type == "dpt" else T.DepthAnythingConfig
    ref = ref_cls.from_dict(written)
    keys = _DPT_KEYS if ours.model_type == "dpt" else _DEPTH_ANYTHING_KEYS
    _assert_fields_match(ours, ref, keys)
    assert ref.id2label == ours.id2label
    if ours.backbone_config is not None:
        assert ref.backbone_config.model_type == ours.backbone_type
        assert ref.backbone_config.out_features == ours.backbone_config.out_features
    # and what transformers writes back, we read back to the same config
    assert _modelled(DPTConfig.from_dict(ref.to_dict())) == _modelled(ours)


def test_activation_names_are_all_buildable():
    assert set(ACTIVATION_NAMES) == set(ACTIVATIONS)


@pytest.mark.parametrize(
    ("d", "field"),
    [
        ({"model_type": "vit"}, "model_type"),
        ({}, "model_type"),
        ({"model_type": "dpt", "readout_type": "mean"}, "readout_type"),
        ({"model_type": "dpt", "is_hybrid": True, "readout_type": "add"}, "readout_type"),
        ({"model_type": "dpt", "depth_estimation_type": "absolute"}, "depth_estimation_type"),
        ({"model_type": "depth_anything", "depth_estimation_type": "ordinal"},
         "depth_estimation_type"),
        ({"model_type": "dpt", "hidden_act": "mish"}, "hidden_act"),
        ({"model_type": "dpt", "hidden_size": 100, "num_attention_heads": 12},
         "num_attention_heads"),
        ({"model_type": "dpt", "reassemble_factors": [4, 2, 1]}, "reassemble_factors"),
        ({"model_type": "dpt", "reassemble_factors": [3, 2, 1, 0.4]}, "reassemble_factors"),
        ({"model_type": "dpt", "backbone_out_indices": [2, 5, 8, 12]}, "backbone_out_indices"),
        ({"model_type": "dpt", "backbone_out_indices": [2, 5, 5, 8]}, "backbone_out_indices"),
        ({"model_type": "dpt", "backbone": "resnet50"}, "backbone"),
        ({"model_type": "dpt", "backbone_config": {"model_type": "convnext"}},
         "backbone_config.model_type"),
        ({"model_type": "dpt", "backbone_config": tiny_bit()}, "backbone_config.model_type"),
        ({"model_type": "dpt", "is_hybrid": True, "backbone_config": tiny_bit(depths="x")},
         "backbone_config"),
        ({"model_type": "dpt", "is_hybrid": True,
          "backbone_config": tiny_bit(out_features=["stage3"])}, "backbone_config.out_features"),
        ({"model_type": "dpt", "is_hybrid": True, "backbone_config": tiny_bit(),
          "neck_ignore_stages": [0]}, "neck_ignore_stages"),
        ({"model_type": "dpt", "architectures": ["DPTForImageClassification"]},
         "architectures[0]"),
        ({"model_type": "depth_anything", "architectures": ["DPTForDepthEstimation"]},
         "architectures[0]"),
        ({"model_type": "dpt", "architectures": ["DPTForSemanticSegmentation"],
          "backbone_config": tiny_dinov2(), "neck_hidden_sizes": [8] * 4}, "architectures"),
        ({"model_type": "dpt", "backbone_config": tiny_dinov2(reshape_hidden_states=True),
          "neck_hidden_sizes": [8] * 4}, "backbone_config.reshape_hidden_states"),
        ({"model_type": "dpt", "add_projection": True, "fusion_hidden_size": 64},
         "fusion_hidden_size"),
        ({"model_type": "dpt", "id2label": {"a": "wall"}}, "id2label"),
        ({"model_type": "dpt", "head_in_index": 4}, "head_in_index"),
        ({"model_type": "dpt", "image_size": [384, 512]}, "image_size"),
        ({"model_type": "depth_anything", "reassemble_hidden_size": 256},
         "reassemble_hidden_size"),
        ({"model_type": "depth_anything", "max_depth": -1}, "max_depth"),
        ({"model_type": "dpt", "use_auxiliary_head": "yes"}, "use_auxiliary_head"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(d, field):
    with pytest.raises(ConfigError) as info:
        DPTConfig.from_dict(d)
    assert f"field {field}" in str(info.value)


def test_an_unknown_backbone_config_object_is_a_config_error():
    """An object that is none of our backbone configs: a ConfigError naming the field and
    the accepted classes, not a bare StopIteration."""

    class ForeignConfig:
        reshape_hidden_states = False

        def to_dict(self):
            return {}

    for d in ({"model_type": "dpt"}, {"model_type": "depth_anything"}):
        with pytest.raises(ConfigError) as info:
            DPTConfig(**d, backbone_config=ForeignConfig())
        message = str(info.value)
        assert "field backbone_config=" in message and "ForeignConfig" in message
        assert "Dinov2Config" in message
    with pytest.raises(ConfigError, match="field backbone_config="):
        ZoeDepthConfig(backbone_config=ForeignConfig())


def test_config_error_lists_accepted_values():
    with pytest.raises(ConfigError) as info:
        DPTConfig.from_dict({"model_type": "dpt", "readout_type": "mean"})
    assert "'ignore', 'add', 'project'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_reference_rejects_what_we_reject_where_it_checks():
    """Where transformers validates up front, it agrees with us."""
    with pytest.raises(ValueError):
        T.DPTConfig(is_hybrid=True, readout_type="add")
    with pytest.raises(Exception, match="depth_estimation_type"):
        T.DepthAnythingConfig(depth_estimation_type="ordinal")
