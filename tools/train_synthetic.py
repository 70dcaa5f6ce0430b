#!/usr/bin/env python3
"""Train the two small shipped checkpoints (metric depth + segmentation) on the synthetic world.

Reproducible: every batch is rendered on the fly from seeds drawn by one seeded generator
(world seeds below HELD_OUT_SEED only; evaluation uses seeds from HELD_OUT_SEED up), the
models start from seeded random weights, and torch runs deterministic CPU kernels. Frames are
rendered at 320x240 and go through the checkpoint's own `DPTImageProcessor` exactly as a
camera frame does at inference; losses are computed at the rendered resolution.

    nice -n 10 python tools/train_synthetic.py --out /tmp/run --state /tmp/run/state.pt

Both models are trained at every step, each with its own loss (tools/train_losses.py) and
gradient clipping, one AdamW; learning rate: linear warm-up, constant, cosine decay over the
last --decay steps. `--state` keeps the optimiser, model and data-generator state at every
checkpoint, so an interrupted run resumes where it stopped and still ends with the same
weights; a run stopped (--stop-at) before its decay can be finished with a different
--steps. Checkpoints (Hugging Face layout: config.json, model.safetensors,
preprocessor_config.json, training_log.json) go to <out>/synthetic-depth and
<out>/synthetic-seg every --save-every steps.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from train_data import HELD_OUT_SEED, SyntheticBatches
from train_losses import depth_loss, seg_loss

from dpt_ros.model import DPTConfig, DPTForDepthEstimation, DPTForSemanticSegmentation, save_model
from dpt_ros.model.dpt.image_processing import DPTImageProcessor
from dpt_ros.synthetic import CLASS_NAMES

RENDER_SIZE = (240, 320)  # (H, W) rendered; the processor resizes to the model input
LOVASZ_SIZE = (120, 160)  # the Lovász sort runs on every second pixel (a quarter of the cost)
HFOV_DEG = 70.0
CLASS_WEIGHTS = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]  # floor, wall, ceiling, box, sphere, cylinder

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

VIT = {  # the plain-ViT DPT of the first shipped checkpoints (kept for comparison runs)
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

# DPT-Hybrid in miniature: a 3-stage BiT gives the neck real 1/4 and 1/8 image features (the
# plain ViT's finest input is its 16-pixel patch grid, which is why its edges were soft), and
# its 1/16 map becomes the ViT's tokens.
HYBRID = {
    **VIT,
    "is_hybrid": True,
    "backbone_out_indices": [0, 1, 2, 3],  # first two stand for the BiT stages
    "neck_hidden_sizes": [64, 128, 128, 128],
    "backbone_featmap_shape": [1, 256, 12, 16],
    "backbone_config": {
        "model_type": "bit",
        "layer_type": "bottleneck",
        "global_padding": "same",
        "embedding_dynamic_padding": True,
        "embedding_size": 32,
        "hidden_sizes": [64, 128, 256],
        "depths": [1, 1, 1],
        "num_groups": 8,
        "out_features": ["stage1", "stage2", "stage3"],
    },
}
ARCHS = {"vit": VIT, "hybrid": HYBRID}


def depth_config(arch: str) -> dict:
    return {**ARCHS[arch], "architectures": ["DPTForDepthEstimation"],
            "depth_estimation_type": "metric"}


def seg_config(arch: str) -> dict:
    labels = {str(k): v for k, v in CLASS_NAMES.items()}
    return {**ARCHS[arch], "architectures": ["DPTForSemanticSegmentation"],
            "id2label": labels, "label2id": {v: int(k) for k, v in labels.items()},
            "use_auxiliary_head": False, "semantic_loss_ignore_index": 255}


def lr_at(step: int, steps: int, base: float, warmup: int, decay: int) -> float:
    """Linear warm-up, then constant, then cosine down to 2 % over the last `decay` steps
    (warm-up / stable / decay: the stable part does not depend on `steps`, so a run can be
    stopped there and finished later with any length, giving the same weights as a run
    started with that length)."""
    if step < warmup:
        return base * (step + 1) / warmup
    start = steps - decay
    if step < start:
        return base
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (step - start) / decay)))


class Trainer:
    """Both models, their optimiser and the data stream; one `step` = one batch for each."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        torch.manual_seed(args.seed)
        self.processor = DPTImageProcessor.from_dict(PROCESSOR)
        self.depth = DPTForDepthEstimation(DPTConfig.from_dict(depth_config(args.arch))).train()
        self.seg = DPTForSemanticSegmentation(DPTConfig.from_dict(seg_config(args.arch))).train()
        with torch.no_grad():  # start the ReLU head near a typical room depth, not at zero
            dict(self.depth.named_parameters())["head.head.4.bias"].fill_(3.0)
        params = list(self.depth.parameters()) + list(self.seg.parameters())
        self.opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
        self.data = SyntheticBatches(args.seed, args.batch, RENDER_SIZE, HFOV_DEG,
                                     balanced=args.balanced, aimed=args.aimed)
        self.weight = torch.tensor(CLASS_WEIGHTS, dtype=torch.float32)
        self.step = 0
        self.log: list[dict] = []

    def train_step(self) -> tuple[float, float]:
        a = self.args
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, a.steps, a.lr, a.warmup, a.decay)
        rgb, depth, labels = next(self.data)
        x = self.processor.preprocess(rgb)
        gt_depth, gt_labels = torch.from_numpy(depth), torch.from_numpy(labels).long()
        pred = self.depth(pixel_values=x).predicted_depth
        pred = F.interpolate(pred[:, None], size=RENDER_SIZE, mode="bilinear",
                             align_corners=False)[:, 0]
        l_depth = depth_loss(pred, gt_depth, a.grad_weight)
        logits = self.seg(pixel_values=x).logits
        full = F.interpolate(logits, size=RENDER_SIZE, mode="bilinear", align_corners=False)
        half = F.interpolate(logits, size=LOVASZ_SIZE, mode="bilinear", align_corners=False)
        l_seg = seg_loss(full, gt_labels, self.weight, half, gt_labels[:, ::2, ::2],
                         a.lovasz_weight)
        self.opt.zero_grad(set_to_none=True)
        (l_depth + l_seg).backward()
        torch.nn.utils.clip_grad_norm_(self.depth.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(self.seg.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        return l_depth.item(), l_seg.item()

    def save(self, minutes: float) -> None:
        """Both checkpoints (HF layout) with the processor config and the recipe + loss curve;
        the resumable state too when --state is given."""
        a = self.args
        meta = {"steps": self.step, "of_steps": a.steps, "recipe": recipe(a),
                "render_size": RENDER_SIZE, "hfov_deg": HFOV_DEG,
                "class_weights": CLASS_WEIGHTS, "minutes": round(minutes, 1),
                "loss_curve": self.log}
        for name, model in (("synthetic-depth", self.depth), ("synthetic-seg", self.seg)):
            out = a.out / name
            save_model(model.eval(), out)
            model.train()
            (out / "preprocessor_config.json").write_text(json.dumps(PROCESSOR, indent=2) + "\n")
            (out / "training_log.json").write_text(json.dumps(meta, indent=1) + "\n")
        if a.state:
            torch.save({"step": self.step, "depth": self.depth.state_dict(),
                        "seg": self.seg.state_dict(), "opt": self.opt.state_dict(),
                        "torch_rng": torch.get_rng_state(), "data_rng": self.data.state(),
                        "log": self.log, "minutes": minutes}, a.state)

    def resume(self) -> float:
        """Continue from --state if it exists; returns the minutes already spent."""
        a = self.args
        if not (a.state and a.state.is_file()):
            return 0.0
        s = torch.load(a.state, weights_only=True)
        self.depth.load_state_dict(s["depth"])
        self.seg.load_state_dict(s["seg"])
        self.opt.load_state_dict(s["opt"])
        torch.set_rng_state(s["torch_rng"])
        self.data.restore(s["data_rng"])
        self.step, self.log = s["step"], s["log"]
        print(f"resumed at step {self.step}", flush=True)
        return float(s["minutes"])


def recipe(a: argparse.Namespace) -> dict:
    keys = ("arch", "steps", "batch", "lr", "warmup", "decay", "seed", "balanced", "aimed",
            "grad_weight", "lovasz_weight", "threads")
    return {k: getattr(a, k) for k in keys} | {"held_out_seed": HELD_OUT_SEED}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("dpt_ros/weights"))
    ap.add_argument("--state", type=Path, default=None, help="resumable training state file")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="hybrid")
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--decay", type=int, default=2000, help="steps of the final cosine decay")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--balanced", type=float, default=0.5, help="share of balanced worlds")
    ap.add_argument("--aimed", type=float, default=0.4, help="share of object-aimed frames")
    ap.add_argument("--grad-weight", type=float, default=0.5, help="gradient-matching weight")
    ap.add_argument("--lovasz-weight", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--stop-at", type=int, default=None,
                    help="save and stop at this step (resume later with the same --state)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    trainer = Trainer(args)
    spent = trainer.resume()
    t0 = time.time() - spent * 60
    acc = [0.0, 0.0, 0]
    stop = min(args.steps, args.stop_at or args.steps)
    while trainer.step < stop:
        l_depth, l_seg = trainer.train_step()
        acc = [acc[0] + l_depth, acc[1] + l_seg, acc[2] + 1]
        step = trainer.step
        if step % args.log_every == 0 or step == args.steps:
            row = {"step": step, "depth_loss": round(acc[0] / acc[2], 4),
                   "seg_loss": round(acc[1] / acc[2], 4),
                   "lr": round(lr_at(step - 1, args.steps, args.lr, args.warmup, args.decay),
                               6),
                   "minutes": round((time.time() - t0) / 60, 2)}
            trainer.log.append(row)
            acc = [0.0, 0.0, 0]
            print(json.dumps(row), flush=True)
        if step % args.save_every == 0 or step == stop:
            trainer.save((time.time() - t0) / 60)
            print(f"saved step {step} to {args.out}", flush=True)


if __name__ == "__main__":
    main()
