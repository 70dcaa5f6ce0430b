"""A node that cannot start says why in one line and exits with status 1.

Two cases run as real subprocesses, started like the launch file starts the node (a model
error and a parameter error); the remaining cases call the same `main()` in this process,
which already has torch loaded, to keep the suite fast."""

from __future__ import annotations

import subprocess

import pytest
from _node_util import CONFIG, domain_id, node_command, ros_env

pytestmark = pytest.mark.ros
pytest.importorskip("rclpy")

SUBPROCESS_CASES = {  # name -> (parameter overrides, what the line must say)
    "wrong task": ({"depth_model": "{segmentation}"}, "a depth model was asked for"),
    "bad value": ({"depth_model": "{relative}", "colormap": "jet"},
                  "colormap must be one of turbo, inferno, viridis"),
}
IN_PROCESS_CASES = {
    "no model": ({"depth_model": "", "segmentation_model": ""}, "no model configured"),
    "missing checkpoint": ({"depth_model": "/nonexistent/dpt"}, "does not exist"),
    "bad type": ({"depth_model": "{relative}", "depth.scale": "abc"},
                 "expecting type 'DOUBLE'"),
    "bad input size": ({"depth_model": "{relative}", "input_size": [50, 50]},
                       "multiples of the patch size 16"),
    "inconsistent": ({"depth_model": "{relative}", "pointcloud.min_range": 5.0,
                      "pointcloud.max_range": 1.0}, "must exceed pointcloud.min_range"),
    "out of range": ({"depth_model": "{relative}", "pointcloud.stride": 0},
                         "out of range"),
}


def _fill(params: dict, checkpoints: dict) -> dict:
    return {k: v.format(**checkpoints) if isinstance(v, str) else v for k, v in params.items()}


def check_output(name: str, code: int, out: str, fragment: str) -> None:
    assert code == 1, (name, out)
    assert "Traceback" not in out, (name, out)
    fatal = [line for line in out.splitlines() if "cannot start" in line]
    assert len(fatal) == 1 and fragment in fatal[0], (name, out)


def test_start_up_failures_in_a_subprocess(checkpoints):
    env = ros_env(domain_id(__name__))
    procs = {
        name: subprocess.Popen(node_command(_fill(params, checkpoints)), env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name, (params, _) in SUBPROCESS_CASES.items()
    }
    for name, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{name}: still running")
        check_output(name, proc.returncode, out, SUBPROCESS_CASES[name][1])


@pytest.mark.parametrize("name", list(IN_PROCESS_CASES))
def test_start_up_failures_in_process(name, checkpoints, capfd, monkeypatch):
    from dpt_ros.ros.node import main

    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id(__name__)))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    params, fragment = IN_PROCESS_CASES[name]
    argv = node_command(_fill(params, checkpoints))
    args = argv[argv.index("--ros-args") - 1:]  # what the console script passes on
    assert args[1:3] == ["--ros-args", "--params-file"] and args[3] == str(CONFIG)
    code = main(args)
    captured = capfd.readouterr()
    check_output(name, code, captured.out + captured.err, fragment)
