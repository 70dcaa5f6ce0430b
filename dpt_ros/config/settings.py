"""The records the parameters become, torch-free: `PipelineSettings` (the node's dynamic
parameters, what `Pipeline` post-processing reads), `DecodeOptions` (`input.*`: how frames
are read) and the `alignment.extrinsic` rule ([x, y, z, qx, qy, qz, qw] → translation and a
unit quaternion). `dpt_ros.core` uses these records as they are."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dpt_ros.config.vocabulary import DEFAULT_MAX_PIXELS

IDENTITY_EXTRINSIC = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)


@dataclass
class PipelineSettings:
    """Runtime-changeable post-processing options (the node's dynamic parameters)."""

    depth_scale: float = 0.0  # relative models: metric = 1 / (scale * pred + shift); 0 = unset
    depth_shift: float = 0.0
    # models with a sky head (Depth Anything 3): keep sky pixels in depth / points instead of
    # NaN ("no return", REP 118)
    depth_keep_sky: bool = False
    colormap: str = "turbo"  # turbo | inferno | viridis
    depth_min: float = 0.0  # fixed colour range in metres (or model units); 0,0 = robust
    depth_max: float = 0.0
    percentiles: tuple[float, float] = (2.0, 98.0)
    output_resolution: str = "input"  # input | model
    overlay_alpha: float = 0.5
    pointcloud_stride: int = 1  # 1 = organised H x W cloud; > 1 = subsampled, unorganised
    pointcloud_min_range: float = 0.0
    pointcloud_max_range: float = 0.0  # 0 = no limit
    pointcloud_color: bool = True
    pointcloud_label: bool = True
    # costmap filters (`core.pointcloud.filters`): voxel edge in metres (0 = off),
    # flying-pixel relative jump (0 = off), class names / decimal ids of the segmentation
    # model's labels
    pointcloud_voxel_size: float = 0.0
    pointcloud_edge_threshold: float = 0.0
    pointcloud_include_classes: tuple[str, ...] = ()
    pointcloud_exclude_classes: tuple[str, ...] = ()
    # raw cameras: the models see the image rectified with its camera_info's P, and their
    # outputs are sampled back onto the raw grid (core.camera.rectify); the node's
    # camera.rectify_for_model
    camera_rectify_for_model: bool = True
    # metric alignment to a reference (`core.alignment`); the node's alignment.* parameters
    alignment_mode: str = "off"  # off | scale | scale_shift
    alignment_smoothing_s: float = 0.3
    alignment_max_age_s: float = 2.0
    alignment_min_inliers: int = 50
    alignment_max_residual: float = 0.25
    alignment_gate: float = 0.2
    alignment_extrinsic: tuple[float, ...] = IDENTITY_EXTRINSIC


@dataclass(frozen=True)
class DecodeOptions:
    """How to read what the cameras send (the node's `input.*` parameters)."""

    bits: int = 16  # significant bits of 16-bit grey samples (10, 12, ... 16)
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger frames are rejected before decoding


DEFAULT_DECODE = DecodeOptions()


def parse_extrinsic(values: Sequence[float]
                    ) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """[x, y, z, qx, qy, qz, qw] → (translation, unit quaternion x, y, z, w).

    A non-unit quaternion is normalised; a wrong length, a non-finite number or a zero
    quaternion is a ValueError (the parameter check and `core.alignment.Extrinsic` share it).
    """
    values = [float(v) for v in values]
    if len(values) != 7 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"an extrinsic is [x, y, z, qx, qy, qz, qw] (7 finite numbers), "
                         f"got {values}")
    q = np.asarray(values[3:], dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if norm < 1e-9:
        raise ValueError(f"extrinsic quaternion {values[3:]} has zero length")
    x, y, z, w = (q / norm).tolist()
    return (values[0], values[1], values[2]), (x, y, z, w)
