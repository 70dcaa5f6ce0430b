"""The backbone registry: every backbone the models can build, by the `model_type` of its
`backbone_config` ("vit" for DPT's own encoder, which has none).

Each backbone module declares a `SPEC` (`BackboneSpec`: its classes, whether its stages are
tokens or maps, whether it is a `backbone.*` of its own); `BACKBONE_MODULES` below lists the
modules. Adding a backbone is one new module implementing `Backbone` plus one entry there;
the configs (which backbone_config dicts are accepted, token / map checks), DPT's neck
(reassemble or not) and the models (what to build) all ask this registry.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from dpt_ros.model.backbones import beit, bit, dinov2, swinv2, vit
from dpt_ros.model.backbones.base import Backbone, BackboneSpec
from dpt_ros.model.errors import ConfigError
from dpt_ros.model.validation import CONFIG

__all__ = [
    "BACKBONE_MODULES",
    "Backbone",
    "BackboneSpec",
    "backbone_spec",
    "backbone_type",
    "build_backbone",
    "config_types",
    "parse_backbone_config",
    "register",
    "registered",
    "unregister",
]

_REGISTRY: dict[str, BackboneSpec] = {}


def register(spec: BackboneSpec) -> BackboneSpec:
    """Make `spec` known under its model_type (a second spec of the same type is an error)."""
    if spec.model_type in _REGISTRY and _REGISTRY[spec.model_type] is not spec:
        raise ValueError(f"backbone {spec.model_type!r} is already registered")
    _REGISTRY[spec.model_type] = spec
    return spec


def unregister(model_type: str) -> None:
    """Forget a registered backbone (for a test or a plugin that registered one)."""
    del _REGISTRY[model_type]


BACKBONE_MODULES = (vit, bit, dinov2, beit, swinv2)
for _module in BACKBONE_MODULES:
    register(_module.SPEC)


def registered() -> tuple[BackboneSpec, ...]:
    """Every registered backbone, in registration order."""
    return tuple(_REGISTRY.values())


def config_types() -> tuple[str, ...]:
    """The backbone_config model_types a config may name (backbones with a config)."""
    return tuple(k for k, s in _REGISTRY.items() if s.config_class is not None)


def backbone_spec(model_type: str) -> BackboneSpec:
    """The registered backbone of `model_type` (KeyError when there is none)."""
    return _REGISTRY[model_type]


def parse_backbone_config(value: Any, default_type: str) -> Any:
    """A backbone_config dict (or config object, or None, returned as is) as the registered
    backbone's config class; a dict without model_type is a `default_type` one. Every
    failure is a ConfigError naming backbone_config."""
    if value is None or hasattr(value, "to_dict"):
        return value
    if not isinstance(value, dict):
        CONFIG.fail("backbone_config", value, "a JSON object or null")
    kind = value.get("model_type", default_type)
    if kind not in config_types():
        CONFIG.fail("backbone_config.model_type", kind,
                    ", ".join(repr(k) for k in config_types()))
    try:
        return _REGISTRY[kind].config_from_dict({**value, "model_type": kind})
    except (ValueError, TypeError) as e:
        raise ConfigError(f"config field backbone_config ({kind}): {e}") from e


def backbone_type(backbone_config: Any) -> str | None:
    """The model_type of a backbone config object ('bit', 'dinov2', ...), None for None."""
    if backbone_config is None:
        return None
    for spec in _REGISTRY.values():
        if spec.config_class is not None and isinstance(backbone_config, spec.config_class):
            return spec.model_type
    CONFIG.fail("backbone_config", backbone_config,
                "a JSON object, null, or one of " + ", ".join(
                s.config_class.__name__ for s in _REGISTRY.values()
                if s.config_class is not None))


def build_backbone(backbone_config: Any) -> nn.Module:
    """The backbone module of a backbone config object."""
    return _REGISTRY[backbone_type(backbone_config)].backbone_class(backbone_config)
