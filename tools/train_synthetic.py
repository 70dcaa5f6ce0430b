#!/usr/bin/env python3
"""Train the two tiny shipped checkpoints (metric depth + segmentation) on the synthetic world.

Reproducible: every batch is rendered on the fly from seeds drawn by one seeded generator
(world seeds below HELD_OUT_SEED only; evaluation uses seeds from HELD_OUT_SEED up), the
models start from seeded random weights, and torch runs deterministic CPU kernels. Frames are
rendered at 320x240 and go through the checkpoint's own `DPTImageProcessor` exactly as a
camera frame does at inference; losses are computed at the rendered resolution.

    python tools/train_synthetic.py --steps 700 --out dpt_ros/weights
    python tools/train_synthetic.py --finetune-seg --steps 400 --lr 5e-4 --out dpt_ros/weights

Depth: DPTForDepthEstimation (ReLU head, metres; config `depth_estimation_type: metric`)
trained with scale-invariant log loss + absolute-relative L1. Segmentation:
DPTForSemanticSegmentation over the 6 synthetic classes, cross-entropy (stage 1, every
second step), then alone with the object classes weighted (stage 2, `--finetune-seg`).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dpt_ros.model import (
    DPTConfig,
    DPTForDepthEstimation,
    DPTForSemanticSegmentation,
    load_model,
    save_model,
)
from dpt_ros.model.processing import DPTImageProcessor
from dpt_ros.synthetic import CLASS_NAMES, Renderer, make_world, path_pose
from dpt_ros.synthetic.camera_path import LOOP_SECONDS

HELD_OUT_SEED = 1_000_000  # world seeds >= this are never trained on
RENDER_SIZE = (240, 320)  # (H, W) rendered; the processor resizes to the model input
HFOV_DEG = 70.0
CLASS_WEIGHTS = [1.0, 1.0, 1.0, 3.0, 3.0, 3.0]  # floor, wall, ceiling, box, sphere, cylinder

PROCESSOR = {
    "image_processor_type": "DPTImageProcessor",
    "do_resize": True,
    "size": {"height": 192, "width": 256},
    "keep_aspect_ratio": True,
    "ensure_multiple_of": 32,
    "resample": 3,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "do_pad": False,
}

BACKBONE = {
    "model_type": "dpt",
    "hidden_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 256,
    "hidden_act": "gelu",
    "image_size": 256,
    "patch_size": 16,
    "num_channels": 3,
    "qkv_bias": True,
    "is_hybrid": False,
    "backbone_out_indices": [0, 1, 2, 3],
    "readout_type": "project",
    "reassemble_factors": [4, 2, 1, 0.5],
    "neck_hidden_sizes": [16, 32, 64, 128],
    "fusion_hidden_size": 32,
    "head_in_index": -1,
    "use_batch_norm_in_fusion_residual": False,
    "use_bias_in_fusion_residual": True,
}


def depth_config() -> dict:
    return {**BACKBONE, "architectures": ["DPTForDepthEstimation"],
            "depth_estimation_type": "metric"}


def seg_config() -> dict:
    labels = {str(k): v for k, v in CLASS_NAMES.items()}
    return {**BACKBONE, "architectures": ["DPTForSemanticSegmentation"],
            "id2label": labels, "label2id": {v: int(k) for k, v in labels.items()},
            "use_auxiliary_head": False, "semantic_loss_ignore_index": 255}


class SyntheticBatches:
    """Random frames from random training worlds, anywhere on their camera loop."""

    def __init__(self, seed: int, batch: int):
        self.rng = np.random.default_rng(seed)
        self.batch = batch
        self.renderer = Renderer.from_hfov(RENDER_SIZE[1], RENDER_SIZE[0], HFOV_DEG)

    def __next__(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rgb, depth, labels = [], [], []
        for _ in range(self.batch):
            world = make_world(int(self.rng.integers(0, HELD_OUT_SEED)))
            pose = path_pose(world, float(self.rng.uniform(0, LOOP_SECONDS)),
                             yaw_offset=float(self.rng.uniform(-0.5, 0.5)))
            f = self.renderer.render(world, pose)
            if self.rng.random() < 0.5:  # mirror: a valid frame of the mirrored room
                f.rgb, f.depth, f.labels = f.rgb[:, ::-1], f.depth[:, ::-1], f.labels[:, ::-1]
            rgb.append(f.rgb)
            depth.append(f.depth)
            labels.append(f.labels)
        return np.stack(rgb), np.stack(depth), np.stack(labels)


def depth_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Scale-invariant log loss (lambda 0.85, Eigen et al.) + absolute-relative L1."""
    d = torch.log(pred.clamp_min(1e-3)) - torch.log(gt)
    silog = torch.sqrt((d**2).mean() - 0.85 * d.mean() ** 2 + 1e-8)
    return silog + ((pred - gt).abs() / gt).mean()


def build(config: dict, cls: type) -> torch.nn.Module:
    return cls(DPTConfig.from_dict(config))


def lr_at(step: int, steps: int, base: float, warmup: int = 60) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup))))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("dpt_ros/weights"))
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seg-every", type=int, default=2, help="train segmentation every N steps")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--finetune-seg", action="store_true",
                    help="stage 2: continue <out>/synthetic-seg alone with class-weighted CE")
    args = ap.parse_args(argv)
    if args.finetune_seg:
        finetune_seg(args)
        return

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    processor = DPTImageProcessor.from_dict(PROCESSOR)
    depth_model = build(depth_config(), DPTForDepthEstimation).train()
    seg_model = build(seg_config(), DPTForSemanticSegmentation).train()
    with torch.no_grad():  # start the ReLU head near a typical room depth, not at zero
        dict(depth_model.named_parameters())["head.head.4.bias"].fill_(3.0)
    params = list(depth_model.parameters()) + list(seg_model.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    data = SyntheticBatches(args.seed, args.batch)
    log: list[dict] = []
    acc = {"depth": 0.0, "seg": 0.0, "n": 0, "n_seg": 0}
    t0 = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr)
        rgb, depth, labels = next(data)
        x = processor.preprocess(rgb)
        pred = depth_model(pixel_values=x).predicted_depth
        pred = F.interpolate(pred[:, None], size=RENDER_SIZE, mode="bilinear",
                             align_corners=False)[:, 0]
        loss = l_depth = depth_loss(pred, torch.from_numpy(depth))
        train_seg = step % args.seg_every == 0  # segmentation converges faster than depth
        if train_seg:
            logits = seg_model(pixel_values=x).logits
            logits = F.interpolate(logits, size=RENDER_SIZE, mode="bilinear",
                                   align_corners=False)
            l_seg = F.cross_entropy(logits, torch.from_numpy(labels).long())
            loss = loss + l_seg
            acc["seg"] += l_seg.item()
            acc["n_seg"] += 1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(depth_model.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(seg_model.parameters(), 1.0)
        opt.step()
        acc["depth"] += l_depth.item()
        acc["n"] += 1
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            row = {"step": step + 1, "depth_loss": round(acc["depth"] / acc["n"], 4),
                   "seg_loss": round(acc["seg"] / max(acc["n_seg"], 1), 4),
                   "lr": round(lr_at(step, args.steps, args.lr), 6),
                   "minutes": round((time.time() - t0) / 60, 2)}
            log.append(row)
            acc = {"depth": 0.0, "seg": 0.0, "n": 0, "n_seg": 0}
            print(json.dumps(row), flush=True)
        if (step + 1) % args.save_every == 0 or step + 1 == args.steps:
            save(args, depth_model, seg_model, log, step + 1)
            depth_model.train()
            seg_model.train()


def finetune_seg(args: argparse.Namespace) -> None:
    """Stage 2: the joint stage leaves the small object classes under-fitted (plain CE is
    dominated by floor and walls), so the segmentation model alone gets more steps with the
    object classes weighted x3, fresh AdamW, its own data stream (seed + 1)."""
    torch.manual_seed(args.seed + 1)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    directory = args.out / "synthetic-seg"
    model = load_model(directory).train()
    processor = DPTImageProcessor.from_dict(PROCESSOR)
    weight = torch.tensor(CLASS_WEIGHTS, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    data = SyntheticBatches(args.seed + 1, args.batch)
    curve: list[dict] = []
    total, n, t0 = 0.0, 0, time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, warmup=20)
        rgb, _, labels = next(data)
        logits = model(pixel_values=processor.preprocess(rgb)).logits
        logits = F.interpolate(logits, size=RENDER_SIZE, mode="bilinear", align_corners=False)
        loss = F.cross_entropy(logits, torch.from_numpy(labels).long(), weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        total, n = total + loss.item(), n + 1
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            row = {"step": step + 1, "seg_loss_weighted": round(total / n, 4),
                   "minutes": round((time.time() - t0) / 60, 2)}
            curve.append(row)
            total, n = 0.0, 0
            print(json.dumps(row), flush=True)
    save_model(model.eval(), directory)
    log_path = directory / "training_log.json"
    meta = json.loads(log_path.read_text()) if log_path.is_file() else {}
    meta["finetune"] = {"steps": args.steps, "lr": args.lr, "seed": args.seed + 1,
                        "class_weights": CLASS_WEIGHTS, "loss_curve": curve}
    log_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"saved fine-tuned {directory}", flush=True)


def save(args: argparse.Namespace, depth_model: torch.nn.Module, seg_model: torch.nn.Module,
         log: list[dict], step: int) -> None:
    """Write both checkpoints (HF layout) with the processor config and the loss curve."""
    meta = {"steps": step, "of_steps": args.steps, "seg_every": args.seg_every,
            "batch": args.batch, "lr": args.lr, "seed": args.seed,
            "render_size": RENDER_SIZE, "hfov_deg": HFOV_DEG, "loss_curve": log}
    for name, model in (("synthetic-depth", depth_model), ("synthetic-seg", seg_model)):
        out = args.out / name
        save_model(model.eval(), out)
        (out / "preprocessor_config.json").write_text(json.dumps(PROCESSOR, indent=2) + "\n")
        (out / "training_log.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"saved step {step} to {args.out}", flush=True)


if __name__ == "__main__":
    main()
