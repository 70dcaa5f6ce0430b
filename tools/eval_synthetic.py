#!/usr/bin/env python3
"""Evaluate synthetic checkpoints on held-out worlds (seeds never trained on).

Frames are rendered at the camera's 640x480 and go through `dpt_ros.core.Pipeline` exactly
as in `dpt_node`; the figures are computed as the demo computes its own
(`dpt_ros.synthetic.evaluation`, `dpt_ros.synthetic.metrics.Scores`).

    python tools/eval_synthetic.py [--worlds 10 --frames 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dpt_ros.synthetic.evaluation import evaluate

WEIGHTS = Path(__file__).resolve().parents[1] / "dpt_ros" / "weights"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth-model", type=Path, default=WEIGHTS / "synthetic-depth")
    ap.add_argument("--seg-model", type=Path, default=WEIGHTS / "synthetic-seg")
    ap.add_argument("--worlds", type=int, default=10)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = evaluate(str(args.depth_model), str(args.seg_model), args.worlds, args.frames,
                      args.width, args.height)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
