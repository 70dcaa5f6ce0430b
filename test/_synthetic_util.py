"""Helpers for the synthetic-world ROS tests: isolated DDS domains, subprocesses that are
always cleaned up, and a collector node that groups messages by header stamp."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "dpt_ros" / "weights"


def ros_env(domain: int) -> dict[str, str]:
    """Environment for a child process on its own DDS domain, discovery kept on this host."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def unique_domain(offset: int) -> int:
    """A domain id in 1..100 that differs between concurrently running test modules."""
    return 1 + (os.getpid() * 7 + offset) % 100


@contextmanager
def processes(commands: list[list[str]], env: dict[str, str]) -> Iterator[list]:
    """Start each command; on exit SIGINT, then SIGKILL whatever is still alive."""
    procs = [subprocess.Popen([sys.executable, *c], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c in commands]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(2)
        deadline = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def output_of(proc: subprocess.Popen) -> str:
    """Everything a finished (or killed) child printed."""
    return proc.stdout.read() if proc.stdout else ""


class Collector:
    """rclpy node in a background thread; `frames` maps header stamp → {topic: msg}."""

    def __init__(self, domain: int, topics: dict[str, type]):
        os.environ["ROS_DOMAIN_ID"] = str(domain)
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("synthetic_test_collector", context=self.context)
        self.frames: dict[tuple[int, int], dict[str, object]] = defaultdict(dict)
        self.arrivals: dict[tuple[tuple[int, int], str], float] = {}  # monotonic seconds
        self.lock = threading.Lock()
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for topic, kind in topics.items():
            self.node.create_subscription(kind, topic, self._callback(topic), qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _callback(self, topic: str):
        def store(msg) -> None:
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            with self.lock:
                self.frames[stamp][topic] = msg
                self.arrivals[(stamp, topic)] = time.monotonic()
        return store

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:
                return

    def complete(self, topics: set[str]) -> list[dict[str, object]]:
        """Frames for which every topic in `topics` arrived, oldest first."""
        with self.lock:
            return [dict(v) for k, v in sorted(self.frames.items()) if topics <= v.keys()]

    def wait_for(self, topics: set[str], count: int, timeout: float, procs: list) -> list:
        """Block until `count` complete frames arrived; fail early if a child died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.complete(topics)
            if len(done) >= count:
                return done
            for p in procs:
                if p.poll() is not None:
                    raise AssertionError(f"child exited with {p.returncode}:\n{output_of(p)}")
            time.sleep(0.05)
        got = {t: sum(t in v for v in self.frames.values()) for t in topics}
        raise AssertionError(f"timed out after {timeout} s; messages per topic: {got}")

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()
        self._rclpy.shutdown(context=self.context)
        self.thread.join(timeout=2)


def image_array(msg) -> np.ndarray:
    """numpy view of a rgb8 / mono8 / 32FC1 Image (tight rows, native order)."""
    dtype = {"rgb8": np.uint8, "bgr8": np.uint8, "mono8": np.uint8, "32FC1": np.float32}
    arr = np.frombuffer(bytes(msg.data), dtype=dtype[msg.encoding])
    channels = 3 if msg.encoding in ("rgb8", "bgr8") else 1
    arr = arr.reshape(msg.height, msg.width, channels)
    return arr[..., 0] if channels == 1 else arr


def cloud_xyz(msg) -> np.ndarray:
    """(N, 3) float32 x, y, z of a PointCloud2 (fields at offsets 0, 4, 8), NaNs kept."""
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(-1, msg.point_step)
    return np.ascontiguousarray(raw[:, :12]).view(np.float32).reshape(-1, 3)


def pose_matrix(msg) -> tuple[np.ndarray, np.ndarray]:
    """(rotation 3x3, position 3) of a PoseStamped."""
    q = msg.pose.orientation
    x, y, z, w = q.x, q.y, q.z, q.w
    rot = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    p = msg.pose.position
    return rot, np.array([p.x, p.y, p.z])
