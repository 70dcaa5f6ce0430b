"""`python -m dpt_ros.demo --out demo_out [--frames N]`: the whole pipeline on this machine.

Starts `dpt_node` (with the shipped synthetic weights) and, once the node has loaded its
models, `synthetic_camera` as separate processes on a private DDS domain; listens to the
node's outputs and the camera's ground truth, and writes `<out>/grid.png` (input, predicted
and ground-truth depth on one scale in metres, relative-error map, predicted and true
classes, point cloud by class seen from beside the camera; colour bars, class legend with
IoU, the run's figures) and `<out>/summary.json` (frames, frames/s over DDS and of each model
alone, latency p50/p95, depth AbsRel/RMSE/δ<1.25, per-class IoU and mIoU against ground
truth, median distance of the published points to the true scene surfaces). Child logs go
to `<out>/logs/`. Processes are always stopped, also on errors, Ctrl-C and SIGTERM.

One job a module, read in this order:
  cli.py        the command line and the run: start, collect, score, write, stop
  processes.py  the two child processes (command lines, logs, stopping them)
  collect.py    the DDS listener: ground truth and outputs grouped by stamp, until N frames
  scoring.py    messages → arrays (dpt_ros.messages) → the summary figures
  picture.py    the kept frames → grid.png
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # dpt_ros/
WEIGHTS = PACKAGE_DIR / "weights"
CAMERA_NS = "/camera"
NODE = "/dpt_node"
GT_TOPICS = ("image_raw", "depth_gt", "labels_gt", "pose")
OUT_TOPICS = ("depth/image", "segmentation/image", "segmentation_overlay/image", "points")
# A held-out world chosen by its ground truth alone (not by any model's score): all six
# classes are in view from the first frame of its camera path on (docs/synthetic.md).
DEMO_SEED = 1_000_291


class DemoError(RuntimeError):
    """A failure the user can act on (a child died, nothing arrived in time)."""
