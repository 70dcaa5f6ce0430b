"""Depth Anything 3 configuration, read from the Hub repo's own config.json.

The official checkpoints (`depth-anything/DA3METRIC-LARGE`, `depth-anything/DA3MONO-LARGE`)
are saved by huggingface_hub's PyTorchModelHubMixin: config.json holds only the init
arguments of the official `DepthAnything3` class, i.e. `{"model_name": "da3metric-large"}`;
the architecture lives in the package's preset YAML of that name. So the presets are
written out here (values from `depth_anything_3/configs/*.yaml`, package 0.1.1), and a
config.json may add the same `net` / `head` keys the YAML has (our tests use that for small
random-weight models the official code builds from the same keys).

Supported: the monocular presets whose network is DINOv2 + DPT head + sky head
(da3metric-large, da3mono-large). DA3-Small/Base/Large/Giant are not: their backbone adds
RoPE and QK-norm from block `alt_start`, a camera token, cross-view attention and
local/global token concatenation (`cat_token`), and their DualDPT head predicts rays and
confidence instead of a sky mask; that is another network, not a different size of this one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dpt_ros.model.backbones.dinov2 import Dinov2Config
from dpt_ros.model.configuration_utils import ModelTraits
from dpt_ros.model.dpt.configuration import DPTConfig
from dpt_ros.model.errors import ConfigError

ARCHITECTURE = "DepthAnything3ForDepthEstimation"
MODEL_TYPE = "depth_anything_3"
# vit name -> (hidden size, blocks, heads), as depth_anything_3.model.dinov2.vision_transformer
VITS = {"vits": (384, 12, 6), "vitb": (768, 12, 12), "vitl": (1024, 24, 16)}
# The presets whose network this package implements (official configs/*.yaml).
_LARGE = {
    "net": {"name": "vitl", "out_layers": [4, 11, 17, 23], "alt_start": -1,
            "qknorm_start": -1, "rope_start": -1, "cat_token": False},
    "head": {"dim_in": 1024, "output_dim": 1, "features": 256,
             "out_channels": [256, 512, 1024, 1024]},
}
PRESETS: dict[str, dict[str, Any]] = {"da3metric-large": _LARGE, "da3mono-large": _LARGE}
# Official presets of another network (see the module docstring), named in the error.
UNSUPPORTED = ("da3-small", "da3-base", "da3-large", "da3-giant", "da3nested-giant-large")
# DA3METRIC's output is depth at a canonical focal length of 300 px (official
# utils/alignment.apply_metric_scaling): metres = focal_px * output / 300.
CANONICAL_FOCAL = 300.0
PATCH_SIZE = 14  # DepthAnything3Net.PATCH_SIZE
PROCESS_RES = 504  # DepthAnything3.inference(process_res=504, "upper_bound_resize")
SKY_THRESHOLD = 0.3  # official utils/alignment.compute_sky_mask: sky where sky >= 0.3


def is_da3_config(d: dict[str, Any]) -> bool:
    """A config.json written by the official package (no model_type, a DA3 model_name)."""
    return "model_type" not in d and str(d.get("model_name", "")).lower().startswith("da3")


@dataclass
class DepthAnything3Config(ModelTraits):
    """The DA3 monocular network: DINOv2 ViT (`net`), DPT head with sky head (`head`)."""

    model_types: ClassVar[tuple[str, ...]] = ()  # the official config.json has none

    @staticmethod
    def accepts(d: dict[str, Any]) -> bool:
        """Whether a config.json dict is this family's (see `is_da3_config`)."""
        return is_da3_config(d)


    model_name: str = "da3metric-large"
    net: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(_LARGE["net"]))
    head: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(_LARGE["head"]))
    architectures: list[str] | None = None
    # what config.json held beyond the fields above, written back unchanged
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = self.model_name
        if name in UNSUPPORTED:
            raise ConfigError(
                f"config field model_name={name!r}: that Depth Anything 3 preset (RoPE / "
                "QK-norm / camera-token backbone with the ray DualDPT head) is not "
                f"supported; accepted: {', '.join(PRESETS)}")
        if name not in PRESETS:
            raise ConfigError(f"config field model_name={name!r} is invalid; accepted: "
                              f"{', '.join(PRESETS)}")
        net, head = self.net, self.head
        if net.get("name") not in VITS:
            raise ConfigError(f"config field net.name={net.get('name')!r} is invalid; "
                              f"accepted: {', '.join(VITS)}")
        for key in ("alt_start", "qknorm_start", "rope_start"):
            if net.get(key, -1) != -1:
                raise ConfigError(f"config field net.{key}={net[key]!r}: only -1 (the "
                                  "monocular DINOv2 backbone) is supported")
        if net.get("cat_token", False):
            raise ConfigError("config field net.cat_token=True is not supported (false)")
        layers = net.get("out_layers")
        depth = VITS[net["name"]][1]
        if (not isinstance(layers, list) or len(layers) != 4
                or not all(isinstance(i, int) and 0 <= i < depth for i in layers)):
            raise ConfigError(f"config field net.out_layers={layers!r} is invalid; accepted: "
                              f"four block indices in [0, {depth})")
        if head.get("output_dim", 1) != 1:
            raise ConfigError("config field head.output_dim must be 1 (depth; the sky head "
                              "is separate)")
        if head.get("dim_in") != self.hidden_size:
            raise ConfigError(f"config field head.dim_in={head.get('dim_in')!r} must equal "
                              f"the {net['name']} width {self.hidden_size}")
        chans = head.get("out_channels")
        if not isinstance(chans, list) or len(chans) != 4:
            raise ConfigError(f"config field head.out_channels={chans!r}: four integers")
        if self.architectures is None:
            self.architectures = [ARCHITECTURE]

    # --- what the rest of the package asks every config --------------------------------

    @property
    def architecture(self) -> str:
        return ARCHITECTURE

    @property
    def model_type(self) -> str:
        return MODEL_TYPE

    @property
    def is_metric(self) -> bool:
        """DA3METRIC: metres once scaled by the camera's focal length (`metric_focal`)."""
        return self.model_name.startswith("da3metric")

    @property
    def metric_focal(self) -> float | None:
        """The canonical focal length (px) the output is expressed at: metres =
        output * focal_px_at_network_input / metric_focal. None: no focal rule."""
        return CANONICAL_FOCAL if self.is_metric else None

    def focal_scale(self, fx: float, fy: float, width: int) -> float:
        """The factor that turns the output into metres, from the focal lengths (px) at
        the network input: (fx + fy) / 2 / 300 (official `apply_metric_scaling`)."""
        return (fx + fy) / 2.0 / CANONICAL_FOCAL

    @property
    def predicts_depth(self) -> bool:
        """The output grows with distance (depth up to scale), unlike the inverse-depth
        output of Depth Anything V1/V2's relative models."""
        return True

    @property
    def has_sky(self) -> bool:
        return True

    @property
    def sky_threshold(self) -> float:
        return SKY_THRESHOLD

    @property
    def backbone_type(self) -> str:
        return "dinov2"

    @property
    def patch_size(self) -> int:
        return PATCH_SIZE

    @property
    def hidden_size(self) -> int:
        return VITS[self.net["name"]][0]

    @property
    def num_hidden_layers(self) -> int:
        return VITS[self.net["name"]][1]

    @property
    def num_attention_heads(self) -> int:
        return VITS[self.net["name"]][2]

    @property
    def backbone_config(self) -> Any:
        """Our Dinov2Config of the `net` (the shared DINOv2 backbone's own config)."""
        n = self.num_hidden_layers
        return Dinov2Config(
            hidden_size=self.hidden_size, num_hidden_layers=n,
            num_attention_heads=self.num_attention_heads, mlp_ratio=4, hidden_act="gelu",
            layer_norm_eps=1e-6, image_size=518, patch_size=PATCH_SIZE,
            use_mask_token=False, apply_layernorm=True, reshape_hidden_states=False,
            out_indices=[i + 1 for i in self.net["out_layers"]],  # stage k = after block k-1
        )

    @property
    def neck_config(self) -> Any:
        """The DPTConfig the shared Depth Anything neck is built from: DA3's reassemble
        (x4, x2, x1, /2 of the patch grid), 3x3 convs to `features`, sized fusion."""
        return DPTConfig(
            model_type="depth_anything", reassemble_hidden_size=self.hidden_size,
            neck_hidden_sizes=list(self.head["out_channels"]),
            reassemble_factors=[4, 2, 1, 0.5], fusion_hidden_size=self.head["features"],
            head_hidden_size=32, patch_size=PATCH_SIZE,
            backbone_config=self.backbone_config, architectures=[
                "DepthAnythingForDepthEstimation"],
        )

    # --- files -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DepthAnything3Config:
        if not isinstance(d, dict):
            raise ConfigError("config.json must be a JSON object")
        name = str(d.get("model_name", "")).lower()
        if name in UNSUPPORTED or name not in PRESETS:
            cls(model_name=name)  # raises the message naming what is accepted
        preset = PRESETS[name]
        net = {**copy.deepcopy(preset["net"]), **dict(d.get("net") or {})}
        head = {**copy.deepcopy(preset["head"]), **dict(d.get("head") or {})}
        for part in (net, head):
            part.pop("__object__", None)
        known = {"model_name", "net", "head", "architectures"}
        return cls(model_name=name, net=net, head=head,
                   architectures=d.get("architectures"),
                   extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """config.json as the official package reads it (model_name), plus the network
        keys when they differ from the preset (small test models)."""
        out: dict[str, Any] = {**self.extra, "model_name": self.model_name}
        preset = PRESETS[self.model_name]
        if self.net != preset["net"]:
            out["net"] = copy.deepcopy(self.net)
        if self.head != preset["head"]:
            out["head"] = copy.deepcopy(self.head)
        return out
