"""One model of the pipeline: loaded from its source (one snapshot for model and
processor), its processor sized for `input_size`, its forward compiled when asked (with an
eager fallback) and watched by the pipeline's `FiniteGuard`; plus the device / dtype rules."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dpt_ros.core.pipeline.finite_guard import FiniteGuard
from dpt_ros.model import (
    ConfigError,
    ModelLoadError,
    ModelSource,
    load_model,
    load_processor,
    locate_source,
)
from dpt_ros.model.dpt.image_processing import DPTImageProcessor

log = logging.getLogger(__name__)


class PipelineConfigError(ValueError):
    """Start-up configuration the pipeline cannot run with; the message says what to change."""


def select_device(name: str) -> torch.device:
    """`auto` takes the first CUDA device when there is one, else the CPU."""
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise PipelineConfigError(f"device '{name}' asked for but CUDA is not available; "
                                      "set device to 'auto' or 'cpu'")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise PipelineConfigError(f"device '{name}' does not exist: "
                                      f"{torch.cuda.device_count()} CUDA device(s) present")
        return device
    raise PipelineConfigError(f"device '{name}' is not one of auto, cpu, cuda, cuda:N")


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def select_dtype(name: str, device: torch.device) -> torch.dtype:
    if name not in DTYPES:
        raise PipelineConfigError(f"dtype '{name}' is not one of {', '.join(DTYPES)}")
    if name == "float16" and device.type == "cpu":
        raise PipelineConfigError("dtype float16 needs a CUDA device; "
                                  "use float32 or bfloat16 on CPU")
    return DTYPES[name]


# CUDA-graph modes run a new graph once to warm it, record it on the next call, replay after
GRAPH_MODES = ("reduce-overhead", "max-autotune")


@dataclass
class ModelTask:
    """One loaded model, the processor that feeds it and how its forward is run."""

    model: torch.nn.Module
    processor: DPTImageProcessor
    source: str
    origin: ModelSource  # the directory (and Hub commit) both were read from
    compile_mode: str = "none"
    backend: str | Callable = "inductor"
    forward: Callable[[torch.Tensor], object] | None = None
    guard: FiniteGuard | None = None  # the pipeline's; default: one for the model's dtype

    def __post_init__(self) -> None:
        if self.guard is None:
            self.guard = FiniteGuard(next(self.model.parameters()).dtype)
        self.forward = self.model
        if self.compile_mode != "none":
            # Static shapes: one graph per camera size; "reduce-overhead" adds CUDA graphs.
            mode = None if self.compile_mode == "default" else self.compile_mode
            self.forward = torch.compile(self.model, mode=mode, dynamic=False,
                                         backend=self.backend)

    def __call__(self, pixel_values: torch.Tensor, **inputs: torch.Tensor):
        """The forward in the pipeline's dtype, watched by its `FiniteGuard` (`inputs`:
        Prompt Depth Anything's `prompt_depth`)."""
        return self.guard.forward(self._run, self.model, pixel_values, **inputs)

    def _run(self, pixel_values: torch.Tensor, **inputs: torch.Tensor):
        try:
            return self.forward(pixel_values, **inputs)
        except Exception as exc:  # compilation errors surface on the first call of a shape
            if self.forward is self.model:
                raise
            log.warning("torch.compile (%s) failed for %s, running eager instead: %s",
                        self.compile_mode, self.source, str(exc).splitlines()[0][:200])
            self.forward = self.model
            return self.model(pixel_values, **inputs)


def load_task(source: str, task: str, *, device: torch.device, dtype: torch.dtype,
               input_size: tuple[int, int] | None, compile_mode: str,
               backend: str | Callable, guard: FiniteGuard, revision: str = "") -> ModelTask:
    try:
        # Resolved once: model and processor come from the same snapshot (commit).
        origin = locate_source(source, revision=revision or None)
        model = load_model(origin.directory, device=device, dtype=dtype, task=task)
        processor = load_processor(origin.directory)
    except (ModelLoadError, ConfigError, OSError, ValueError) as exc:
        raise PipelineConfigError(f"cannot load {task} model '{source}': {exc}") from exc
    if input_size is not None:
        patch = getattr(model.config.backbone_config, "patch_size", None) or model.config.patch_size
        h, w = input_size
        if h <= 0 or w <= 0 or h % patch or w % patch:
            raise PipelineConfigError(f"input_size {h}x{w} must be positive multiples of the "
                                      f"patch size {patch} of '{source}'")
        overrides = {"do_resize": True, "size": {"height": h, "width": w},
                     "keep_aspect_ratio": False}
        processor = type(processor).from_dict({**processor.to_dict(), **overrides})
    return ModelTask(model, processor, source, origin, compile_mode, backend, guard=guard)


