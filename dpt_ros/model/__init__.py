"""The DPT model family (DPT, DPT-Hybrid, DPT-DINOv2, Depth Anything V1/V2, Prompt Depth
Anything) in plain PyTorch, loading Hugging Face checkpoints unchanged. No transformers, no
ROS."""

from dpt_ros.model.config import ConfigError, DPTConfig
from dpt_ros.model.depth_anything import DepthAnythingForDepthEstimation
from dpt_ros.model.dpt import DPTForDepthEstimation, DPTForSemanticSegmentation, DPTModel
from dpt_ros.model.loading import (
    ModelLoadError,
    load_config,
    load_model,
    load_processor,
    resolve_source,
    save_model,
)
from dpt_ros.model.outputs import BaseModelOutput, DepthEstimatorOutput, SemanticSegmenterOutput
from dpt_ros.model.prompt_depth_anything import PromptDepthAnythingForDepthEstimation

__all__ = [
    "BaseModelOutput",
    "ConfigError",
    "DPTConfig",
    "DPTForDepthEstimation",
    "DPTForSemanticSegmentation",
    "DPTModel",
    "DepthAnythingForDepthEstimation",
    "DepthEstimatorOutput",
    "ModelLoadError",
    "PromptDepthAnythingForDepthEstimation",
    "SemanticSegmenterOutput",
    "load_config",
    "load_model",
    "load_processor",
    "resolve_source",
    "save_model",
]
