"""DepthProConfig: transformers' `depth_pro` config.json (apple/DepthPro-hf) read unchanged.

Field names and defaults follow transformers' DepthProConfig; the three DINOv2 encoders
(image, patch, FOV) are our own Dinov2Config, each forced to `image_size = patch_size` as
transformers does (every encoder sees 384 x 384 tiles). Invalid combinations are rejected
up front with the field named, as transformers' `validate_architecture`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dpt_ros.model.backbones.dinov2 import Dinov2Config
from dpt_ros.model.configuration_utils import ModelTraits
from dpt_ros.model.errors import ConfigError

MODEL_TYPE = "depth_pro"
ARCHITECTURE = "DepthProForDepthEstimation"
SUB_CONFIGS = ("image_model_config", "patch_model_config", "fov_model_config")


def _dinov2(value: Any, patch_size: int, name: str) -> Dinov2Config:
    """A sub-config as the encoder DepthPro builds (AutoModel -> Dinov2Model): image_size
    forced to the tile size; the last block's layer-normed tokens are its output."""
    if isinstance(value, Dinov2Config):
        value = value.to_dict()
    d = {"model_type": "dinov2", "image_size": 384} if value is None else dict(value)
    if d.get("model_type", "dinov2") != "dinov2":
        raise ConfigError(f"config field {name}.model_type={d['model_type']!r} is invalid; "
                          "accepted: 'dinov2'")
    d["image_size"] = patch_size
    for key in ("out_features", "out_indices", "stage_names"):
        d.pop(key, None)
    n = int(d.get("num_hidden_layers", 12))
    d.update(out_indices=[n], apply_layernorm=True, reshape_hidden_states=False)
    try:
        return Dinov2Config.from_dict(d)
    except (ConfigError, ValueError, TypeError) as e:
        raise ConfigError(f"config field {name}: {e}") from e


@dataclass
class DepthProConfig(ModelTraits):
    model_types: ClassVar[tuple[str, ...]] = (MODEL_TYPE,)
    fusion_hidden_size: int = 256
    patch_size: int = 384
    initializer_range: float = 0.02
    intermediate_hook_ids: list[int] = field(default_factory=lambda: [11, 5])
    intermediate_feature_dims: list[int] = field(default_factory=lambda: [256, 256])
    scaled_images_ratios: list[float] = field(default_factory=lambda: [0.25, 0.5, 1])
    scaled_images_overlap_ratios: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.25])
    scaled_images_feature_dims: list[int] = field(default_factory=lambda: [1024, 1024, 512])
    merge_padding_value: int = 3
    use_batch_norm_in_fusion_residual: bool = False
    use_bias_in_fusion_residual: bool | None = True
    use_fov_model: bool = False
    num_fov_head_layers: int = 2
    image_model_config: Any = None
    patch_model_config: Any = None
    fov_model_config: Any = None
    architectures: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in SUB_CONFIGS:
            setattr(self, name, _dinov2(getattr(self, name), self.patch_size, name))
        if list(self.scaled_images_ratios) != sorted(self.scaled_images_ratios):
            raise ConfigError(f"config field scaled_images_ratios={self.scaled_images_ratios} "
                              "is invalid; accepted: sorted from low to high")
        if not (len(self.scaled_images_ratios) == len(self.scaled_images_overlap_ratios)
                == len(self.scaled_images_feature_dims)):
            raise ConfigError("config fields scaled_images_ratios / _overlap_ratios / "
                              "_feature_dims must have one entry per scaled image")
        if len(self.intermediate_hook_ids) != len(self.intermediate_feature_dims):
            raise ConfigError("config fields intermediate_hook_ids / intermediate_feature_dims "
                              "must have the same length")
        if self.fusion_hidden_size // 2**self.num_fov_head_layers == 0:
            raise ConfigError(f"config field num_fov_head_layers={self.num_fov_head_layers} "
                              "is invalid; accepted: fusion_hidden_size // 2**n > 0")
        if self.architectures is None:
            self.architectures = [ARCHITECTURE]
        elif self.architectures[0] != ARCHITECTURE:
            raise ConfigError(f"config field architectures[0]={self.architectures[0]!r} is "
                              f"invalid; accepted: {ARCHITECTURE!r}")

    # --- what the rest of the package asks every config --------------------------------

    @property
    def architecture(self) -> str:
        return ARCHITECTURE

    @property
    def model_type(self) -> str:
        return MODEL_TYPE

    @property
    def is_metric(self) -> bool:
        """Metres once the focal length is known (the camera's, or the FOV head's)."""
        return True

    @property
    def has_fov(self) -> bool:
        return bool(self.use_fov_model)

    @property
    def backbone_type(self) -> str:
        return "dinov2"

    @property
    def backbone_config(self) -> Dinov2Config:
        return self.image_model_config

    @property
    def encoder_grid(self) -> int:
        """Tokens per side of one 384 x 384 tile (24 for patch 16)."""
        patch = self.image_model_config.patch_size
        patch = patch if isinstance(patch, int) else patch[0]
        return self.image_model_config.image_size // patch

    def focal_scale(self, fx: float, fy: float, width: int) -> float:
        """The factor on the network's canonical inverse depth before it is inverted
        (transformers' post-processing: depth * width / focal_length), from the focal
        length in pixels at the network input and its width."""
        return width / fx

    @staticmethod
    def focal_from_fov(fov_deg: float, width: int) -> float:
        """transformers' focal length from the FOV head: 0.5 W / tan(FOV / 2)."""
        return 0.5 * width / math.tan(0.5 * math.radians(fov_deg))

    # --- files -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DepthProConfig:
        if d.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ConfigError(f"config field model_type={d['model_type']!r}; expected "
                              f"{MODEL_TYPE!r}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: copy.deepcopy(v) for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names and k != "model_type"}
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out = copy.deepcopy(self.extra)
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Dinov2Config):
                value = value.to_dict()
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["model_type"] = MODEL_TYPE
        return out
