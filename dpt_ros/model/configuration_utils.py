"""Config rules shared by the model families (DPT / Depth Anything and ZoeDepth): the neck's
reassemble factors, `architectures`, token backbones, transformers' named backbones.

Here rather than in one family's configuration so that no family's config imports
another's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from dpt_ros.model.validation import CONFIG


class ModelTraits:
    """What the pipeline, the node and `dpt-ros info` ask of every model config beyond its
    task and metric flag: the capabilities a family may have, answered "no" here. Each
    family's config (a dataclass; this base has no fields) overrides what it has, so the
    callers read attributes instead of guessing with getattr."""

    # A focal rule for metres (DA3METRIC: output * f / 300; Depth Pro: W / f on the inverse
    # depth): `focal_scale(fx, fy, width)` at the network input; None: no such rule.
    focal_scale: ClassVar[Callable[..., float] | None] = None

    @property
    def task(self) -> str:
        """'depth', 'segmentation' or 'features' (DPTConfig's follows its architecture)."""
        return "depth"

    @property
    def metric_focal(self) -> float | None:
        """The focal length (px) a focal-rule model's output is expressed at (DA3: 300)."""
        return None

    @property
    def has_fov(self) -> bool:
        """The model estimates the camera's field of view (Depth Pro)."""
        return False

    @property
    def has_sky(self) -> bool:
        """The model has a sky head (Depth Anything 3)."""
        return False

    @property
    def predicts_depth(self) -> bool:
        """A relative output that grows with distance (DA3MONO), not inverse depth."""
        return False

    @property
    def takes_prompt(self) -> bool:
        """Metric only with a prompt depth in the forward (Prompt Depth Anything)."""
        return False


def check_reassemble_factors(factors: Any, n: int) -> list[float]:
    """reassemble_factors as a list: one factor per neck stage (`n`), each an integer >= 1
    (upsampling) or the reciprocal of one (downsampling), as the reassemble layers need."""
    if not isinstance(factors, (list, tuple)):
        CONFIG.fail("reassemble_factors", factors, "a list of numbers")
    factors = list(factors)
    if n == 0 or len(factors) != n:
        CONFIG.fail("reassemble_factors", factors, f"one factor per neck_hidden_sizes entry ({n})")
    for f in factors:
        CONFIG.number("reassemble_factors", f)
        whole = f >= 1 and float(f).is_integer()
        inverse = 0 < f < 1 and (1 / f).is_integer()
        if not (whole or inverse):
            CONFIG.fail("reassemble_factors", factors,
                        "integers >= 1 or reciprocals of integers (0.5, 0.25, ...)")
    return factors


def check_architectures(value: Any, accepted: tuple[str, ...]) -> list[str] | None:
    """architectures (None, or a non-empty list whose first class is one of `accepted`)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value:
        CONFIG.fail("architectures", value, "a non-empty list of class names")
    value = list(value)
    CONFIG.choice("architectures[0]", value[0], accepted)
    return value


def check_token_states(backbone_config: Any) -> None:
    """A token backbone (DINOv2 / BEiT) must hand DPT's reassemble stage its tokens."""
    if backbone_config.reshape_hidden_states:
        CONFIG.fail("backbone_config.reshape_hidden_states", True,
                    "false (the neck wants tokens)")


def reject_named_backbone(d: dict[str, Any]) -> None:
    """transformers' `backbone` / `use_timm_backbone` (weights from timm or another repo)."""
    if d.get("backbone") is not None or d.get("use_timm_backbone"):
        CONFIG.fail("backbone", d.get("backbone"),
                    "null (named/timm backbones are unsupported; use backbone_config)")
