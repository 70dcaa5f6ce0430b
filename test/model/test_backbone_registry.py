"""The backbone contract in code: every registered backbone is a `Backbone` (the protocol
the necks and models read), declares its shape for the neck, and is built through the one
registry; a new backbone needs one module and one registration."""

from __future__ import annotations

import pytest
import torch
from _model_util import tiny_beit, tiny_bit, tiny_dinov2, tiny_swinv2, tiny_vit
from torch import nn

from dpt_ros.model import ConfigError, DPTConfig, DPTModel
from dpt_ros.model.backbones import (
    Backbone,
    BackboneSpec,
    backbone_spec,
    build_backbone,
    config_types,
    parse_backbone_config,
    register,
    registered,
    unregister,
)
from dpt_ros.model.backbones.vit import ViTBackbone

TINY = {"bit": tiny_bit, "dinov2": tiny_dinov2, "beit": tiny_beit, "swinv2": tiny_swinv2}


def _built(kind: str) -> nn.Module:
    if kind == "vit":
        return ViTBackbone(DPTConfig.from_dict({"model_type": "dpt", **tiny_vit()}))
    return build_backbone(parse_backbone_config(TINY[kind](), kind))


def test_registry_holds_every_backbone_with_its_shape():
    assert [s.model_type for s in registered()] == ["vit", "bit", "dinov2", "beit", "swinv2"]
    assert set(config_types()) == set(TINY)
    shapes = {s.model_type: (s.output, s.standalone) for s in registered()}
    assert shapes == {"vit": ("tokens", False), "bit": ("maps", False),
                      "dinov2": ("tokens", True), "beit": ("tokens", True),
                      "swinv2": ("maps", True)}


@pytest.mark.parametrize("kind", ["vit", "bit", "dinov2", "beit", "swinv2"])
def test_every_backbone_implements_the_protocol(kind):
    backbone = _built(kind)
    assert isinstance(backbone, Backbone)
    assert isinstance(backbone, backbone_spec(kind).backbone_class)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        maps, states, probs = backbone.features(x, hidden_states=True)
        assert [m.shape for m in backbone(x)] == [m.shape for m in maps]
    assert len(maps) == len(backbone.channels)
    assert states is not None and probs is None


def test_dpt_model_is_the_vit_backbone():
    assert isinstance(DPTModel(DPTConfig.from_dict({"model_type": "dpt", **tiny_vit()})),
                      Backbone)


def test_config_backbone_spec_follows_the_registry():
    hybrid = DPTConfig.from_dict({
        "model_type": "dpt", **tiny_vit(is_hybrid=True, backbone_config=tiny_bit(),
                                       backbone_featmap_shape=[1, 64, 4, 4],
                                       backbone_out_indices=[0, 1, 2, 3])})
    assert hybrid.backbone_type == "bit" and hybrid.backbone_spec.model_type == "vit"
    dino = DPTConfig.from_dict({"model_type": "depth_anything", "backbone_config": tiny_dinov2(),
                                "reassemble_hidden_size": 32})
    assert dino.backbone_spec is backbone_spec("dinov2")


def test_a_new_backbone_is_one_registration():
    class ToyConfig:
        def __init__(self, **d):
            self.d = d

        @classmethod
        def from_dict(cls, d):
            return cls(**d)

        def to_dict(self):
            return dict(self.d)

    class ToyBackbone(nn.Module):
        patch_size, hidden_size, channels = 4, 8, [8]

        def __init__(self, config):
            super().__init__()
            self.config = config

        def forward(self, pixel_values):
            return self.features(pixel_values)[0]

        def features(self, pixel_values, hidden_states=False, attentions=False):
            return [pixel_values.new_zeros(1, 8, 1, 1)], None, None

    spec = register(BackboneSpec("toy", ToyBackbone, ToyConfig, output="maps"))
    try:
        config = parse_backbone_config({"model_type": "toy"}, "dinov2")
        assert isinstance(build_backbone(config), Backbone)
        with pytest.raises(ValueError, match="already registered"):
            register(BackboneSpec("toy", ToyBackbone, ToyConfig, output="maps"))
    finally:
        unregister(spec.model_type)
    with pytest.raises(ConfigError, match=r"backbone_config\.model_type"):
        parse_backbone_config({"model_type": "toy"}, "dinov2")
