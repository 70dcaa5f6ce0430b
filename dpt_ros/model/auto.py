"""Class selection ("auto"): which config, model and image-processor class a checkpoint
needs, from its config.json `model_type` / `architectures[0]` and its
preprocessor_config.json `image_processor_type`; and the loaders built on that choice
(`load_config`, `load_model`, `load_processor`, `AutoImageProcessor`).

The one module that knows every family, so the families never import one another to find a
class; everything that reads files is `checkpoint`, everything that finds them is `hub`.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from dpt_ros.model.checkpoint import (
    build_empty,
    load_pretrained,
    processor_config,
    read_config,
)
from dpt_ros.model.depth_anything.image_processing_prompt import (
    PromptDepthAnythingImageProcessor,
)
from dpt_ros.model.depth_anything.modeling import DepthAnythingForDepthEstimation
from dpt_ros.model.depth_anything.modeling_prompt import PromptDepthAnythingForDepthEstimation
from dpt_ros.model.dpt.configuration import ARCHITECTURE_TASKS, DPTConfig
from dpt_ros.model.dpt.image_processing import DPTImageProcessor
from dpt_ros.model.dpt.modeling import (
    DPTForDepthEstimation,
    DPTForSemanticSegmentation,
    DPTModel,
)
from dpt_ros.model.errors import ModelLoadError
from dpt_ros.model.hub import CONFIG_NAME, resolve_source
from dpt_ros.model.validation import CONFIG
from dpt_ros.model.zoedepth.configuration import ZoeDepthConfig
from dpt_ros.model.zoedepth.image_processing import ZoeDepthImageProcessor
from dpt_ros.model.zoedepth.modeling import ZoeDepthForDepthEstimation

CONFIG_CLASSES: dict[str, type] = {
    **{t: DPTConfig for t in DPTConfig.model_types},
    **{t: ZoeDepthConfig for t in ZoeDepthConfig.model_types},
}
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "DPTForDepthEstimation": DPTForDepthEstimation,
    "DPTForSemanticSegmentation": DPTForSemanticSegmentation,
    "DPTModel": DPTModel,
    "DepthAnythingForDepthEstimation": DepthAnythingForDepthEstimation,
    "ZoeDepthForDepthEstimation": ZoeDepthForDepthEstimation,
    "PromptDepthAnythingForDepthEstimation": PromptDepthAnythingForDepthEstimation,
}
# image_processor_type prefix -> class; anything else is a DPTImageProcessor (as the
# DPT-family configs that name no type, or the legacy DPTFeatureExtractor).
PROCESSOR_CLASSES: dict[str, type] = {
    "ZoeDepth": ZoeDepthImageProcessor,
    "PromptDepthAnything": PromptDepthAnythingImageProcessor,
}
TASKS = tuple(sorted(set(ARCHITECTURE_TASKS.values())))


def config_from_dict(d: dict[str, Any]) -> Any:
    """The config of a Hugging Face config.json dict, by its model_type: DPTConfig for dpt /
    depth_anything / prompt_depth_anything, ZoeDepthConfig for zoedepth."""
    if isinstance(d, dict) and d.get("model_type") in CONFIG_CLASSES:
        return CONFIG_CLASSES[d["model_type"]].from_dict(d)
    if isinstance(d, dict) and "model_type" in d:
        CONFIG.fail("model_type", d.get("model_type"),
                    ", ".join(repr(t) for t in CONFIG_CLASSES))
    return DPTConfig.from_dict(d)  # its own error for a non-dict / a missing model_type


def build_model(config: Any) -> nn.Module:
    """The model class config.architecture names, constructed on the meta device (empty:
    for loading a checkpoint into, or for comparing its keys)."""
    return build_empty(MODEL_CLASSES[config.architecture], config)


def load_config(source: str | os.PathLike[str], revision: str | None = None) -> Any:
    """The config of a model directory or Hub repo id (no weights read)."""
    return read_config(resolve_source(source, weights=False, revision=revision),
                       config_from_dict)


def load_model(
    source: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    task: str | None = None,
    revision: str | None = None,
) -> nn.Module:
    """The checkpoint's model class (config.architectures[0]), strictly loaded, in eval mode
    on `device` / `dtype`. `task` ('depth' / 'segmentation' / 'features') rejects a checkpoint
    made for something else. `revision` pins a Hub repo's branch, tag or commit."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task={task!r}; accepted: {', '.join(TASKS)} or None")
    directory = resolve_source(source, revision=revision)
    config = read_config(directory, config_from_dict)
    if task is not None and config.task != task:
        raise ModelLoadError(
            f"{directory / CONFIG_NAME} is a {config.task} checkpoint "
            f"({config.architecture}); a {task} model was asked for"
        )
    return load_pretrained(MODEL_CLASSES[config.architecture], config, directory, device, dtype)


def processor_class(config: dict[str, Any]) -> type:
    """The processor class of a preprocessor_config.json dict (by image_processor_type)."""
    kind = str(config.get("image_processor_type", ""))
    return next((cls for prefix, cls in PROCESSOR_CLASSES.items() if kind.startswith(prefix)),
                DPTImageProcessor)


def load_processor(source: str | os.PathLike[str], revision: str | None = None) -> Any:
    """The image processor preprocessor_config.json describes, by its image_processor_type:
    ZoeDepthImageProcessor, PromptDepthAnythingImageProcessor, else DPTImageProcessor."""
    path, config = processor_config(source, revision)
    try:
        return processor_class(config).from_dict(config)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ModelLoadError(f"{path}: {e}") from e


class AutoImageProcessor:
    """The processor class named in preprocessor_config.json (DPT, Prompt Depth Anything or
    ZoeDepth)."""

    def __init__(self) -> None:
        raise TypeError("use AutoImageProcessor.from_pretrained(source)")

    @staticmethod
    def from_pretrained(source: str | os.PathLike[str], revision: str | None = None,
                        **overrides: Any) -> Any:
        return load_processor(source, revision).with_options(overrides)
