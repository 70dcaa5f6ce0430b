"""Per-frame cost of metric alignment (core.alignment) on the CPU, against a plain
(non-robust) least-squares fit of the same samples in the same run.

Prediction 640x480 (the fit can run on any grid; this is the largest the node would use),
references: a registered depth image with 5 % of its pixels valid (15 360 samples), and a
scan of the default simulated LiDAR (32 rings x 1024 columns, ~6 300 samples after the
field of view and the z-buffer) through the extrinsic.

Run: `python benchmarks/bench_alignment.py [--repeat N] [--threads 1 2]`.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dpt_ros.core.alignment import (  # noqa: E402
    Aligner,
    depth_in_metres,
    sample_prediction,
    samples_from_depth_image,
    samples_from_points,
)
from dpt_ros.synthetic import Renderer, make_world, path_pose  # noqa: E402
from dpt_ros.synthetic.sensors import Lidar  # noqa: E402

W, H = 640, 480


def _timed(fn, repeat: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    world = make_world(1_000_001)
    frame = Renderer.from_hfov(W, H).render(world, path_pose(world, 3.0))
    truth = torch.from_numpy(frame.depth)
    rng = np.random.default_rng(0)
    mm = np.where(rng.random((H, W)) < 0.05, np.round(frame.depth * 1000), 0).astype(np.uint16)
    pred = 0.8 / truth + 0.1  # relative inverse depth
    scan = Lidar().capture(world, frame.pose, 0)
    depth = depth_in_metres(mm, "16UC1")
    samples = samples_from_depth_image(depth, (H, W))
    lidar = samples_from_points(scan.points, frame.intrinsics, scan.extrinsic)
    aligner = Aligner("scale_shift", model_is_metric=False)
    x = sample_prediction(pred, samples)
    y = (1.0 / samples.z).double()
    design = torch.stack([x.double(), torch.ones_like(y)], 1)
    steps = {
        "16UC1 → metres (640×480)": lambda: depth_in_metres(mm, "16UC1"),
        "depth image → samples (5 %: 15 360)": lambda: samples_from_depth_image(depth, (H, W)),
        "robust fit, depth-image samples": lambda: aligner.fit(pred, samples),
        "baseline: plain lstsq, same samples": lambda: torch.linalg.lstsq(design, y[:, None]),
        f"LiDAR → samples ({len(scan.points)} points)": lambda: samples_from_points(
            scan.points, frame.intrinsics, scan.extrinsic),
        f"robust fit, LiDAR samples ({len(lidar)})": lambda: aligner.fit(pred, lidar),
        "update (fit + filter), depth image": lambda: aligner.update(pred, samples, 0.0),
        "apply to 640×480": lambda: aligner.apply(pred, 0.0),
    }
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| step | threads | ms (median) | ms (min) |")
    print("|---|---:|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, fn in steps.items():
            med, best = _timed(fn, args.repeat)
            print(f"| {name} | {threads} | {med:.2f} | {best:.2f} |")
    print(f"<!-- state: {aligner.state(0.0)} -->")


if __name__ == "__main__":
    main()
