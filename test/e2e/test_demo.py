"""`python -m dpt_ros.demo` (what `make demo-ci` runs), short: it must finish, stop its
children, and write a non-trivial grid and a summary whose figures agree with the frames.
Also: launch/demo.launch.py starts the same executables and topics as the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from _synthetic_util import ROOT, ros_env, unique_domain
from PIL import Image

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros


def _child_pids(stdout: str) -> list[int]:
    """The pids the demo printed ("started dpt_node (pid N)...", "started synthetic_camera
    (pid M)...")."""
    return [int(part.split(")")[0]) for line in stdout.splitlines() if "] started " in line
            for part in line.split("(pid ")[1:]]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_demo_writes_grid_and_summary(tmp_path) -> None:
    from dpt_ros.synthetic import CLASS_NAMES
    from dpt_ros.synthetic.sheet import HEADER

    out = tmp_path / "demo_out"
    domain = unique_domain(37)
    # Generous time-outs: on a loaded machine loading torch and the models can take minutes.
    cmd = [sys.executable, "-m", "dpt_ros.demo", "--out", str(out), "--frames", "3",
           "--width", "320", "--height", "240", "--rate", "4", "--domain-id", str(domain),
           "--timeout", "240", "--stall", "120", "--check-classes"]
    proc = subprocess.run(cmd, env=ros_env(domain), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[demo] frame 3/3" in proc.stdout  # progress is printed while it runs
    # Both children were stopped: the pids the demo started no longer exist (checked by pid:
    # other runs of the demo on this machine may well be alive).
    pids = _child_pids(proc.stdout)
    assert len(pids) == 2 and all(_gone(pid) for pid in pids), pids
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3
    assert summary["fps"] > 0 and 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"]
    assert summary["model_fps"]["depth"] > 0 and summary["model_fps"]["segmentation"] > 0
    # Issue 14's targets (held-out worlds and the demo): AbsRel <= 0.08, delta<1.25 >= 0.93,
    # mIoU >= 0.80 with every class >= 0.50. Measured here (3 frames, 320 x 240, 2026-12-01):
    # AbsRel 0.024-0.029, delta1 1.0, mIoU 0.93-0.94, lowest class cylinder 0.80-0.81.
    assert 0 < summary["depth"]["abs_rel"] <= 0.08
    assert 0.93 <= summary["depth"]["delta1"] <= 1
    # The demo world shows every class from its first frame (--check-classes passed):
    assert set(summary["iou"]) == set(CLASS_NAMES.values())
    assert all(v is not None for v in summary["iou"].values())
    low = {name: v for name, v in summary["iou"].items() if v < 0.5}
    assert not low, low
    assert 0.80 <= summary["miou"] <= 1
    assert 0 <= summary["point_to_surface_median_m"] < 0.5 and summary["points_scored"] > 1000
    grid = np.asarray(Image.open(out / "grid.png").convert("RGB"))
    columns = 7
    assert grid.shape[1] == columns * 320
    tiles = grid[HEADER:HEADER + 3 * 240].reshape(3, 240, columns, 320, 3)  # first, middle, last
    for col in range(columns):  # every picture has content, none is a flat fill
        assert tiles[:, :, col].std() > 10, col
    # Predicted and ground-truth depth: similar pictures, not equal (that they share one
    # colour scale is test_grid_depth_panels_share_one_colour_scale's check).
    diff = np.abs(tiles[:, :, 1].astype(int) - tiles[:, :, 2].astype(int)).mean()
    assert 0 < diff < 60
    footer = grid[HEADER + 3 * 240:]
    assert footer.shape[0] > 60 and footer.std() > 10  # colour bars, legend and figures
    assert (out / "logs" / "dpt_node.log").is_file()


def test_grid_depth_panels_share_one_colour_scale() -> None:
    """Predicted and ground-truth depth are coloured on one range: a depth value gets the
    same colour in both panels. The prediction here is the truth + 0.5 m everywhere, so a
    panel scaled to its own range would colour its nearest column like the truth's nearest."""
    from dpt_ros.synthetic import CLASS_NAMES
    from dpt_ros.synthetic.sheet import HEADER as SHEET_HEADER
    from dpt_ros.synthetic.sheet import demo_sheet

    h, w = 240, 320  # the sheet's tile size: pasted without resampling
    gt = np.broadcast_to(1.0 + np.arange(w, dtype=np.float32) / 128, (h, w)).copy()  # 1-3.5 m
    pred = gt + np.float32(0.5)  # exact in float32: pred column j == gt column j + 64
    assert np.array_equal(pred[:, : w - 64], gt[:, 64:])
    rgb = np.full((h, w, 3), 128, np.uint8)
    kept = [{"image": rgb, "pred": pred, "gt": gt, "overlay": rgb, "cloud": rgb,
             "labels_gt": np.zeros((h, w), np.uint8), "index": 0, "abs_rel": 0.2,
             "miou": 1.0}]
    summary = {"frames": 1, "fps": 1.0, "latency_ms": {"p50": 1.0}, "miou": 1.0,
               "model_fps": {"depth": 1.0, "segmentation": 1.0},
               "iou": {name: 1.0 for name in CLASS_NAMES.values()},
               "depth": {"abs_rel": 0.2, "abs_rel_edges": 0.2, "rmse": 0.5, "delta1": 1.0},
               "point_to_surface_median_m": None,
               "setup": {"seed": 1, "width": w, "height": h, "rate_hz": 1.0}}
    grid = np.asarray(demo_sheet(kept, summary).convert("RGB"))
    row = SHEET_HEADER + h // 2  # the middle row of the tiles (no note drawn there)
    pred_tile = grid[row, w:2 * w].astype(int)
    gt_tile = grid[row, 2 * w:3 * w].astype(int)
    assert len({tuple(c) for c in gt_tile}) > 50  # a real ramp of colours
    np.testing.assert_array_equal(pred_tile[: w - 64], gt_tile[64:])
    assert np.abs(pred_tile[:64] - gt_tile[:64]).sum(-1).min() > 0  # not the same picture


def test_demo_reports_a_dead_node_and_cleans_up(tmp_path) -> None:
    domain = unique_domain(41)
    cmd = [sys.executable, "-m", "dpt_ros.demo", "--out", str(tmp_path), "--frames", "2",
           "--depth-model", str(tmp_path / "missing"), "--domain-id", str(domain)]
    proc = subprocess.run(cmd, env=ros_env(domain), cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert "dpt_node exited" in proc.stderr
    assert "missing" in proc.stderr  # the node's own reason is shown


def test_launch_file_matches_demo() -> None:
    """demo.launch.py starts what the demo starts (the real launch service runs it in
    ros/test_launch.py): the camera in the demo's namespace, dpt_node on the demo's topics with
    the shipped weights, through the one launch rule."""
    from dpt_ros import demo
    from dpt_ros.config import launch_args as la

    values = la.defaults(la.DEMO_ARGS, "/share")
    camera = la.demo_camera_spec(values)
    assert (camera.package, camera.executable, camera.namespace) == (
        "dpt_ros", "synthetic_camera", demo.CAMERA_NS)
    dpt = la.dpt_node_spec({**la.defaults(la.DPT_ARGS, "/share"),
                            **la.demo_dpt_values(values, str(demo.WEIGHTS))})
    assert dpt.executable == "dpt_node" and dpt.namespace == "/"
    assert dict(dpt.remappings) == {"image": f"{demo.CAMERA_NS}/image_raw",
                                    "camera_info": f"{demo.CAMERA_NS}/camera_info"}
    assert dpt.params["depth_model"] == str(demo.WEIGHTS / "synthetic-depth")
    assert dpt.params["segmentation_model"] == str(demo.WEIGHTS / "synthetic-seg")
    setup = (ROOT / "setup.py").read_text()
    assert "synthetic_camera = dpt_ros.ros.synthetic_camera:main" in setup
    assert "dpt_node = dpt_ros.ros.node:main" in setup
    src = (ROOT / "launch" / "demo.launch.py").read_text()
    for used in ("demo_camera_spec(values)", "demo_dpt_values(values, WEIGHTS)",
                 '"dpt.launch.py"'):
        assert used in src, used
    assert {a.name: a.default for a in la.DEMO_ARGS}["seed"] == str(demo.DEMO_SEED)


def test_sigterm_stops_children(tmp_path) -> None:
    domain = unique_domain(43)
    env = ros_env(domain)
    cmd = [sys.executable, "-m", "dpt_ros.demo", "--out", str(tmp_path), "--frames", "500",
           "--width", "160", "--height", "120", "--domain-id", str(domain), "--timeout", "240"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = [""]
    while "started synthetic_camera" not in lines[-1]:  # both children are running
        lines.append(proc.stdout.readline())
        assert lines[-1], proc.stderr.read()
    pids = _child_pids("".join(lines))
    assert len(pids) == 2
    proc.send_signal(signal.SIGTERM)
    # Stopping is bounded: per child SIGINT (5 s), SIGTERM (2 s), SIGKILL (2 s), then the
    # listener (about 3 s); the rest is room for a loaded machine.
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + out + err
    assert all(_gone(pid) for pid in pids), pids
