"""Held-out evaluation of depth / segmentation checkpoints, through the one core pipeline.

Frames of held-out worlds (seeds from HELD_OUT_SEED up, never trained on) go through
`dpt_ros.core.Pipeline` exactly as `dpt_node` runs them (processor, model, bicubic depth and
bilinear-logits argmax back to the camera size) and are scored with `metrics.Scores`, the
same accumulator the demo uses. `model_fps` times one model alone the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline
from dpt_ros.synthetic.camera_path import LOOP_SECONDS, path_pose
from dpt_ros.synthetic.classes import CLASS_NAMES
from dpt_ros.synthetic.metrics import Scores
from dpt_ros.synthetic.render import Renderer, SyntheticFrame
from dpt_ros.synthetic.world import HELD_OUT_SEED, make_world

# What the node computes for the demo's subscriptions, per model.
DEPTH_OUTPUTS = frozenset({"depth", "points"})
SEG_OUTPUTS = frozenset({"segmentation", "overlay"})


def held_out_frames(worlds: int, frames: int, width: int = 640, height: int = 480,
                    hfov: float = 70.0) -> Iterator[tuple[int, SyntheticFrame]]:
    """(world seed, frame) for `frames` evenly spaced path times in each of `worlds` worlds."""
    renderer = Renderer.from_hfov(width, height, hfov)
    for w in range(worlds):
        world = make_world(HELD_OUT_SEED + w)
        for k in range(frames):
            yield world.seed, renderer.render(world, path_pose(world, LOOP_SECONDS * k / frames))


def evaluate(depth_model: str, segmentation_model: str, worlds: int = 10, frames: int = 8,
             width: int = 640, height: int = 480, device: str = "cpu") -> dict:
    """Depth (AbsRel, RMSE, δ<1.25: means over frames) and segmentation (per-class IoU and
    mIoU over one pooled confusion matrix) on `worlds` x `frames` held-out frames."""
    pipeline = Pipeline(depth_model=depth_model, segmentation_model=segmentation_model,
                        device=device)
    scores = Scores(CLASS_NAMES)
    per_world: dict[int, list[float]] = {}
    for seed, f in held_out_frames(worlds, frames, width, height):
        result = pipeline.process([Frame(f.rgb, f.intrinsics)], {"depth", "segmentation"})[0]
        d = scores.add_depth(result.depth, f.depth)
        scores.add_labels(result.segmentation, f.labels)
        per_world.setdefault(seed, []).append(d["abs_rel"])
    out = scores.summary()
    out["abs_rel_per_world"] = [round(float(np.mean(v)), 4) for v in per_world.values()]
    out["frames"] = len(scores.depth)
    out["size"] = [width, height]
    return out


def model_fps(model: str, task: str, images: list[np.ndarray], repeats: int = 3,
              device: str = "cpu") -> float:
    """Frames per second of one model alone (`task` 'depth' or 'segmentation') through the
    pipeline, with the outputs the node computes for the demo; median of the per-frame
    times over `repeats` passes over `images` after one warm-up pass."""
    depth = task == "depth"
    pipeline = Pipeline(depth_model=model if depth else "",
                        segmentation_model="" if depth else model, device=device)
    want = set(DEPTH_OUTPUTS if depth else SEG_OUTPUTS)
    frames = [Frame(img, Intrinsics.from_hfov(img.shape[1], img.shape[0], 70.0))
              for img in images]
    for f in frames:
        pipeline.process([f], want)
    times = []
    for _ in range(repeats):
        for f in frames:
            t0 = time.perf_counter()
            pipeline.process([f], want)
            times.append(time.perf_counter() - t0)
    return 1.0 / float(np.median(times))
