"""Alignment as the pipeline applies it: the reference a frame carries, one `Aligner` per
camera kept across frames, and the settings they are built from.

A frame (`core.pipeline.pipeline.Frame`) carries its camera's name, its stamp and, when one was
paired with it, a `FrameReference`: a registered depth image and/or a point cloud. The
pipeline turns the reference into samples on the output grid with the frame's own camera
model (intrinsics scaled to the grid, lens distortion included) and asks the camera's
`Aligner` for the alignment to apply; frames without a reference get the filtered one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from dpt_ros.config.settings import IDENTITY_EXTRINSIC
from dpt_ros.core.alignment.aligner import Aligner
from dpt_ros.core.alignment.fit import MODES, Fit
from dpt_ros.core.alignment.reference import (
    Extrinsic,
    ReferenceSamples,
    depth_in_metres,
    samples_from_depth_image,
    samples_from_points,
)
from dpt_ros.core.alignment.temporal import AlignmentState
from dpt_ros.core.camera.geometry import Intrinsics

IDENTITY = IDENTITY_EXTRINSIC
MAX_CAMERAS = 64  # aligners kept (one per camera name; the node has a fixed set)


@dataclass
class FrameReference:
    """The metric reference paired with one frame by stamp.

    `depth`: a depth image registered to the frame (same optical frame, any resolution),
    (h, w) uint16 millimetres (`16UC1`) or float32 metres (`32FC1`), 0 / NaN = none.
    `points`: (N, 3) float32, in the camera optical frame, or in the sensor frame that
    `extrinsic` (camera <- sensor) moves into it. Either or both (their samples are pooled).
    """

    depth: np.ndarray | torch.Tensor | None = None
    encoding: str = "32FC1"
    points: np.ndarray | torch.Tensor | None = None
    extrinsic: Extrinsic | None = None

    def depth_metres(self, device: torch.device) -> torch.Tensor | None:
        """The depth image as float32 metres on `device`, NaN = no measurement."""
        if self.depth is None:
            return None
        return depth_in_metres(self.depth, self.encoding, device)

    def samples(self, camera: Intrinsics | None, grid: tuple[int, int],
                device: torch.device) -> ReferenceSamples | None:
        """Samples on the (H, W) grid `camera` describes (its intrinsics at that size);
        None when there is nothing usable. Points need the camera model (ValueError
        without one)."""
        parts: list[ReferenceSamples] = []
        depth = self.depth_metres(device)
        if depth is not None:
            parts.append(samples_from_depth_image(depth, grid))
        if self.points is not None:
            if camera is None:
                raise ValueError("a points reference needs the frame's camera model "
                                 "(intrinsics) to be projected")
            parts.append(samples_from_points(self.points, camera, self.extrinsic, device))
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return ReferenceSamples(torch.cat([p.u for p in parts]), torch.cat([p.v for p in parts]),
                                torch.cat([p.z for p in parts]), grid)


@dataclass(frozen=True)
class AlignmentConfig:
    """The `alignment.*` parameters the pipeline uses (PipelineSettings carries them)."""

    mode: str = "off"
    smoothing_s: float = 0.3
    max_age_s: float = 2.0
    min_inliers: int = 50
    max_residual: float = 0.25
    gate: float = 0.2
    extrinsic: tuple[float, ...] = IDENTITY

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"alignment.mode {self.mode!r} is not one of {', '.join(MODES)}")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def points_extrinsic(self) -> Extrinsic | None:
        """camera <- points' frame (None: the points are in the camera optical frame)."""
        ext = Extrinsic.from_list(self.extrinsic)
        return None if ext.is_identity else ext

    @classmethod
    def from_settings(cls, settings: Any) -> AlignmentConfig:
        return cls(settings.alignment_mode, settings.alignment_smoothing_s,
                   settings.alignment_max_age_s, settings.alignment_min_inliers,
                   settings.alignment_max_residual, settings.alignment_gate,
                   tuple(settings.alignment_extrinsic))


def state_of_fit(fit: Fit) -> AlignmentState:
    """The state of a stand-alone fit (a frame without a stamp: unrelated images, no
    filtering): valid exactly when the fit was accepted."""
    status = "accepted" if fit.accepted else f"rejected: {fit.reason}"
    return AlignmentState(valid=fit.accepted, scale=fit.scale if fit.accepted else math.nan,
                          shift=fit.shift if fit.accepted else math.nan, inliers=fit.inliers,
                          residual=fit.residual, age_s=0.0 if fit.accepted else math.inf,
                          accepted=int(fit.accepted), rejected=int(not fit.accepted),
                          status=status)


class CameraAlignments:
    """One `Aligner` per camera name, kept across frames (and rebuilt, state reset, when
    the settings or the model change). Used from the pipeline's thread only; `states` is
    the latest state per camera for readers on other threads (a plain dict swap)."""

    def __init__(self) -> None:
        self._config: AlignmentConfig | None = None
        self._metric = False
        self._aligners: dict[str, Aligner] = {}
        self.states: dict[str, AlignmentState] = {}

    def configure(self, config: AlignmentConfig, model_is_metric: bool) -> None:
        if config == self._config and model_is_metric == self._metric:
            return
        self._config, self._metric = config, model_is_metric
        self._aligners = {}
        self.states = {}

    @property
    def config(self) -> AlignmentConfig:
        return self._config or AlignmentConfig()

    def _aligner(self, camera: str) -> Aligner:
        aligner = self._aligners.get(camera)
        if aligner is None:
            if len(self._aligners) >= MAX_CAMERAS:
                self._aligners.clear()
            c = self.config
            aligner = self._aligners[camera] = Aligner(
                c.mode, self._metric, smoothing_s=c.smoothing_s, max_age_s=c.max_age_s,
                min_inliers=c.min_inliers, max_residual=c.max_residual, gate=c.gate)
        return aligner

    def observe(self, camera: str, stamp: float | None, prediction: torch.Tensor,
                reference: FrameReference | None, camera_model: Intrinsics | None
                ) -> AlignmentState:
        """The alignment for one frame's (H, W) prediction: fitted to its reference when it
        has one, else the camera's filtered state at `stamp`. `stamp` None: the frame
        stands alone (a fit of its own reference, nothing filtered or kept)."""
        aligner = self._aligner(camera)
        samples, problem = None, ""
        if reference is not None:
            try:
                samples = reference.samples(camera_model, tuple(prediction.shape),
                                            prediction.device)
            except ValueError as err:
                problem = str(err)
        if stamp is None:
            if samples is None:
                state = AlignmentState(False, status=problem or "no reference")
            else:
                state = state_of_fit(aligner.fit(prediction, samples))
        elif samples is not None:
            state = aligner.update(prediction, samples, stamp)
        else:
            state = aligner.state(stamp)
            if problem:
                state = replace(state, status=f"reference unusable: {problem}")
        self.states = {**self.states, camera: state}
        return state

    def snapshot(self) -> Mapping[str, AlignmentState]:
        return self.states

    def save(self) -> tuple[dict[str, Aligner], dict[str, AlignmentState]]:
        """A copy of every aligner's state, for `restore` when a pass is run again (the
        half-precision recomputation must not feed the same frames twice)."""
        return copy.deepcopy(self._aligners), self.states

    def restore(self, saved: tuple[dict[str, Aligner], dict[str, AlignmentState]]) -> None:
        self._aligners, self.states = saved
