"""Metric alignment of depth predictions to a depth sensor or LiDAR (no ROS).

`reference` turns a registered depth image or a point cloud into samples on the
prediction's grid, `fit` is the per-frame robust fit, `temporal` the filter that decides what
is applied, `aligner` ties them together for one camera; `frames` is how the pipeline uses
them (a frame's reference, one aligner per camera), `prompt` makes a reference Prompt Depth
Anything's prompt.
"""

from dpt_ros.core.alignment.aligner import Aligner, aligned_depth, sample_prediction
from dpt_ros.core.alignment.fit import MODES, Fit, fit_samples
from dpt_ros.core.alignment.frames import (
    AlignmentConfig,
    CameraAlignments,
    FrameReference,
    state_of_fit,
)
from dpt_ros.core.alignment.reference import (
    DEPTH_ENCODINGS,
    Extrinsic,
    ReferenceSamples,
    depth_in_metres,
    project_points,
    samples_from_depth_image,
    samples_from_points,
)
from dpt_ros.core.alignment.temporal import AlignmentState, TemporalFilter

__all__ = [
    "DEPTH_ENCODINGS",
    "MODES",
    "Aligner",
    "AlignmentConfig",
    "AlignmentState",
    "CameraAlignments",
    "Extrinsic",
    "Fit",
    "FrameReference",
    "ReferenceSamples",
    "TemporalFilter",
    "aligned_depth",
    "depth_in_metres",
    "fit_samples",
    "project_points",
    "sample_prediction",
    "samples_from_depth_image",
    "samples_from_points",
    "state_of_fit",
]
