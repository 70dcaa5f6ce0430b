#!/usr/bin/env python3
"""Evaluate the shipped synthetic checkpoints on held-out worlds (seeds never trained on).

Frames are rendered at the camera's 640x480 and go through the same steps as at inference:
the checkpoint's processor, the model, then post-processing back to 640x480 (bicubic depth,
bilinear logits → argmax). Reports AbsRel, RMSE, δ<1.25 (depth) and mIoU (segmentation).

    python tools/eval_synthetic.py [--worlds 10 --frames 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from dpt_ros.model import load_model, load_processor
from dpt_ros.synthetic import CLASS_NAMES, NUM_CLASSES, Renderer, make_world, path_pose
from dpt_ros.synthetic.camera_path import LOOP_SECONDS
from dpt_ros.synthetic.metrics import confusion, depth_metrics, iou_per_class, mean_iou

HELD_OUT_SEED = 1_000_000
WEIGHTS = Path(__file__).resolve().parents[1] / "dpt_ros" / "weights"


def evaluate(depth_dir: Path, seg_dir: Path, worlds: int, frames: int, width: int = 640,
             height: int = 480, hfov: float = 70.0) -> dict:
    """Metrics pooled over `worlds` x `frames` held-out frames."""
    depth_model, seg_model = load_model(depth_dir), load_model(seg_dir)
    dproc, sproc = load_processor(depth_dir), load_processor(seg_dir)
    renderer = Renderer.from_hfov(width, height, hfov)
    preds, gts, per_world = [], [], []
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for w in range(worlds):
        world = make_world(HELD_OUT_SEED + w)
        for k in range(frames):
            f = renderer.render(world, path_pose(world, LOOP_SECONDS * k / frames))
            with torch.inference_mode():
                d = depth_model(pixel_values=dproc.preprocess(f.rgb))
                depth = dproc.post_process_depth_estimation(d, [(height, width)])[0]
                s = seg_model(pixel_values=sproc.preprocess(f.rgb))
                labels = sproc.post_process_semantic_segmentation(s, [(height, width)])[0]
            preds.append(depth["predicted_depth"].numpy()[::2, ::2])
            gts.append(f.depth[::2, ::2])
            conf += confusion(labels.numpy(), f.labels, NUM_CLASSES)
        world_metrics = depth_metrics(np.stack(preds[-frames:]), np.stack(gts[-frames:]))
        per_world.append(round(world_metrics["abs_rel"], 4))
    result = depth_metrics(np.stack(preds), np.stack(gts))
    result.pop("valid")
    iou = iou_per_class(conf)
    result["miou"] = mean_iou(conf)
    result["iou"] = {CLASS_NAMES[c]: round(float(v), 4) for c, v in enumerate(iou)}
    result["abs_rel_per_world"] = per_world
    result["frames"] = worlds * frames
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth-model", type=Path, default=WEIGHTS / "synthetic-depth")
    ap.add_argument("--seg-model", type=Path, default=WEIGHTS / "synthetic-seg")
    ap.add_argument("--worlds", type=int, default=10)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    result = evaluate(args.depth_model, args.seg_model, args.worlds, args.frames)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
