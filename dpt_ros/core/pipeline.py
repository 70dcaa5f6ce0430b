"""The one processing core: RGB frames in, depth / segmentation / point clouds out.

The node, the bag tool and the image CLI all call `Pipeline.process`; nothing else runs a
model. Everything after the host→device upload stays on the model's device until the final
host copy of each requested output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dpt_ros.core.geometry import Intrinsics

OUTPUTS = frozenset(
    {"depth", "relative", "depth_colorized", "segmentation", "seg_colorized", "overlay", "points"}
)


@dataclass
class PipelineSettings:
    """Runtime-changeable post-processing options (the node's dynamic parameters)."""

    depth_scale: float = 0.0  # relative models: metric = 1 / (scale * pred + shift); 0 = unset
    depth_shift: float = 0.0
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


@dataclass
class Frame:
    """One camera image: RGB uint8 (H, W, 3) and the intrinsics of that image, if known."""

    rgb: np.ndarray
    intrinsics: Intrinsics | None = None


@dataclass
class PackedCloud:
    """PointCloud2 payload: `data` is the finished byte buffer (uint8, row_step * height)."""

    data: np.ndarray
    fields: list[tuple[str, int, int]]  # (name, byte offset, PointField datatype)
    height: int
    width: int
    point_step: int
    row_step: int
    is_dense: bool


@dataclass
class FrameResult:
    """Host arrays for one frame; an output is None when it was not asked for or not valid."""

    depth: np.ndarray | None = None  # (h, w) float32 metres, NaN invalid (REP 118)
    relative: np.ndarray | None = None  # (h, w) float32 raw relative model output
    depth_colorized: np.ndarray | None = None  # (h, w, 3) uint8 BGR
    segmentation: np.ndarray | None = None  # (h, w) uint8 (or uint16 when > 256 classes)
    seg_colorized: np.ndarray | None = None  # (h, w, 3) uint8 BGR
    overlay: np.ndarray | None = None  # (h, w, 3) uint8 BGR
    points: PackedCloud | None = None
    intrinsics: Intrinsics | None = None  # of the output images (scaled if resolution differs)
    timings: dict[str, float] = field(default_factory=dict)
