"""What flows through the pipeline: a `Frame` in (host RGB or sensor bytes, its camera
model, its alignment reference), a `FrameResult` out (host arrays ready for messages or
files); the runtime settings between them are `config.settings.PipelineSettings`. Plain
records, shared by the node and the offline tools; they import the alignment records
(`core.alignment`), never the other way round (the rule that turns a model output into
metres is `core.alignment.metric`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dpt_ros.core.alignment import AlignmentState, FrameReference
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.codecs.image_codec import RawImage
from dpt_ros.core.codecs.upload import HOST_RGB
from dpt_ros.core.pointcloud.pack import PackedCloud


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

