#!/usr/bin/env python3
"""Metric alignment end to end in the synthetic world (held-out worlds, no ROS): a relative
prediction (the shipped metric checkpoint's output turned into inverse depth with an unknown
per-sequence affine and per-pixel noise, default 0.5 %) aligned to simulated references,
against the metric model on the same frames. Prints a markdown table (means over worlds)
and writes JSON with the per-world figures.

    python tools/eval_alignment.py [--worlds 5 --frames 60 --rate 30 --noise 0.005] [--json f]

References: `tof` (160x120, 0.2-4 m, 1 % noise, holes, flying pixels), `sparse` (the same
camera returning 1 % of its pixels per frame with 5 % noise, ~190 samples: sparse stereo /
SLAM depth), `lidar` (32 rings, +-22.5 deg, 1024 columns, 2 cm), `lidar16` (16 rings,
+-15 deg, 0.4 deg: a VLP-16, whose narrow band leaves most of the image to extrapolation).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.synthetic.alignment_eval import (
    WEIGHTS,
    render_sequence,
    score_alignment,
    score_metric_model,
)
from dpt_ros.synthetic.sensors import Lidar, LidarSpec, ToFCamera, ToFSpec

HELD_OUT_SEED = 1_000_000
SMOOTHING = (0.0, 0.3, 1.0)


def sensors(camera: Intrinsics) -> dict:
    return {
        "tof": ToFCamera(camera),
        "sparse": ToFCamera(camera, ToFSpec(sparsity=0.01, noise=0.05)),
        "lidar": Lidar(),
        "lidar16": Lidar(LidarSpec(rings=16, elevation_deg=(-15.0, 15.0), azimuth_step_deg=0.4)),
    }


def evaluate(worlds: int, frames: int, rate: float, width: int, height: int,
             model_dir: Path, noise: float) -> dict:
    camera = Intrinsics.from_hfov(width, height, 70.0)
    rows: dict[str, list[dict]] = {}
    for w in range(worlds):
        seq = render_sequence(HELD_OUT_SEED + 1 + w, frames, rate, width, height,
                              model_dir=model_dir, noise=noise, sensors=sensors(camera))
        rows.setdefault("metric model", []).append(asdict(score_metric_model(seq)))
        for ref in seq.captures:
            for smoothing in SMOOTHING:
                key = f"{ref}, smoothing_s {smoothing:g}"
                kwargs = {"min_inliers": 20} if ref == "sparse" else {}
                scores = score_alignment(seq, ref, smoothing_s=smoothing, **kwargs)
                rows.setdefault(key, []).append(asdict(scores))
    return rows


def table(rows: dict[str, list[dict]]) -> str:
    base = np.mean([r["abs_rel"] for r in rows["metric model"]])
    lines = ["| depth | AbsRel | vs metric model | δ<1.25 | valid | flicker (rel) | "
             "flicker (m) | fits accepted / rejected / gated |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for key, rs in rows.items():
        mean = {k: float(np.mean([r[k] for r in rs])) for k in
                ("abs_rel", "delta1", "valid", "flicker_rel", "flicker_m")}
        fits = " / ".join(str(sum(r["fits"].get(k, 0) for r in rs))
                          for k in ("accepted", "rejected", "gated")) if rs[0]["fits"] else "—"
        lines.append(f"| {key} | {mean['abs_rel']:.4f} | {mean['abs_rel'] / base:.3f} | "
                     f"{mean['delta1']:.3f} | {mean['valid']:.3f} | {mean['flicker_rel']:.4f} | "
                     f"{mean['flicker_m']:.4f} | {fits} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worlds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--noise", type=float, default=0.005, help="per-pixel relative noise")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--depth-model", type=Path, default=WEIGHTS)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows = evaluate(args.worlds, args.frames, args.rate, args.width, args.height,
                    args.depth_model, args.noise)
    print(table(rows))
    print(f"\n{args.worlds} worlds x {args.frames} frames at {args.rate:g} Hz, "
          f"{args.width}x{args.height}, noise {args.noise:g}, "
          f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
