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


def test_demo_writes_grid_and_summary(tmp_path) -> None:
    out = tmp_path / "demo_out"
    domain = unique_domain(37)
    cmd = [sys.executable, "-m", "dpt_ros.demo", "--out", str(out), "--frames", "3",
           "--width", "320", "--height", "240", "--rate", "4", "--domain-id", str(domain)]
    proc = subprocess.run(cmd, env=ros_env(domain), cwd=ROOT, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[demo] frame 3/3" in proc.stdout  # progress is printed while it runs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3
    assert summary["fps"] > 0 and 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"]
    assert 0 < summary["depth"]["abs_rel"] < 0.5 and 0 < summary["depth"]["delta1"] <= 1
    assert 0.3 < summary["miou"] <= 1
    assert 0 <= summary["point_to_surface_median_m"] < 0.5 and summary["points_scored"] > 1000
    grid = np.asarray(Image.open(out / "grid.png").convert("RGB"))
    assert grid.shape[1] == 5 * 320
    tiles = grid[18:].reshape(-1, 240, 5, 320, 3)
    assert tiles.shape[0] == 3  # frames 0, 1, 2 (first, middle, last)
    for col in range(5):  # every picture has content, none is a flat fill
        assert tiles[:, :, col].std() > 10, col
    # Predicted and ground-truth depth share a colour scale: similar pictures, not equal.
    diff = np.abs(tiles[:, :, 1].astype(int) - tiles[:, :, 2].astype(int)).mean()
    assert 0 < diff < 60
    assert (out / "logs" / "dpt_node.log").is_file()
    # No child left behind: nothing on this domain id still runs.
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert "synthetic_camera" not in ps or f"seed:={summary['setup']['seed']}" not in ps


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
    test_launch.py): the camera in the demo's namespace, dpt_node on the demo's topics with
    the shipped weights, through the one launch rule."""
    from dpt_ros import demo
    from dpt_ros.core import launch_args as la

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


def test_sigterm_stops_children(tmp_path) -> None:
    domain = unique_domain(43)
    env = ros_env(domain)
    cmd = [sys.executable, "-m", "dpt_ros.demo", "--out", str(tmp_path), "--frames", "500",
           "--width", "160", "--height", "120", "--domain-id", str(domain)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = ""
    while "started dpt_node" not in line:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
    pids = [int(p) for p in line.split("pid ")[1:] for p in [p.split(")")[0]]]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
