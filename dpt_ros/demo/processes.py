"""The demo's two child processes: `dpt_node` and `synthetic_camera`, each with its command
line, its log file under `<out>/logs/`, and a stop that always ends it."""

from __future__ import annotations

import argparse
import ctypes
import signal
import subprocess
import sys
from pathlib import Path

from dpt_ros.demo import CAMERA_NS, PACKAGE_DIR, DemoError


def params_file() -> Path | None:
    """config/dpt.yaml from the source tree, else from an installed share/dpt_ros."""
    for path in (PACKAGE_DIR.parent / "config" / "dpt.yaml",
                 Path(sys.prefix) / "share" / "dpt_ros" / "config" / "dpt.yaml"):
        if path.is_file():
            return path
    return None


def node_args(args: argparse.Namespace) -> list[str]:
    """`python` arguments of dpt_node: the shipped parameter file, the demo's models, the
    camera's topics."""
    pf = params_file()
    return [
        "-m", "dpt_ros.ros.node", "--ros-args",
        *(["--params-file", str(pf)] if pf is not None else []),
        "-p", f"depth_model:={args.depth_model}",
        "-p", f"segmentation_model:={args.segmentation_model}",
        "-p", f"device:={args.device}", "-p", f"num_threads:={args.node_threads}",
        "-r", f"image:={CAMERA_NS}/image_raw", "-r", f"camera_info:={CAMERA_NS}/camera_info"]


def camera_args(args: argparse.Namespace) -> list[str]:
    """`python` arguments of synthetic_camera in the demo's namespace and world."""
    return ["-m", "dpt_ros.ros.synthetic_camera", "--ros-args", "-r", f"__ns:={CAMERA_NS}",
            "-p", f"seed:={args.seed}", "-p", f"rate:={args.rate}",
            "-p", f"width:={args.width}", "-p", f"height:={args.height}"]


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the demo itself is killed (even with SIGKILL)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Child:
    """One child process with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._file = self.log.open("w")
        self.proc = subprocess.Popen([sys.executable, *args], env=env, stdout=self._file,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = "".join(self.log.read_text(errors="replace").splitlines(True)[-15:])
            raise DemoError(f"{self.name} exited with code {self.proc.returncode}; last lines "
                            f"of {self.log}:\n{tail}")

    def stop(self) -> None:
        """SIGINT (clean ROS shutdown), then SIGTERM, then SIGKILL."""
        for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            if self.proc.poll() is not None:
                break
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=wait)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                continue
        self._file.close()
