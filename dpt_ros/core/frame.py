"""What flows through the pipeline: a `Frame` in (host RGB or sensor bytes, its camera
model, its alignment reference), a `FrameResult` out (host arrays ready for messages or
files), the runtime settings between them, and the rule that turns a model output into
metres. Plain records, shared by the node, the offline tools and the alignment code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from dpt_ros.core.geometry import Intrinsics
from dpt_ros.core.image_codec import RawImage
from dpt_ros.core.pointcloud import PackedCloud
from dpt_ros.core.upload import HOST_RGB

if TYPE_CHECKING:
    from dpt_ros.core.alignment import AlignmentState, FrameReference

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
    # costmap filters (`core.cloud_filters`): voxel edge in metres (0 = off), flying-pixel
    # relative jump (0 = off), class names / decimal ids of the segmentation model's labels
    pointcloud_voxel_size: float = 0.0
    pointcloud_edge_threshold: float = 0.0
    pointcloud_include_classes: tuple[str, ...] = ()
    pointcloud_exclude_classes: tuple[str, ...] = ()
    # raw cameras: the models see the image rectified with its camera_info's P, and their
    # outputs are sampled back onto the raw grid (core.rectify); the node's
    # camera.rectify_for_model
    camera_rectify_for_model: bool = True
    # metric alignment to a reference (`core.alignment`); the node's alignment.* parameters
    alignment_mode: str = "off"  # off | scale | scale_shift
    alignment_smoothing_s: float = 0.3
    alignment_max_age_s: float = 2.0
    alignment_min_inliers: int = 50
    alignment_max_residual: float = 0.25
    alignment_gate: float = 0.2
    alignment_extrinsic: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)


@dataclass
class Frame:
    """One camera image and its camera model, if known (`Intrinsics`: projection, plus lens
    distortion for a raw image).

    Either `rgb`, RGB uint8 (H, W, 3) decoded on the host, or `raw`, the camera's own YUV 4:2:2
    or Bayer bytes, which `Pipeline` uploads as they are (1-2 bytes per pixel instead of 3) and
    converts on the model's device (`color_convert`). `Frame(rgb)` and `Frame(rgb, intr)` keep
    working for every caller that already has RGB.

    For alignment: `camera` names the aligner whose state the frame uses and updates,
    `stamp` (seconds) orders frames in time (None: the frame stands alone, fitted to its
    own reference only), `reference` is the metric reference paired with it, if any.
    """

    rgb: np.ndarray | None = None
    intrinsics: Intrinsics | None = None
    raw: RawImage | None = None
    camera: str = ""
    stamp: float | None = None
    reference: FrameReference | None = None

    def __post_init__(self) -> None:
        if (self.rgb is None) == (self.raw is None):
            raise ValueError("a Frame holds exactly one of rgb (host RGB) or raw (sensor bytes)")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        if self.raw is not None:
            return self.raw.height, self.raw.width
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    @property
    def pixels(self) -> np.ndarray:
        """The host bytes that travel to the device: RGB (H, W, 3) or sensor rows (H, W*bpp)."""
        return self.rgb if self.raw is None else self.raw.rows

    @property
    def encoding(self) -> str:
        """'rgb8' for host RGB, else the sensor encoding converted on the device."""
        return HOST_RGB if self.raw is None else self.raw.encoding


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
    alignment: AlignmentState | None = None  # this frame's, when alignment is on
    prompted: bool = False  # Prompt Depth Anything: the frame had a prompt (metric depth)
    timings: dict[str, float] = field(default_factory=dict)


def metric_depth(pred: torch.Tensor, model_is_metric: bool, scale: float,
                 shift: float) -> torch.Tensor:
    """Metres from a model output, NaN where invalid (REP 118).

    A metric model's output is metres already. A relative model predicts inverse depth up to
    an affine ambiguity; `depth = 1 / (scale * pred + shift)` with a calibrated scale/shift.
    """
    if model_is_metric:
        depth = pred
    else:
        inv = pred * scale + shift
        depth = torch.where(inv > 0, 1.0 / inv.clamp_min(1e-12), torch.nan)
    return torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.nan)


