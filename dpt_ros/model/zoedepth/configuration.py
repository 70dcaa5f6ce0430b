"""ZoeDepthConfig: transformers' `zoedepth` config.json, validated up front.

Field names and defaults follow transformers' ZoeDepthConfig. Values the reference would
only trip over at forward time (a readout other than "project", attractor lists that do not
match the four fused maps, a router without exactly two domains) raise a ConfigError that
names the field. Keys we do not model are kept in `extra` and written back by `to_dict`.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dpt_ros.model.backbones import backbone_type, parse_backbone_config
from dpt_ros.model.configuration_utils import (
    ModelTraits,
    check_architectures,
    check_reassemble_factors,
    check_token_states,
    reject_named_backbone,
)
from dpt_ros.model.errors import ConfigError
from dpt_ros.model.layers.activations import ACTIVATION_NAMES
from dpt_ros.model.validation import CONFIG

MODEL_TYPE = "zoedepth"
ARCHITECTURE = "ZoeDepthForDepthEstimation"
# transformers' default backbone when backbone_config is absent: BEiT-L/16 at 384.
_DEFAULT_BEIT = {
    "model_type": "beit",
    "image_size": 384,
    "num_hidden_layers": 24,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_attention_heads": 16,
    "use_relative_position_bias": True,
    "reshape_hidden_states": False,
    "out_features": ["stage6", "stage12", "stage18", "stage24"],
}
_DEFAULT_BINS = [{"n_bins": 64, "min_depth": 0.001, "max_depth": 10.0}]
# The router's MLP classifier is built for 128 features and two domains in the reference.
ROUTER_WIDTH, ROUTER_DOMAINS, ROUTER_LAYERS = 128, 2, 4


@dataclass
class ZoeDepthConfig(ModelTraits):
    """transformers' ZoeDepthConfig fields and defaults (model_type 'zoedepth')."""

    model_type: str = MODEL_TYPE
    backbone_config: Any = None
    hidden_act: str = "gelu"
    initializer_range: float = 0.02
    batch_norm_eps: float = 1e-5
    readout_type: str = "project"
    reassemble_factors: list[float] = field(default_factory=lambda: [4, 2, 1, 0.5])
    neck_hidden_sizes: list[int] = field(default_factory=lambda: [96, 192, 384, 768])
    fusion_hidden_size: int = 256
    head_in_index: int = -1
    use_batch_norm_in_fusion_residual: bool = False
    use_bias_in_fusion_residual: bool | None = None
    num_relative_features: int = 32
    add_projection: bool = False
    bottleneck_features: int = 256
    num_attractors: list[int] = field(default_factory=lambda: [16, 8, 4, 1])
    bin_embedding_dim: int = 128
    attractor_alpha: float = 1000
    attractor_gamma: float = 2
    attractor_kind: str = "mean"
    min_temp: float = 0.0212
    max_temp: float = 50.0
    bin_centers_type: str = "softplus"
    bin_configurations: list[dict[str, Any]] | None = None
    num_patch_transformer_layers: int | None = None
    patch_transformer_hidden_size: int | None = None
    patch_transformer_intermediate_size: int | None = None
    patch_transformer_num_attention_heads: int | None = None
    architectures: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # the config.json model_types this class reads
    model_types: ClassVar[tuple[str, ...]] = (MODEL_TYPE,)

    def __post_init__(self) -> None:
        if self.model_type != MODEL_TYPE:
            CONFIG.fail("model_type", self.model_type, repr(MODEL_TYPE))
        self.backbone_config = parse_backbone_config(
            copy.deepcopy(_DEFAULT_BEIT) if self.backbone_config is None
            else self.backbone_config, "beit")
        bb = self.backbone_config
        if backbone_type(bb) != "beit":
            CONFIG.fail("backbone_config.model_type", backbone_type(bb), "'beit'")
        check_token_states(bb)
        if self.hidden_act not in ACTIVATION_NAMES:
            CONFIG.fail("hidden_act", self.hidden_act, ", ".join(ACTIVATION_NAMES))
        if self.readout_type != "project":
            # the reference's 'ignore' / 'add' paths cannot run (shape errors)
            CONFIG.fail("readout_type", self.readout_type, "'project'")
        self._check_neck()
        self._check_bins()
        self.architectures = check_architectures(self.architectures, (ARCHITECTURE,))

    def _check_neck(self) -> None:
        sizes = self.neck_hidden_sizes
        if not isinstance(sizes, (list, tuple)) or len(sizes) != 4:
            CONFIG.fail("neck_hidden_sizes", sizes, "4 widths (the metric head reads 4 fused maps)")
        for s in sizes:
            CONFIG.integer("neck_hidden_sizes", s)
        self.neck_hidden_sizes = list(sizes)
        if len(self.backbone_config.out_features) != 4:
            CONFIG.fail("backbone_config.out_features", self.backbone_config.out_features,
                        "4 stages, one per neck_hidden_sizes entry")
        self.reassemble_factors = check_reassemble_factors(self.reassemble_factors, 4)
        for name in ("fusion_hidden_size", "num_relative_features", "bottleneck_features",
                     "bin_embedding_dim"):
            CONFIG.integer(name, getattr(self, name))
        if self.bottleneck_features != self.fusion_hidden_size:
            CONFIG.fail("bottleneck_features", self.bottleneck_features,
                        f"fusion_hidden_size={self.fusion_hidden_size} (it reads the deepest map)")
        if self.add_projection and self.fusion_hidden_size != 256:
            CONFIG.fail("fusion_hidden_size", self.fusion_hidden_size,
                        "256 when add_projection is true")
        if isinstance(self.head_in_index, bool) or not isinstance(self.head_in_index, int) \
                or not -4 <= self.head_in_index < 4:
            CONFIG.fail("head_in_index", self.head_in_index, "an index into 4 fused maps")
        for name in ("use_batch_norm_in_fusion_residual", "add_projection"):
            if not isinstance(getattr(self, name), bool):
                CONFIG.fail(name, getattr(self, name), "true or false")
        if self.use_bias_in_fusion_residual not in (None, True, False):
            CONFIG.fail("use_bias_in_fusion_residual", self.use_bias_in_fusion_residual,
                        "true, false or null")
        CONFIG.number("batch_norm_eps", self.batch_norm_eps, exclusive=True)

    def _check_bins(self) -> None:
        if self.bin_centers_type not in ("normed", "softplus"):
            CONFIG.fail("bin_centers_type", self.bin_centers_type, "'normed' or 'softplus'")
        if self.attractor_kind not in ("mean", "sum"):
            CONFIG.fail("attractor_kind", self.attractor_kind, "'mean' or 'sum'")
        n_att = self.num_attractors
        if not isinstance(n_att, (list, tuple)) or len(n_att) != 4:
            CONFIG.fail("num_attractors", n_att, "4 counts, one per fused map")
        for n in n_att:
            CONFIG.integer("num_attractors", n)
        self.num_attractors = list(n_att)
        for name in ("min_temp", "max_temp", "attractor_alpha", "attractor_gamma"):
            CONFIG.number(name, getattr(self, name))
        bins = copy.deepcopy(_DEFAULT_BINS) if not self.bin_configurations \
            else self.bin_configurations
        if not isinstance(bins, (list, tuple)):
            CONFIG.fail("bin_configurations", bins,
                        "a list of {n_bins, min_depth, max_depth, name}")
        for b in bins:
            if not isinstance(b, dict):
                CONFIG.fail("bin_configurations", bins, "objects with n_bins, min_depth, max_depth")
            CONFIG.integer("bin_configurations.n_bins", b.get("n_bins"))
            CONFIG.number("bin_configurations.min_depth", b.get("min_depth"))
            CONFIG.number("bin_configurations.max_depth", b.get("max_depth"), exclusive=True)
            if b["min_depth"] >= b["max_depth"]:
                CONFIG.fail("bin_configurations", b, "min_depth < max_depth")
        self.bin_configurations = [dict(b) for b in bins]
        if len(bins) > 1:
            self._check_router()

    def _check_router(self) -> None:
        names = [b.get("name") for b in self.bin_configurations]
        if len(names) != ROUTER_DOMAINS or len(set(names)) != len(names) or not all(
                isinstance(n, str) and n for n in names):
            CONFIG.fail("bin_configurations", names,
                        f"{ROUTER_DOMAINS} configurations with distinct names (the router has "
                        f"{ROUTER_DOMAINS} outputs)")
        if self.patch_transformer_hidden_size != ROUTER_WIDTH:
            CONFIG.fail("patch_transformer_hidden_size", self.patch_transformer_hidden_size,
                        f"{ROUTER_WIDTH} (the router's classifier is built for it)")
        CONFIG.integer("num_patch_transformer_layers", self.num_patch_transformer_layers,
                       ROUTER_LAYERS)
        CONFIG.integer("patch_transformer_intermediate_size",
                       self.patch_transformer_intermediate_size)
        heads = self.patch_transformer_num_attention_heads
        CONFIG.integer("patch_transformer_num_attention_heads", heads)
        if ROUTER_WIDTH % heads:
            CONFIG.fail("patch_transformer_num_attention_heads", heads,
                        f"a divisor of {ROUTER_WIDTH}")

    # --- what the rest of the package asks every config -------------------------------

    @property
    def architecture(self) -> str:
        return ARCHITECTURE

    @property
    def is_metric(self) -> bool:
        """Always metres: the metric bins head regresses them."""
        return True

    @property
    def depth_estimation_type(self) -> str:
        return "metric"

    @property
    def is_hybrid(self) -> bool:
        return False

    @property
    def backbone_type(self) -> str:
        return "beit"

    @property
    def patch_size(self) -> int:
        return self.backbone_config.patch

    @property
    def labels(self) -> dict[int, str]:
        return {}

    @property
    def num_labels(self) -> int:
        return 0

    @property
    def bounded(self) -> bool:
        """'normed' bin centres are clipped to [min_depth, max_depth]; 'softplus' ones are
        not (the range only seeds the bins)."""
        return self.bin_centers_type == "normed"

    @property
    def max_depth(self) -> float:
        """The largest max_depth of the heads (what a 'normed' model can output at most)."""
        return max(float(b["max_depth"]) for b in self.bin_configurations)

    @property
    def has_router(self) -> bool:
        return len(self.bin_configurations) > 1

    # --- (de)serialisation --------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ZoeDepthConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"config must be a JSON object, got {type(d).__name__}")
        reject_named_backbone(d)
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: copy.deepcopy(v) for k, v in d.items() if k in names}
        extra = {k: copy.deepcopy(v) for k, v in d.items() if k not in names}
        try:
            return cls(**known, extra=extra)
        except TypeError as e:
            raise ConfigError(f"config: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        """The config.json form (transformers reads it)."""
        out = copy.deepcopy(self.extra)
        for f in dataclasses.fields(self):
            if f.name not in ("extra", "backbone_config", "architectures"):
                out[f.name] = copy.deepcopy(getattr(self, f.name))
        if self.architectures:
            out["architectures"] = list(self.architectures)
        out["backbone_config"] = {**self.backbone_config.to_dict(), "model_type": "beit"}
        return out
