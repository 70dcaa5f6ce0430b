"""Helpers for the launch tests: an install prefix laid out from setup.py's data_files (as
colcon or pip would), with executables that either run the worktree's real node or only
record the command line launch_ros gave them, and the real launch service in a subprocess
(test/_launch_driver.py, what `ros2 launch` does)."""

from __future__ import annotations

import ast
import json
import shutil
import sys
import time
from glob import glob
from pathlib import Path
from typing import Any

from _node_util import ROOT, NodeProcess

DRIVER = Path(__file__).with_name("_launch_driver.py")
# module run by each real executable (setup.py's console scripts, by script name)
REAL = {"dpt_node": "dpt_ros.ros.node", "dpt_lifecycle_node": "dpt_ros.ros.lifecycle_node",
        "synthetic_camera": "dpt_ros.ros.synthetic_camera"}


def _setup_call() -> ast.Call:
    tree = ast.parse((ROOT / "setup.py").read_text())
    return next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")


def setup_kw(name: str) -> Any:
    """A keyword argument of setup.py's setup() call, evaluated (it is a literal plus glob)."""
    kw = next(k for k in _setup_call().keywords if k.arg == name)
    return eval(  # the literal from setup.py, with its two names
        compile(ast.Expression(kw.value), "setup.py", "eval"), {"PACKAGE": "dpt_ros", "glob": glob}
    )


def console_scripts() -> dict[str, str]:
    return dict(s.replace(" ", "").split("=") for s in setup_kw("entry_points")["console_scripts"])


def install_share(prefix: Path) -> Path:
    """setup.py's data_files copied under `prefix` (run from the repository root)."""
    for dest, files in setup_kw("data_files"):
        for f in files:
            target = prefix / dest / Path(f).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / f, target)
    return prefix / "share" / "dpt_ros"


def add_executable(prefix: Path, package: str, name: str, record_dir: Path | None) -> Path:
    """`<prefix>/lib/<package>/<name>`: the real program (REAL[name], from the worktree) when
    `record_dir` is None, else a stand-in that writes its argv to `<record_dir>/<name>.json`
    and exits. Registers `package` in the prefix's ament index."""
    index = prefix / "share" / "ament_index" / "resource_index" / "packages" / package
    index.parent.mkdir(parents=True, exist_ok=True)
    index.touch()
    path = prefix / "lib" / package / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if record_dir is None:
        body = f"import runpy\nrunpy.run_module({REAL[name]!r}, run_name='__main__')\n"
    else:
        out = str(record_dir / f"{name}.json")
        body = f"import json, sys\nopen({out!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


def launch_env(env: dict[str, str], prefix: Path) -> dict[str, str]:
    return {**env, "AMENT_PREFIX_PATH": str(prefix)}


def run_launch(launch_file: Path, args: dict[str, str], env: dict[str, str], log: Path,
               timeout: float = 60.0) -> tuple[int, str]:
    """Run the launch file to the end (stand-in executables exit at once); (code, log)."""
    proc = start_launch(launch_file, args, env, log)
    deadline = time.monotonic() + timeout
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    code = proc.stop()
    return code, proc.log_path.read_text(errors="replace")


def start_launch(launch_file: Path, args: dict[str, str], env: dict[str, str],
                 log: Path) -> NodeProcess:
    cmd = [sys.executable, str(DRIVER), str(launch_file), *(f"{k}:={v}" for k, v in args.items())]
    return NodeProcess(cmd, env, log)


def recorded(record_dir: Path, name: str) -> list[str] | None:
    path = record_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
