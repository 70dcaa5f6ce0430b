"""The words the parameters may take, in one torch-free home.

`dpt_ros.core` checks its arguments against these same tuples (the sync modes in
`core.camera.sync`, compile modes in `core.pipeline.model_task`, alignment modes in
`core.alignment`, output names in `core.pipeline.outputs`), and the parameter table offers
them as choices, so a parameter and the code it drives cannot disagree."""

from __future__ import annotations

# How an image finds its camera_info (`sync.mode`, core.camera.sync.CameraInfoSync)
SYNC_MODES = ("exact", "approximate", "latest")

# torch.compile modes (`compile`, core.pipeline.model_task); "none" = eager
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")

# Metric alignment (`alignment.mode`, core.alignment): "off" first, then the fitted models
ALIGNMENT_MODES = ("off", "scale", "scale_shift")

# Depth colour maps (`colormap`, core.render.colormap)
COLORMAPS = ("turbo", "inferno", "viridis")

# Everything the pipeline can produce (`publish.<output>`, core.pipeline.outputs)
OUTPUTS = frozenset(
    {"depth", "relative", "depth_colorized", "segmentation", "seg_colorized", "overlay", "points"}
)

# Input frames with more pixels are rejected from their header (`input.max_pixels`)
DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: above any robot camera, far below a bomb's gigapixels
