"""Every model config answers the questions the pipeline, the node and `dpt-ros info` ask
(`configuration_utils.ModelTraits`), each family saying yes only to what it has."""

from __future__ import annotations

import pytest

from dpt_ros.model import DepthAnything3Config, DepthProConfig, DPTConfig, ZoeDepthConfig
from dpt_ros.model.auto import CONFIG_CLASSES
from dpt_ros.model.configuration_utils import ModelTraits

TRAITS = ("task", "metric_focal", "has_fov", "has_sky", "predicts_depth", "takes_prompt")


@pytest.mark.parametrize("cls", sorted({*CONFIG_CLASSES.values(), DepthAnything3Config},
                                       key=lambda c: c.__name__))
def test_every_config_class_has_the_traits(cls):
    assert issubclass(cls, ModelTraits)


def test_each_family_answers_for_itself():
    def traits(config):
        return {name: getattr(config, name) for name in TRAITS}

    assert traits(DPTConfig()) == dict.fromkeys(TRAITS, False) | {
        "task": "depth", "metric_focal": None}
    assert DPTConfig().focal_scale is None
    da3 = DepthAnything3Config()  # da3metric-large
    assert da3.has_sky and da3.predicts_depth and da3.metric_focal == 300
    assert da3.focal_scale(600.0, 600.0, 504) == pytest.approx(2.0)
    pro = DepthProConfig(use_fov_model=True)
    assert pro.has_fov and not pro.has_sky and pro.focal_scale(500.0, 500.0, 1536) == 1536 / 500
    zoe = ZoeDepthConfig()
    assert traits(zoe) == traits(DPTConfig()) and zoe.focal_scale is None
