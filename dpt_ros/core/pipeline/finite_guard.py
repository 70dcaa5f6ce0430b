"""Half precision that never hands out a non-finite model output.

fp16 overflows above 65504 (attention logits, layer-norm variances and the depth head's last
activations of some checkpoints get there), and a NaN / inf at the model output spreads to
a whole black or NaN frame: the complaint about fp16 TensorRT depth nodes. The guard:

- checks each model output on its device (one isfinite-all reduction per sample, no
  synchronisation: the flags are read after the frame's host copies, which synchronise
  anyway);
- when a frame's output was not finite, the pipeline runs the whole pass again in float32
  with an fp32 copy of the model (made from the loaded half weights on first need and kept,
  so it costs memory, 2x the half model, only on a device that has produced such a frame;
  no file is read again) on fp32 pixels, and counts the frame (`nonfinite_frames`, shown
  in the node's diagnostics);
- a float32 output that is not finite (a float32 model, or the recomputation) is an error
  (`NonFiniteOutput`): the frame is rejected, never published.

The depth output's own NaNs (invalid pixels after metric conversion, REP 118) are made
later and are not what this guards.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import TypeVar

import torch

log = logging.getLogger(__name__)
T = TypeVar("T")
HALF_DTYPES = (torch.float16, torch.bfloat16)


class NonFiniteOutput(RuntimeError):
    """The model gave a non-finite output even in float32 (a broken model or input)."""


def main_output(out: object) -> torch.Tensor:
    """The tensor a depth (`predicted_depth`) or segmentation (`logits`) output carries."""
    depth = getattr(out, "predicted_depth", None)
    return depth if depth is not None else out.logits


def nonfinite_per_sample(t: torch.Tensor) -> torch.Tensor:
    """(B,) bool on t's device: True where sample b has any NaN or inf."""
    return torch.isfinite(t).flatten(1).all(1).logical_not_()


class FiniteGuard:
    """Runs model forwards in `dtype` and watches their outputs (one guard per pipeline,
    shared by its tasks, so one pass is judged as a whole)."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.nonfinite_frames = 0  # frames whose model output was not finite
        self._flags: list[torch.Tensor] = []
        self._fp32 = False
        self._twins: dict[int, torch.nn.Module] = {}  # id(model) -> its fp32 copy

    def begin(self) -> None:
        """Start a pass: forget flags of a pass that did not finish (it raised)."""
        self._flags.clear()

    def forward(self, run: Callable[..., T], model: torch.nn.Module,
                pixel_values: torch.Tensor, **inputs: torch.Tensor) -> T:
        """`run(pixel_values, **inputs)` in the guard's dtype (`inputs`: further tensor inputs
        such as Prompt Depth Anything's `prompt_depth`); while recomputing, the fp32 copy of
        `model` on fp32 inputs. Every output is checked."""
        if self._fp32:
            out = self._twin(model)(pixel_values.float(),
                                    **{k: v.float() for k, v in inputs.items()})
        else:
            out = run(pixel_values.to(self.dtype),
                      **{k: v.to(self.dtype) for k, v in inputs.items()})
        self._flags.append(nonfinite_per_sample(main_output(out)))
        return out

    def bad_frames(self) -> int:
        """How many frames of this pass had a non-finite output (any task); clears."""
        if not self._flags:
            return 0
        bad = torch.stack(self._flags).any(0)
        self._flags.clear()
        return int(bad.sum())

    def recompute(self, run: Callable[[], T], bad: int) -> T:
        """Count `bad` frames and run the pass `run` again with every model in float32
        (raises NonFiniteOutput when the pass already was float32, or still fails)."""
        self.nonfinite_frames += bad
        if self.dtype not in HALF_DTYPES:
            raise NonFiniteOutput(f"the {str(self.dtype).removeprefix('torch.')} model "
                                  f"output of {bad} frame(s) is not finite: dropped")
        self._fp32 = True
        try:
            result = run()
        finally:
            self._fp32 = False
        if self.bad_frames():
            raise NonFiniteOutput("the model output is not finite even in float32: the "
                                  "frame is dropped (check the checkpoint and the input)")
        return result

    def _twin(self, model: torch.nn.Module) -> torch.nn.Module:
        twin = self._twins.get(id(model))
        if twin is None:
            with torch.inference_mode(False), torch.no_grad():
                twin = copy.deepcopy(model).float().eval()
            self._twins[id(model)] = twin
            size = sum(p.numel() for p in twin.parameters()) * 4 / 2**20
            log.warning("a %s model output was not finite: recomputing such frames in "
                        "float32 with an fp32 copy of the model (%.1f MB kept)",
                        str(self.dtype).removeprefix("torch."), size)
        return twin
