"""Test harness for dpt_node: tiny random-weight checkpoints, the node as a real subprocess
(started exactly as the launch file starts it), and an in-process rclpy peer on a private
ROS domain that publishes camera frames and collects every output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the package may not be pip-installed yet
    sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "config" / "dpt.yaml"
NODE = "/dpt_node"
IMAGE_TOPIC = "/cam/image_raw"
INFO_TOPIC = "/cam/camera_info"


# ---------------------------------------------------------------------- the node
def domain_id(tag: str) -> int:
    """A ROS domain private to this test process and module (parallel runs never meet)."""
    return 1 + (os.getpid() * 7 + zlib.crc32(tag.encode())) % 100


def ros_env(domain: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    env.update(extra or {})
    return env


def node_command(
    params: dict[str, Any],
    params_file: Path = CONFIG,
    image: str = IMAGE_TOPIC,
    camera_info: str = INFO_TOPIC,
    executable: str = "dpt_node",
) -> list[str]:
    """The command line the launch file produces: console script when installed, else -m
    (`executable` dpt_node, or dpt_lifecycle_node for the managed node)."""
    module = {"dpt_node": "dpt_ros.ros.node",
              "dpt_lifecycle_node": "dpt_ros.ros.lifecycle_node"}[executable]
    script = Path(sys.executable).with_name(executable)
    exe = [str(script)] if script.exists() else [sys.executable, "-m", module]
    cmd = [*exe, "--ros-args", "--params-file", str(params_file)]
    cmd += ["-r", f"image:={image}", "-r", f"camera_info:={camera_info}"]
    for name, value in params.items():
        cmd += ["-p", f"{name}:={_param_text(value)}"]
    return cmd


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    return str(value) if value != "" else "''"


class NodeProcess:
    """dpt_node in a subprocess; output goes to a log file shown when a test fails."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = open(log, "w")
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
        raise RuntimeError("no VmRSS")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


# ---------------------------------------------------------------- the rclpy peer
class Collector:
    """Every message received on one topic, with a condition to wait on."""

    def __init__(self) -> None:
        self.msgs: list[Any] = []
        self.times: list[float] = []  # time.monotonic() of each arrival
        self._cond = threading.Condition()

    def __call__(self, msg: Any) -> None:
        with self._cond:
            self.msgs.append(msg)
            self.times.append(time.monotonic())
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[Any], bool], timeout: float) -> Any | None:
        """The first message satisfying `pred`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.msgs:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def clear(self) -> None:
        with self._cond:
            self.msgs.clear()
            self.times.clear()


class Peer:
    """An rclpy node on its own context and domain, spun in a background thread."""

    def __init__(self, domain: int, name: str = "dpt_test_peer", env: dict | None = None):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.domain = domain
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        try:
            self.context = rclpy.Context()
            rclpy.init(context=self.context, domain_id=domain)
            self.node = rclpy.create_node(name, context=self.context)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # shut down while spinning
            pass

    def collect(self, msg_type: type, topic: str, qos: Any = None) -> Collector:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        qos = qos or QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        c = Collector()
        c.sub = self.node.create_subscription(msg_type, topic, c, qos)
        return c

    def publisher(self, msg_type: type, topic: str, qos: Any = None):
        from rclpy.qos import QoSProfile

        return self.node.create_publisher(msg_type, topic, qos or QoSProfile(depth=10))

    def wait_until(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.05)

    def set_parameters(self, values: dict[str, Any], node: str = NODE, timeout: float = 10.0):
        """SetParameters on `node`; returns the list of SetParametersResult."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        client = self.node.create_client(SetParameters, f"{node}/set_parameters")
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"{node}/set_parameters not available")
            req = SetParameters.Request()
            req.parameters = [Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
            future = client.call_async(req)
            self.wait_until(future.done, timeout, "set_parameters response")
            return future.result().results
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(5)


def diagnostics_values(msg: Any) -> dict[str, str]:
    """KeyValues of the dpt_node status in a DiagnosticArray (empty when absent)."""
    for status in msg.status:
        if status.name.startswith("dpt_node"):
            return {kv.key: kv.value for kv in status.values}
    return {}


# -------------------------------------------------------------------- test frames
def camera_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour ramps plus noise: structure the model reacts to, deterministic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                     (x + y) * 127 // max(width + height - 2, 1)], axis=-1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def image_msg(
    pixels: np.ndarray, encoding: str, stamp: tuple[int, int], frame_id: str,
    pad: int = 0, big_endian: bool = False,
):
    """A sensor_msgs/Image built by hand (independent of the package's converters)."""
    from sensor_msgs.msg import Image

    height, width = pixels.shape[:2]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2" if big_endian else "<u2")
    rows = pixels.reshape(height, -1).view(np.uint8)
    if pad:
        rows = np.concatenate([rows, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.is_bigendian = int(big_endian)
    msg.step = rows.shape[1]
    msg.data = rows.tobytes()
    return msg


def encode_as(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """The pixel array a camera would send for `rgb` in `encoding`."""
    if encoding == "rgb8":
        return rgb
    if encoding == "bgr8":
        return rgb[..., ::-1].copy()
    alpha = np.full((*rgb.shape[:2], 1), 200, np.uint8)
    if encoding == "rgba8":
        return np.concatenate([rgb, alpha], axis=-1)
    if encoding == "bgra8":
        return np.concatenate([rgb[..., ::-1], alpha], axis=-1)
    if encoding == "mono8":
        return rgb[..., 0].copy()
    if encoding == "mono16":
        return rgb[..., 0].astype(np.uint16) * 257
    raise ValueError(encoding)


def camera_info_msg(fx: float, fy: float, cx: float, cy: float, width: int, height: int,
                    stamp: tuple[int, int], frame_id: str):
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = width, height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def image_array(msg: Any) -> np.ndarray:
    """Decode an output Image by hand (32FC1, mono8, 16UC1, bgr8), honouring step."""
    dtype, channels = {
        "32FC1": (np.dtype("<f4"), 1),
        "mono8": (np.dtype(np.uint8), 1),
        "16UC1": (np.dtype("<u2"), 1),
        "bgr8": (np.dtype(np.uint8), 3),
    }[msg.encoding]
    if msg.is_bigendian:
        dtype = dtype.newbyteorder(">")
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    row_bytes = msg.width * channels * dtype.itemsize
    arr = np.ascontiguousarray(rows[:, :row_bytes]).view(dtype)
    return arr.reshape(msg.height, msg.width, channels).squeeze(-1) if channels == 1 else (
        arr.reshape(msg.height, msg.width, channels))


def stamp_of(msg: Any) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def send_until(
    sends: Iterable[tuple[Any, Any]], collectors: Iterable[Collector], stamp: tuple[int, int],
    timeout: float = 20.0, period: float = 0.3,
) -> list[Any]:
    """Publish each (publisher, message) every `period` s until every collector holds a
    message stamped `stamp` (discovery and lazy-output matching take a moment). Returns
    those messages, in collector order."""
    collectors, sends = list(collectors), list(sends)
    found: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    while True:
        for pub, msg in sends:
            pub.publish(msg)
        step_end = min(time.monotonic() + period, deadline)
        for i, c in enumerate(collectors):
            if i not in found:
                hit = c.wait_for(lambda m: stamp_of(m) == stamp, step_end - time.monotonic())
                if hit is not None:
                    found[i] = hit
        if len(found) == len(collectors):
            return [found[i] for i in range(len(collectors))]
        if time.monotonic() >= deadline:
            missing = [c.sub.topic_name for i, c in enumerate(collectors) if i not in found]
            raise TimeoutError(f"no output stamped {stamp} on {missing} within {timeout} s")


def wait_ready(peer: Peer, proc: NodeProcess, image_topic: str = IMAGE_TOPIC,
               timeout: float = 60.0) -> None:
    """Until the node has started (models loaded, `ready:` logged) and, once one of its
    outputs has a subscriber in `peer`, subscribes to its input `image_topic` (it holds no
    input while nobody subscribes to an output: issue 19's lazy subscriptions)."""
    deadline = time.monotonic() + timeout

    def ready() -> bool:
        if "ready:" not in proc.log():
            return False
        names = [name for name, _ in peer.node.get_topic_names_and_types()
                 if name.startswith(NODE + "/")]
        if not names:  # the node's publishers not discovered by the peer yet
            return False
        outputs = [name for name in names if peer.node.count_subscribers(name) > 0]
        # the peer's own subscribers on the node's outputs make it subscribe its input
        return not outputs or peer.node.count_subscribers(image_topic) >= 1

    while not ready():
        if not proc.alive():
            raise RuntimeError(f"dpt_node exited with {proc.proc.returncode}:\n{proc.log()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"dpt_node not ready after {timeout} s:\n{proc.log()}")
        time.sleep(0.1)


def start_nodes(
    specs: list[tuple[dict[str, Any], dict[str, str]]], peers: list[Peer], log_dir: Path,
    image_topics: list[str] | None = None,
) -> list[NodeProcess]:
    """Start one node per (parameters, extra environment) at once (they load in parallel),
    each on its peer's domain, then wait until all are ready."""
    procs = [
        NodeProcess(node_command(params), ros_env(peer.domain, env), log_dir / f"node{i}.log")
        for i, ((params, env), peer) in enumerate(zip(specs, peers))
    ]
    try:
        for i, (proc, peer) in enumerate(zip(procs, peers)):
            wait_ready(peer, proc, (image_topics or [IMAGE_TOPIC] * len(procs))[i])
    except Exception:
        for proc in procs:
            proc.stop()
        raise
    return procs


SHARED_PARAMS = {"device": "cpu", "diagnostics_period": 0.2}
RELATIVE_SIZE = 448  # the relative node's model input: slow enough (~0.1-0.3 s) to overload


def cloud_array(msg: Any) -> dict[str, np.ndarray]:
    """PointCloud2 fields as (height, width) arrays, decoded by hand from offsets/types."""
    types = {7: "f4", 6: "u4", 5: "i4", 4: "u2", 3: "i2", 2: "u1", 1: "i1", 8: "f8"}
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype({
        "names": [f.name for f in msg.fields],
        "formats": [order + types[f.datatype] for f in msg.fields],
        "offsets": [f.offset for f in msg.fields],
        "itemsize": msg.point_step,
    })
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.row_step)
    pts = np.ascontiguousarray(rows[:, : msg.width * msg.point_step]).view(dtype)
    return {name: pts[name].reshape(msg.height, msg.width) for name in dtype.names}


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """PCL packed-float rgb → (..., 3) uint8 RGB."""
    v = np.ascontiguousarray(packed, dtype="<f4").view("<u4")
    return np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], axis=-1).astype(np.uint8)


def backproject(depth: np.ndarray, k: Iterable[float]) -> np.ndarray:
    """(H, W) metres → (H, W, 3) optical-frame points with a CameraInfo K (float64)."""
    fx, _, cx, _, fy, cy = list(k)[:6]
    v, u = np.mgrid[0 : depth.shape[0], 0 : depth.shape[1]]
    z = depth.astype(np.float64)
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1)


def labels_json(msg: Any) -> dict[int, str]:
    return {int(k): v for k, v in json.loads(msg.data).items()}
