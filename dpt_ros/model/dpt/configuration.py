"""DPTConfig: one dataclass for the `dpt`, `depth_anything` and `prompt_depth_anything`
config.json files.

Field names, defaults and the post-init consequences follow transformers' DPTConfig and
DepthAnythingConfig, so a Hub config.json means the same model here. Values the reference would
only trip over at forward time (wrong lengths, unsupported backbones) are rejected up front
with a ConfigError that names the field and what is accepted.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dpt_ros.model.backbones import (
    backbone_spec,
    backbone_type,
    parse_backbone_config,
    registered,
)
from dpt_ros.model.backbones.base import BackboneSpec
from dpt_ros.model.checkpoint import read_config
from dpt_ros.model.configuration_utils import (
    ModelTraits,
    check_architectures,
    check_reassemble_factors,
    check_token_states,
    reject_named_backbone,
)
from dpt_ros.model.errors import ConfigError
from dpt_ros.model.hub import resolve_source
from dpt_ros.model.layers.activations import ACTIVATION_NAMES
from dpt_ros.model.validation import CONFIG

MODEL_TYPES = ("dpt", "depth_anything", "prompt_depth_anything")
READOUT_TYPES = ("ignore", "add", "project")
DEPTH_ESTIMATION_TYPES = ("relative", "metric")
# architectures[0] -> task; the class loaded for a checkpoint follows architectures[0].
ARCHITECTURE_TASKS = {
    "DPTForDepthEstimation": "depth",
    "DPTForSemanticSegmentation": "segmentation",
    "DPTModel": "features",
    "DepthAnythingForDepthEstimation": "depth",
    "ZoeDepthForDepthEstimation": "depth",
    "PromptDepthAnythingForDepthEstimation": "depth",
    "DepthAnything3ForDepthEstimation": "depth",  # its own config (model.depth_anything3)
    "DepthProForDepthEstimation": "depth",  # its own config (model.depth_pro)
}
_ARCHITECTURES_BY_TYPE = {
    "dpt": ("DPTForDepthEstimation", "DPTForSemanticSegmentation", "DPTModel"),
    "depth_anything": ("DepthAnythingForDepthEstimation",),
    "prompt_depth_anything": ("PromptDepthAnythingForDepthEstimation",),
}
# Fields whose transformers default differs between the two model types.
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "dpt": {"patch_size": 16, "neck_hidden_sizes": [96, 192, 384, 768], "fusion_hidden_size": 256},
    "depth_anything": {
        "patch_size": 14,
        "neck_hidden_sizes": [48, 96, 192, 384],
        "fusion_hidden_size": 64,
        "depth_estimation_type": "relative",
        "max_depth": 1,
    },
}
# Prompt Depth Anything is Depth Anything with a prompt layer per fusion step.
_TYPE_DEFAULTS["prompt_depth_anything"] = _TYPE_DEFAULTS["depth_anything"]
# transformers' sub-config defaults when backbone_config is absent.
_DEFAULT_BIT = {
    "model_type": "bit",
    "global_padding": "same",
    "layer_type": "bottleneck",
    "depths": [3, 4, 9],
    "hidden_sizes": [256, 512, 1024, 2048],
    "out_features": ["stage1", "stage2", "stage3"],
    "embedding_dynamic_padding": True,
}
_DEFAULT_DINOV2 = {
    "model_type": "dinov2",
    "image_size": 518,
    "hidden_size": 384,
    "num_attention_heads": 6,
    "out_indices": [9, 10, 11, 12],
    "reshape_hidden_states": False,
}
_DPT_KEYS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range", "layer_norm_eps",
    "image_size", "patch_size", "num_channels", "is_hybrid", "qkv_bias", "backbone_out_indices",
    "readout_type", "reassemble_factors", "neck_hidden_sizes", "fusion_hidden_size",
    "head_in_index", "use_batch_norm_in_fusion_residual", "use_bias_in_fusion_residual",
    "add_projection", "use_auxiliary_head", "auxiliary_loss_weight",
    "semantic_loss_ignore_index", "semantic_classifier_dropout", "backbone_featmap_shape",
    "neck_ignore_stages", "pooler_output_size", "pooler_act",
)
_DEPTH_ANYTHING_KEYS = (
    "patch_size", "initializer_range", "reassemble_hidden_size", "reassemble_factors",
    "neck_hidden_sizes", "fusion_hidden_size", "head_in_index", "head_hidden_size",
    "depth_estimation_type", "max_depth",
)


def _square_int(name: str, value: Any) -> int:
    """image_size / patch_size may be stored as an int or an (h, w) pair; the reference's
    position-embedding grid is square, so only equal pairs are meaningful."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            CONFIG.fail(name, value, "an integer or a pair of equal integers")
        value = value[0]
    CONFIG.integer(name, value)
    return value


@dataclass
class DPTConfig(ModelTraits):
    """transformers' DPTConfig (+ DepthAnythingConfig) fields; validated on construction.

    Fields left as None take the default of `model_type` (they differ between dpt and
    depth_anything). `depth_estimation_type` is optional for dpt (our synthetic checkpoints set
    it); when absent, DINOv2-backed DPT is metric as the facebook/dpt-dinov2-* heads are.
    """

    model_type: str = "dpt"
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    image_size: int = 384
    patch_size: int | None = None
    num_channels: int = 3
    is_hybrid: bool = False
    qkv_bias: bool = True
    backbone_out_indices: list[int] | None = field(default_factory=lambda: [2, 5, 8, 11])
    readout_type: str = "project"
    reassemble_factors: list[float] = field(default_factory=lambda: [4, 2, 1, 0.5])
    neck_hidden_sizes: list[int] | None = None
    fusion_hidden_size: int | None = None
    head_in_index: int = -1
    use_batch_norm_in_fusion_residual: bool = False
    use_bias_in_fusion_residual: bool | None = None
    add_projection: bool = False
    use_auxiliary_head: bool = True
    auxiliary_loss_weight: float = 0.4
    semantic_loss_ignore_index: int = 255
    semantic_classifier_dropout: float = 0.1
    backbone_featmap_shape: list[int] | None = field(default_factory=lambda: [1, 1024, 24, 24])
    neck_ignore_stages: list[int] = field(default_factory=lambda: [0, 1])
    backbone_config: Any = None
    pooler_output_size: int | None = None
    pooler_act: str = "tanh"
    reassemble_hidden_size: int = 384
    head_hidden_size: int = 32
    depth_estimation_type: str | None = None
    max_depth: float | None = None
    id2label: dict[int, str] = field(default_factory=lambda: {0: "LABEL_0", 1: "LABEL_1"})
    label2id: dict[str, int] | None = None
    architectures: list[str] | None = None

    # the config.json model_types this class reads
    model_types: ClassVar[tuple[str, ...]] = MODEL_TYPES

    def __post_init__(self) -> None:
        CONFIG.choice("model_type", self.model_type, MODEL_TYPES)
        for name, value in _TYPE_DEFAULTS[self.model_type].items():
            if getattr(self, name) is None:
                setattr(self, name, copy.deepcopy(value))
        self.patch_size = _square_int("patch_size", self.patch_size)
        self.image_size = _square_int("image_size", self.image_size)
        self._check_common()
        if self.model_type == "dpt":
            self._check_dpt()
        else:
            self._check_depth_anything()
        self._check_labels()

    def _check_common(self) -> None:
        for name in ("fusion_hidden_size", "head_hidden_size", "reassemble_hidden_size"):
            CONFIG.integer(name, getattr(self, name))
        self.neck_hidden_sizes = CONFIG.integers("neck_hidden_sizes", self.neck_hidden_sizes)
        n = len(self.neck_hidden_sizes)
        self.reassemble_factors = check_reassemble_factors(self.reassemble_factors, n)
        CONFIG.integer("head_in_index", self.head_in_index, minimum=None)
        if not -n <= self.head_in_index < n:
            CONFIG.fail("head_in_index", self.head_in_index, f"an index into {n} neck stages")
        CONFIG.number("initializer_range", self.initializer_range)
        if self.depth_estimation_type is not None:
            CONFIG.choice("depth_estimation_type", self.depth_estimation_type,
                          DEPTH_ESTIMATION_TYPES)
        if self.max_depth is not None:
            CONFIG.number("max_depth", self.max_depth)
        self.architectures = check_architectures(self.architectures,
                                                  _ARCHITECTURES_BY_TYPE[self.model_type])

    def _check_dpt(self) -> None:
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "num_channels"):
            CONFIG.integer(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            CONFIG.fail("num_attention_heads", self.num_attention_heads, "a divisor of hidden_size")
        CONFIG.choice("hidden_act", self.hidden_act, ACTIVATION_NAMES)
        CONFIG.choice("pooler_act", self.pooler_act, ACTIVATION_NAMES)
        CONFIG.choice("readout_type", self.readout_type, READOUT_TYPES)
        CONFIG.number("layer_norm_eps", self.layer_norm_eps)
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob",
                     "semantic_classifier_dropout"):
            CONFIG.number(name, getattr(self, name), below=1.0)
        CONFIG.number("auxiliary_loss_weight", self.auxiliary_loss_weight)
        CONFIG.integer("semantic_loss_ignore_index", self.semantic_loss_ignore_index, minimum=None)
        for name in ("is_hybrid", "qkv_bias", "use_batch_norm_in_fusion_residual",
                     "add_projection", "use_auxiliary_head"):
            CONFIG.flag(name, getattr(self, name))
        CONFIG.flag("use_bias_in_fusion_residual", self.use_bias_in_fusion_residual,
                    allow_none=True)
        if self.add_projection and self.fusion_hidden_size != 256:
            CONFIG.fail("fusion_hidden_size", self.fusion_hidden_size,
                        "256 when add_projection is true (the projection is 256 -> 256)")
        if self.image_size % self.patch_size:
            CONFIG.fail("image_size", self.image_size,
                        f"a multiple of patch_size={self.patch_size}")
        if self.is_hybrid and self.readout_type != "project":
            CONFIG.fail("readout_type", self.readout_type, "'project' when is_hybrid is true")
        self.backbone_config = parse_backbone_config(
            _DEFAULT_BIT if self.is_hybrid and self.backbone_config is None
            else self.backbone_config, "bit")
        kind = backbone_type(self.backbone_config)
        n = len(self.neck_hidden_sizes)
        if self.is_hybrid:
            if kind != "bit":
                CONFIG.fail("backbone_config.model_type", kind, "'bit' when is_hybrid is true")
            if len(self.backbone_config.out_features) != 3:
                CONFIG.fail("backbone_config.out_features", self.backbone_config.out_features,
                            "three BiT stages for DPT-Hybrid")
            shape = CONFIG.integers("backbone_featmap_shape", self.backbone_featmap_shape)
            if len(shape) != 4:
                CONFIG.fail("backbone_featmap_shape", shape, "[batch, channels, height, width]")
            self.backbone_featmap_shape = shape
            # the reference always passes stages 0 and 1 (the BiT maps) through untouched
            if list(self.neck_ignore_stages) != [0, 1]:
                CONFIG.fail("neck_ignore_stages", self.neck_ignore_stages, "[0, 1] for DPT-Hybrid")
            self.neck_ignore_stages = [0, 1]
            if n != 4:
                CONFIG.fail("neck_hidden_sizes", self.neck_hidden_sizes, "4 stages for DPT-Hybrid")
        else:
            if kind is not None and not backbone_spec(kind).standalone:
                standalone = [repr(s.model_type) for s in registered() if s.standalone]
                CONFIG.fail("backbone_config.model_type", kind,
                            ", ".join(standalone) + " when is_hybrid is false")
            self.backbone_featmap_shape = None
            self.neck_ignore_stages = []
        if self.backbone_spec.standalone:
            self._check_backbone("DPTForDepthEstimation")
        else:
            self._check_out_indices(n)
        if self.pooler_output_size is not None:
            CONFIG.integer("pooler_output_size", self.pooler_output_size, minimum=0)
        self.pooler_output_size = self.pooler_output_size or self.hidden_size

    def _check_out_indices(self, n: int) -> None:
        """The reference keeps the encoder layers whose index is listed, in layer order."""
        indices = CONFIG.integers("backbone_out_indices", self.backbone_out_indices, 0)
        self.backbone_out_indices = indices
        wanted = self.vit_out_indices
        if any(i >= self.num_hidden_layers for i in indices) or len(wanted) + (
            2 if self.is_hybrid else 0
        ) != n:
            CONFIG.fail("backbone_out_indices", indices,
                        f"{n} distinct layer indices below "
                        f"num_hidden_layers={self.num_hidden_layers}"
                        + " (the first two stand for the BiT stages)" * self.is_hybrid)

    def _check_backbone(self, architecture: str) -> None:
        """A DINOv2 / BEiT / Swinv2 backbone_config: only the depth model builds one (as in
        transformers), one selected stage per neck entry, in the form the neck reads."""
        bb, kind = self.backbone_config, self.backbone_type
        if self.architecture != architecture:
            CONFIG.fail("architectures", self.architectures,
                        f"[{architecture!r}] with a {kind} backbone_config")
        spec = backbone_spec(kind)
        if spec.output == "tokens":
            check_token_states(bb)
        n = len(self.neck_hidden_sizes)
        if len(bb.out_features) != n:
            CONFIG.fail("backbone_config.out_features", bb.out_features,
                        f"{n} stages, one per neck_hidden_sizes entry")
        if spec.output == "maps":
            channels = bb.stage_channels()
            widths = [channels[bb.stage_names.index(f)] for f in bb.out_features]
            if widths != self.neck_hidden_sizes:
                CONFIG.fail("neck_hidden_sizes", self.neck_hidden_sizes,
                            f"the widths of the selected {kind} stages, {widths}")

    def _check_depth_anything(self) -> None:
        self.backbone_config = parse_backbone_config(
            _DEFAULT_DINOV2 if self.backbone_config is None else self.backbone_config, "dinov2")
        if backbone_type(self.backbone_config) != "dinov2":
            CONFIG.fail("backbone_config.model_type", backbone_type(self.backbone_config),
                        f"'dinov2' for {self.model_type}")
        self._check_backbone(_ARCHITECTURES_BY_TYPE[self.model_type][0])
        bb = self.backbone_config
        if self.reassemble_hidden_size != bb.hidden_size:
            CONFIG.fail("reassemble_hidden_size", self.reassemble_hidden_size,
                        f"backbone_config.hidden_size={bb.hidden_size}")
        patch = bb.patch_size if isinstance(bb.patch_size, int) else tuple(bb.patch_size)
        if patch not in (self.patch_size, (self.patch_size, self.patch_size)):
            CONFIG.fail("patch_size", self.patch_size,
                        f"backbone_config.patch_size={bb.patch_size}")
        if self.max_depth is None:
            CONFIG.fail("max_depth", None, "a number (the head multiplies by it)")

    def _check_labels(self) -> None:
        if not isinstance(self.id2label, dict) or not self.id2label:
            CONFIG.fail("id2label", self.id2label, "a non-empty {index: name} object")
        try:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
        except (TypeError, ValueError):
            CONFIG.fail("id2label", self.id2label, "integer keys")
        if sorted(self.id2label) != list(range(len(self.id2label))):
            CONFIG.fail("id2label", self.id2label, "keys 0..num_labels-1")
        if self.label2id is None:
            self.label2id = {v: k for k, v in self.id2label.items()}

    # --- derived values -------------------------------------------------------------------

    @property
    def architecture(self) -> str:
        """The class to build: architectures[0], or the depth model of this model_type."""
        if self.architectures:
            return self.architectures[0]
        return _ARCHITECTURES_BY_TYPE[self.model_type][0]

    @property
    def task(self) -> str:
        """'depth', 'segmentation' or 'features'."""
        return ARCHITECTURE_TASKS[self.architecture]

    @property
    def is_metric(self) -> bool:
        """Whether predicted_depth is in metres (else relative inverse depth)."""
        if self.depth_estimation_type is not None:
            return self.depth_estimation_type == "metric"
        return self.model_type == "dpt" and self.backbone_type == "dinov2"

    @property
    def takes_prompt(self) -> bool:
        """Prompt Depth Anything: metric only with a prompt depth (metres) in the forward;
        without one its output is relative depth in (0, 1)."""
        return self.model_type == "prompt_depth_anything"

    @property
    def backbone_type(self) -> str | None:
        """The backbone_config's model_type ('bit', 'dinov2', ...); None for the plain ViT."""
        return backbone_type(self.backbone_config)

    @property
    def backbone_spec(self) -> BackboneSpec:
        """The backbone whose features feed the neck: the backbone_config's when it is a
        `backbone.*` of its own, else DPT's ViT (plain, or with BiT as its stem)."""
        spec = backbone_spec(self.backbone_type or "vit")
        return spec if spec.standalone else backbone_spec("vit")

    @property
    def labels(self) -> dict[int, str]:
        return dict(self.id2label)

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def vit_out_indices(self) -> list[int]:
        """ViT layers (0-based, after the block) the neck reads, in layer order; for the
        hybrid the first two entries of backbone_out_indices stand for BiT stages."""
        indices = self.backbone_out_indices[2:] if self.is_hybrid else self.backbone_out_indices
        return sorted(set(indices))

    # --- (de)serialisation ----------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, source: str, revision: str | None = None) -> DPTConfig:
        """The config.json of a model directory or Hub repo id (transformers' spelling)."""
        return read_config(resolve_source(source, weights=False, revision=revision),
                           cls._from_checkpoint_dict(str(source)))

    @classmethod
    def _from_checkpoint_dict(cls, source: str) -> Any:
        def parse(d: Any) -> DPTConfig:
            if isinstance(d, dict) and d.get("model_type") not in cls.model_types:
                raise ConfigError(f"{source} holds a {d.get('model_type')} config, not a "
                                  f"{cls.__name__}")
            return cls.from_dict(d)

        return parse

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DPTConfig:
        """From a Hugging Face config.json dict; bookkeeping keys we do not model are ignored."""
        if not isinstance(d, dict):
            raise ConfigError(f"config must be a JSON object, got {type(d).__name__}")
        if "model_type" not in d:
            CONFIG.fail("model_type", None, ", ".join(repr(t) for t in MODEL_TYPES))
        reject_named_backbone(d)
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: copy.deepcopy(v) for k, v in d.items() if k in names}
        if "id2label" not in d and d.get("num_labels") is not None:
            CONFIG.integer("num_labels", d["num_labels"])
            kwargs["id2label"] = {i: f"LABEL_{i}" for i in range(d["num_labels"])}
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ConfigError(f"config: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        """The config.json form (Hugging Face layout, readable by transformers too)."""
        keys = _DPT_KEYS if self.model_type == "dpt" else _DEPTH_ANYTHING_KEYS
        out: dict[str, Any] = {"model_type": self.model_type}
        if self.architectures:
            out["architectures"] = list(self.architectures)
        for key in keys:
            out[key] = copy.deepcopy(getattr(self, key))
        if self.model_type == "dpt" and self.depth_estimation_type is not None:
            out["depth_estimation_type"] = self.depth_estimation_type
        bb = self.backbone_config
        out["backbone_config"] = None if bb is None else {
            **bb.to_dict(), "model_type": self.backbone_type}
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = dict(self.label2id)
        return out

