"""Synthetic end to end for metric alignment (no ROS): a relative prediction aligned to the
simulated ToF / LiDAR against the metric model it came from, on the same frames.

The relative prediction is the shipped metric checkpoint's output (model grid) turned into
inverse depth with an unknown per-sequence affine and per-pixel noise,
r = (a / z_model + b) (1 + noise), as a relative model would give it. Per frame: the
reference becomes samples on the model grid (`core.alignment`), the `Aligner` fits and
filters, and (s, t) are applied to the prediction resized to the camera image, as the
pipeline resizes. Scored against the renderer's exact depth: AbsRel / delta1
(`metrics.depth_metrics`) and `metrics.flicker` between consecutive frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dpt_ros.core.alignment import (
    Aligner,
    ReferenceSamples,
    samples_from_depth_image,
    samples_from_points,
)
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.model import load_model, load_processor
from dpt_ros.model.image_processing_utils import resize_maps
from dpt_ros.synthetic.camera_path import path_pose
from dpt_ros.synthetic.metrics import depth_metrics, flicker
from dpt_ros.synthetic.render import Renderer, SyntheticFrame
from dpt_ros.synthetic.sensors import Lidar, LidarScan, ToFCamera, ToFFrame
from dpt_ros.synthetic.world import make_world

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "synthetic-depth"
Sensor = ToFCamera | Lidar


def default_sensors(camera: Intrinsics) -> dict[str, Sensor]:
    return {"tof": ToFCamera(camera), "lidar": Lidar()}


@dataclass
class Sequence:
    """Rendered frames of one world, each sensor's captures, and the model outputs."""

    frames: list[SyntheticFrame]
    stamps: list[float]
    captures: dict[str, list[ToFFrame | LidarScan]]
    metric_grid: list[torch.Tensor]  # (h, w) model-grid metric prediction
    relative_grid: list[torch.Tensor]  # the same as relative inverse depth
    affine: tuple[float, float]  # (a, b): r = a / z + b, unknown to the aligner


@dataclass
class Scores:
    abs_rel: float
    delta1: float
    valid: float  # fraction of ground-truth pixels with a published depth
    flicker_rel: float
    flicker_m: float
    fits: dict[str, int] = field(default_factory=dict)


def render_sequence(seed: int, frames: int, rate: float = 10.0, width: int = 640,
                    height: int = 480, hfov: float = 70.0, model_dir: Path = WEIGHTS,
                    noise: float = 0.005, sensors: dict[str, Sensor] | None = None
                    ) -> Sequence:
    """`frames` frames of world `seed` at `rate` Hz along its camera path."""
    world = make_world(seed)
    renderer = Renderer.from_hfov(width, height, hfov)
    sensors = default_sensors(renderer.intrinsics) if sensors is None else sensors
    model, processor = load_model(model_dir), load_processor(model_dir)
    rng = np.random.default_rng(seed)
    a, b = float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.05, 0.3))
    gen = torch.Generator().manual_seed(seed)
    seq = Sequence([], [], {name: [] for name in sensors}, [], [], (a, b))
    for k in range(frames):
        stamp = k / rate
        frame = renderer.render(world, path_pose(world, stamp))
        with torch.inference_mode():
            pred = model(processor.preprocess(frame.rgb)).predicted_depth[0].float()
        relative = a / pred.clamp_min(0.05) + b
        relative = relative * (1 + noise * torch.randn(relative.shape, generator=gen))
        seq.frames.append(frame)
        seq.stamps.append(stamp)
        seq.metric_grid.append(pred)
        seq.relative_grid.append(relative)
        for i, (name, sensor) in enumerate(sensors.items()):
            seq.captures[name].append(sensor.capture(world, frame.pose, (seed, k, i)))
    return seq


def reference_samples(capture: ToFFrame | LidarScan, camera: Intrinsics,
                      grid: tuple[int, int]) -> ReferenceSamples:
    """A capture as samples on an (H, W) prediction grid of the camera `camera`."""
    if isinstance(capture, ToFFrame):
        return samples_from_depth_image(torch.from_numpy(capture.depth), grid)
    return samples_from_points(capture.points, camera.scaled(grid[1], grid[0]),
                               capture.extrinsic)


def _to_image(grid: torch.Tensor, frame: SyntheticFrame) -> torch.Tensor:
    return resize_maps(grid[None, None], frame.depth.shape, "bicubic")[0, 0]


def _score(seq: Sequence, depths: list[np.ndarray | None], fits: dict[str, int]) -> Scores:
    gts = np.stack([f.depth for f in seq.frames])
    preds = np.stack([np.full(f.depth.shape, np.nan, np.float32) if d is None else d
                      for d, f in zip(depths, seq.frames)])
    m = depth_metrics(preds, gts)
    flick = [flicker(preds[k - 1], preds[k], gts[k - 1], gts[k], seq.frames[k - 1].pose,
                     seq.frames[k].pose, seq.frames[k].intrinsics)
             for k in range(1, len(depths)) if depths[k] is not None and depths[k - 1] is not None]
    flick = [f for f in flick if f["pixels"] > 0]
    rel = float(np.mean([f["rel"] for f in flick])) if flick else float("nan")
    absm = float(np.mean([f["abs_m"] for f in flick])) if flick else float("nan")
    return Scores(m["abs_rel"], m["delta1"], m["valid"], rel, absm, fits)


def score_metric_model(seq: Sequence) -> Scores:
    depths = [_to_image(p, f).clamp_min(0).numpy() for p, f in zip(seq.metric_grid, seq.frames)]
    return _score(seq, depths, {})


def score_alignment(seq: Sequence, reference: str, mode: str = "scale_shift",
                    smoothing_s: float = 0.3, **aligner_kwargs) -> Scores:
    """Align the relative prediction to the captures of sensor `reference`, frame by frame."""
    aligner = Aligner(mode, model_is_metric=False, smoothing_s=smoothing_s, **aligner_kwargs)
    depths: list[np.ndarray | None] = []
    for k, frame in enumerate(seq.frames):
        grid = seq.relative_grid[k]
        samples = reference_samples(seq.captures[reference][k], frame.intrinsics,
                                    tuple(grid.shape))
        aligner.update(grid, samples, seq.stamps[k])
        depth = aligner.apply(_to_image(grid, frame), seq.stamps[k])
        depths.append(None if depth is None else depth.numpy())
    state = aligner.state(seq.stamps[-1])
    return _score(seq, depths, {"accepted": state.accepted, "rejected": state.rejected,
                                "gated": state.gated})
