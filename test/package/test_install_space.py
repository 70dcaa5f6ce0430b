"""The colcon install space works as a distro user uses it: `colcon build`, then `colcon test`
runs this with AMENT_PREFIX_PATH on the install space (.ci/run does both). Everything runs
from the install space in a scratch directory, so the source tree is not on the path. In a
plain source checkout (no ament prefix holding dpt_ros) the module is skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _prefix() -> Path:
    try:
        from ament_index_python.packages import get_package_prefix
    except ImportError:
        pytest.skip("ament_index_python is not installed", allow_module_level=True)
    try:
        prefix = Path(get_package_prefix("dpt_ros"))
    except (LookupError, OSError, ValueError):
        pytest.skip("dpt_ros is not in an ament install space (run through colcon test)",
                    allow_module_level=True)
    if not (prefix / "lib" / "dpt_ros" / "dpt_node").is_file():
        pytest.skip(f"{prefix} has no lib/dpt_ros/dpt_node", allow_module_level=True)
    return prefix


PREFIX = _prefix()
SHARE = PREFIX / "share" / "dpt_ros"
NODE = PREFIX / "lib" / "dpt_ros" / "dpt_node"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "ROS_DOMAIN_ID": str(60 + os.getpid() % 30),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "OMP_NUM_THREADS": "1", **extra}


def _python(code: str, tmp_path: Path) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), text=True,
                         capture_output=True, timeout=120, check=True)
    return out.stdout.strip()


def installed_weights(tmp_path: Path) -> Path:
    return Path(_python("import dpt_ros, os; print(os.path.dirname(dpt_ros.__file__))",
                        tmp_path)) / "weights"


def test_code_and_weights_come_from_the_install_space(tmp_path):
    package = Path(_python("import dpt_ros; print(dpt_ros.__file__)", tmp_path))
    assert PREFIX in package.parents, package
    for name in ("synthetic-depth", "synthetic-seg"):
        for f in ("config.json", "preprocessor_config.json", "model.safetensors"):
            assert (installed_weights(tmp_path) / name / f).is_file()
    for script in ("dpt_node", "synthetic_camera", "dpt-ros"):
        assert os.access(PREFIX / "lib" / "dpt_ros" / script, os.X_OK), script


def test_share_is_where_the_launch_files_look(tmp_path):
    from ament_index_python.packages import get_package_share_directory

    from dpt_ros.config.launch_args import default_params_file, rviz_template

    share = Path(get_package_share_directory("dpt_ros"))
    assert share == SHARE
    for name in ("dpt.launch.py", "demo.launch.py"):
        assert (share / "launch" / name).read_bytes() == (ROOT / "launch" / name).read_bytes()
    for path in (ROOT / "config").glob("*.yaml"):
        assert (share / "config" / path.name).read_bytes() == path.read_bytes()
    assert Path(default_params_file(str(share))).is_file()
    assert Path(rviz_template(str(share))).is_file()
    assert (share / "package.xml").is_file()


def test_node_says_why_it_cannot_start(tmp_path):
    out = subprocess.run([str(NODE), "--ros-args", "-p", "depth_model:=./no/such/model"],
                         cwd=tmp_path, env=_env(), text=True, capture_output=True, timeout=120)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert out.returncode == 1, lines
    assert len(lines) == 1 and "[FATAL]" in lines[0] and "cannot start" in lines[0], lines
    assert "no/such/model does not exist" in lines[0]


def _wait_for(proc: subprocess.Popen, log: Path, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while text not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return log.read_text()


def test_node_starts_from_the_install_space(tmp_path):
    weights = installed_weights(tmp_path)
    log = tmp_path / "node.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [str(NODE), "--ros-args", "--params-file", str(SHARE / "config" / "dpt.yaml"),
             "-p", f"depth_model:={weights / 'synthetic-depth'}", "-p", "device:=cpu"],
            cwd=tmp_path, env=_env(), stdout=f, stderr=subprocess.STDOUT)
        try:
            text = _wait_for(proc, log, "ready:", 120)
        finally:
            proc.send_signal(2)
            code = proc.wait(20)
    assert "ready: depth_model=local directory " + str(weights / "synthetic-depth") in text, text
    assert code == 0, log.read_text()


def test_launch_file_from_the_share_starts_the_node(tmp_path):
    pytest.importorskip("launch_ros")
    weights = installed_weights(tmp_path)
    log = tmp_path / "launch.log"
    driver = ROOT / "test" / "_launch_driver.py"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, str(driver), str(SHARE / "launch" / "dpt.launch.py"),
             "namespace:=robot1", f"depth_model:={weights / 'synthetic-depth'}",
             "device:=cpu"],
            cwd=tmp_path, env=_env(), stdout=f, stderr=subprocess.STDOUT)
        try:
            text = _wait_for(proc, log, "ready:", 120)
        finally:
            proc.send_signal(2)
            code = proc.wait(30)
    assert "[robot1.dpt_node]: ready:" in text and "input /robot1/camera/image_raw" in text, text
    assert str(NODE) in log.read_text() or "dpt_node-1" in log.read_text()
    assert code == 0 and "process has finished cleanly" in log.read_text(), log.read_text()
