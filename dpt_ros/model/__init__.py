"""The DPT model family (DPT, DPT-Hybrid, DPT-DINOv2, DPT-BEiT, DPT-Swinv2, Depth Anything
V1/V2, Prompt Depth Anything, ZoeDepth) in plain PyTorch, loading Hugging Face checkpoints
unchanged. No transformers, no ROS.

Two ways in: the project's own (`load_model`, `load_processor`, `processor.preprocess`) and
transformers' spelling of the same (`DPTForDepthEstimation.from_pretrained`,
`AutoImageProcessor.from_pretrained`, `processor(images=..., return_tensors="pt")`,
`model(**inputs)`), so the examples written for transformers run with this import.
"""

from dpt_ros.model.auto import AutoImageProcessor, load_config, load_model, load_processor
from dpt_ros.model.checkpoint import save_model
from dpt_ros.model.depth_anything.modeling import DepthAnythingForDepthEstimation
from dpt_ros.model.depth_anything.modeling_prompt import PromptDepthAnythingForDepthEstimation
from dpt_ros.model.dpt.configuration import DPTConfig
from dpt_ros.model.dpt.image_processing import DPTImageProcessor
from dpt_ros.model.dpt.modeling import DPTForDepthEstimation, DPTForSemanticSegmentation, DPTModel
from dpt_ros.model.errors import ConfigError, ModelLoadError
from dpt_ros.model.hf_api import BatchFeature
from dpt_ros.model.hub import ModelSource, locate_source, resolve_source
from dpt_ros.model.outputs import BaseModelOutput, DepthEstimatorOutput, SemanticSegmenterOutput
from dpt_ros.model.zoedepth.configuration import ZoeDepthConfig
from dpt_ros.model.zoedepth.image_processing import ZoeDepthImageProcessor
from dpt_ros.model.zoedepth.modeling import ZoeDepthForDepthEstimation

__all__ = [
    "AutoImageProcessor",
    "BaseModelOutput",
    "BatchFeature",
    "ConfigError",
    "DPTConfig",
    "DPTForDepthEstimation",
    "DPTForSemanticSegmentation",
    "DPTImageProcessor",
    "DPTModel",
    "DepthAnythingForDepthEstimation",
    "DepthEstimatorOutput",
    "ModelLoadError",
    "ModelSource",
    "PromptDepthAnythingForDepthEstimation",
    "SemanticSegmenterOutput",
    "ZoeDepthConfig",
    "ZoeDepthForDepthEstimation",
    "ZoeDepthImageProcessor",
    "load_config",
    "load_model",
    "load_processor",
    "locate_source",
    "resolve_source",
    "save_model",
]
