"""The layer and cycle contracts of docs/architecture.md (`.importlinter`) hold, and they
bite: the same contracts run on a copy of the package with a deliberate upward import, a
deliberate ROS import below messages and a deliberate cycle, and must fail naming each."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(cwd))  # the copy in cwd, not the installed package
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "dpt_ros", tmp_path / "dpt_ros",
                    ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}  # deliberate (test_layers)\n")


def test_the_package_keeps_every_contract(tmp_path):
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_a_ros_import_and_a_cycle_break_the_build(tmp_path):
    pkg = _copy(tmp_path) / "dpt_ros"
    _append(pkg / "model" / "outputs.py", "import dpt_ros.core.errors")  # model -> core
    _append(pkg / "core" / "errors.py", "import rclpy")  # ROS below messages
    _append(pkg / "core" / "camera" / "sync.py", "import dpt_ros.core.pipeline.frame")
    _append(pkg / "core" / "pipeline" / "frame.py", "import dpt_ros.core.camera.sync")
    done = _lint(pkg.parent)
    out = done.stdout
    assert done.returncode != 0, out
    assert "dpt_ros.model is not allowed to import dpt_ros.core" in out
    assert "dpt_ros.core.errors -> rclpy" in out
    assert "No cycles are allowed in dpt_ros.core" in out
