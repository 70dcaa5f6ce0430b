"""`python -m dpt_ros.demo --out demo_out [--frames N]`: the whole pipeline on this machine.

Starts `synthetic_camera` and `dpt_node` (with the shipped synthetic weights) as separate
processes on a private DDS domain, listens to the node's outputs and the camera's ground
truth, and writes `<out>/grid.png` (input, predicted depth, ground-truth depth, segmentation
overlay, point cloud seen from beside the camera) and `<out>/summary.json` (frames, FPS,
latency p50/p95, depth AbsRel/RMSE/δ<1.25 and mIoU against ground truth, median distance of
the published points to the true scene surfaces). Child logs go to `<out>/logs/`. Processes
are always stopped, also on errors, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS = PACKAGE_DIR / "weights"
CAMERA_NS = "/camera"
NODE = "/dpt_node"
GT_TOPICS = ("image_raw", "depth_gt", "labels_gt", "pose")
OUT_TOPICS = ("depth", "segmentation", "segmentation/overlay", "points")


class DemoError(RuntimeError):
    """A failure the user can act on (a child died, nothing arrived in time)."""


def params_file() -> Path | None:
    """config/dpt.yaml from the source tree, else from an installed share/dpt_ros."""
    for path in (PACKAGE_DIR.parent / "config" / "dpt.yaml",
                 Path(sys.prefix) / "share" / "dpt_ros" / "config" / "dpt.yaml"):
        if path.is_file():
            return path
    return None


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


class Listener:
    """Subscribes to ground truth and outputs; groups messages by header stamp."""

    def __init__(self, domain: int):
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, PointCloud2

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("dpt_demo", context=self.context)
        self.lock = threading.Lock()
        self.frames: dict[tuple[int, int], dict[str, object]] = defaultdict(dict)
        self.arrival: dict[tuple[int, int], float] = {}
        self.published = 0
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        kinds = {"pose": PoseStamped, "points": PointCloud2}
        for topic in GT_TOPICS:
            self._subscribe(kinds.get(topic, Image), f"{CAMERA_NS}/{topic}", topic, qos)
        for topic in OUT_TOPICS:
            self._subscribe(kinds.get(topic, Image), f"{NODE}/{topic}", topic, qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _subscribe(self, kind: type, topic: str, key: str, qos) -> None:
        def store(msg) -> None:
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            with self.lock:
                self.frames[stamp][key] = msg
                if key in OUT_TOPICS:
                    self.arrival[stamp] = time.time()
                if key == "image_raw":
                    self.published += 1
        self.node.create_subscription(kind, topic, store, qos)

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:
                return

    def pop_complete(self) -> list[tuple[tuple[int, int], dict[str, object], float]]:
        """Frames with every topic, oldest first; older incomplete frames are dropped (the
        node skips frames when it is slower than the camera)."""
        want = set(GT_TOPICS) | set(OUT_TOPICS)
        with self.lock:
            done = sorted(k for k, v in self.frames.items() if want <= v.keys())
            if not done:
                return []
            out = [(k, self.frames[k], self.arrival[k]) for k in done]
            for k in [k for k in self.frames if k <= done[-1]]:
                del self.frames[k]
                self.arrival.pop(k, None)
            return out

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=2)


def _image(msg) -> np.ndarray:
    """rgb8/bgr8 → RGB, mono8 → uint8, 32FC1 → float32 (tight rows)."""
    dtype = np.float32 if msg.encoding == "32FC1" else np.uint8
    arr = np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, msg.width, -1)
    if msg.encoding == "bgr8":
        arr = arr[..., ::-1]
    return arr[..., 0] if arr.shape[2] == 1 else arr


def _cloud(msg) -> tuple[np.ndarray, np.ndarray | None]:
    """xyz (N, 3) and RGB (N, 3) (None without an rgb field) of a PointCloud2."""
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(-1, msg.point_step)
    offset = {f.name: f.offset for f in msg.fields}
    xyz = np.stack([np.ascontiguousarray(raw[:, offset[c]:offset[c] + 4]).view(np.float32)[:, 0]
                    for c in "xyz"], 1)
    if "rgb" not in offset:
        return xyz, None
    packed = np.ascontiguousarray(raw[:, offset["rgb"]:offset["rgb"] + 4]).view(np.uint32)[:, 0]
    rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], 1)
    return xyz, rgb.astype(np.uint8)


def _pose(msg):
    from dpt_ros.synthetic.camera_path import Pose

    q, p = msg.pose.orientation, msg.pose.position
    x, y, z, w = q.x, q.y, q.z, q.w
    rot = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    return Pose(np.array([p.x, p.y, p.z]), rot)


class Scorer:
    """Accumulates the summary figures frame by frame (bounded memory)."""

    def __init__(self, seed: int, frames: int):
        from dpt_ros.synthetic import NUM_CLASSES, make_world

        self.world = make_world(seed)
        self.n_classes = NUM_CLASSES
        self.conf = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
        self.depth: list[dict[str, float]] = []
        self.latency: list[float] = []
        self.arrivals: list[float] = []
        self.surface: list[np.ndarray] = []
        self.keep = sorted({0, frames // 2, frames - 1})
        self.rows: list[list[np.ndarray]] = []

    def add(self, stamp: tuple[int, int], msgs: dict[str, object], arrival: float) -> dict:
        from dpt_ros.synthetic.metrics import confusion, depth_metrics
        from dpt_ros.synthetic.views import depth_rgb, side_view, splat_points

        index = len(self.depth)
        pred, gt = _image(msgs["depth"]), _image(msgs["depth_gt"])
        d = depth_metrics(pred, gt)
        self.depth.append(d)
        self.conf += confusion(_image(msgs["segmentation"]), _image(msgs["labels_gt"]),
                               self.n_classes)
        self.latency.append(arrival - (stamp[0] + stamp[1] * 1e-9))
        self.arrivals.append(arrival)
        pose = _pose(msgs["pose"])
        xyz, rgb = _cloud(msgs["points"])
        world_pts = pose.to_world(xyz[::7][np.isfinite(xyz[::7]).all(1)])
        self.surface.append(self.world.surface_distance(world_pts).astype(np.float32))
        if index in self.keep:
            image = _image(msgs["image_raw"])
            colors = rgb if rgb is not None else np.full((len(xyz), 3), 200, np.uint8)
            pts = pose.to_world(xyz)
            target = np.nanmedian(pts, axis=0) if np.isfinite(pts).any() else pose.position
            view = splat_points(pts, colors, side_view(pose, target), *image.shape[1::-1])
            vmin, vmax = (float(v) for v in np.percentile(gt, [2, 98]))
            self.rows.append([image, depth_rgb(pred, vmin, vmax), depth_rgb(gt, vmin, vmax),
                              _image(msgs["segmentation/overlay"]), view])
        return d

    def summary(self) -> dict:
        from dpt_ros.synthetic import CLASS_NAMES
        from dpt_ros.synthetic.metrics import iou_per_class, mean_iou

        n = len(self.depth)
        span = self.arrivals[-1] - self.arrivals[0] if n > 1 else 0.0
        lat = np.asarray(self.latency) * 1000.0
        surface = np.concatenate(self.surface) if self.surface else np.zeros(0)
        return {
            "frames": n,
            "fps": round((n - 1) / span, 3) if span > 0 else None,
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1),
                           "p95": round(float(np.percentile(lat, 95)), 1)},
            "depth": {k: round(float(np.nanmean([d[k] for d in self.depth])), 4)
                      for k in ("abs_rel", "rmse", "delta1")},
            "miou": round(mean_iou(self.conf), 4),
            "iou": {CLASS_NAMES[c]: (None if np.isnan(v) else round(float(v), 4))
                    for c, v in enumerate(iou_per_class(self.conf))},
            "point_to_surface_median_m": round(float(np.median(surface)), 4)
            if surface.size else None,
            "points_scored": int(surface.size),
        }


def run(args: argparse.Namespace) -> dict:
    """Start everything, collect `args.frames` frames, write the outputs, stop everything."""
    from dpt_ros.synthetic.views import grid

    out: Path = args.out
    (out / "logs").mkdir(parents=True, exist_ok=True)
    domain = args.domain_id if args.domain_id is not None else 1 + os.getpid() % 100
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_DIR.parent), env.get("PYTHONPATH")) if p)
    camera = ["-m", "dpt_ros.ros.synthetic_camera", "--ros-args", "-r", f"__ns:={CAMERA_NS}",
              "-p", f"seed:={args.seed}", "-p", f"rate:={args.rate}",
              "-p", f"width:={args.width}", "-p", f"height:={args.height}"]
    node = ["-m", "dpt_ros.ros.node", "--ros-args"]
    pf = params_file()
    if pf is not None:
        node += ["--params-file", str(pf)]
    node += ["-p", f"depth_model:={args.depth_model}", "-p",
             f"segmentation_model:={args.segmentation_model}", "-p", f"device:={args.device}",
             "-r", f"image:={CAMERA_NS}/image_raw", "-r", f"camera_info:={CAMERA_NS}/camera_info"]
    say = lambda text: print(f"[demo] {text}", flush=True)
    say(f"ROS_DOMAIN_ID={domain}; logs in {out / 'logs'}")
    children: list[Child] = []
    listener = None
    try:
        listener = Listener(domain)
        children.append(Child("dpt_node", node, env, out / "logs"))
        children.append(Child("synthetic_camera", camera, env, out / "logs"))
        say(f"started dpt_node (pid {children[0].proc.pid}) and synthetic_camera "
            f"(pid {children[1].proc.pid}); waiting for the first result")
        scorer = Scorer(args.seed, args.frames)
        start = last = time.monotonic()
        next_note = start + 5.0
        while len(scorer.depth) < args.frames:
            for child in children:
                child.check()
            for stamp, msgs, arrival in listener.pop_complete():
                if len(scorer.depth) >= args.frames:
                    break
                d = scorer.add(stamp, msgs, arrival)
                last = time.monotonic()
                say(f"frame {len(scorer.depth)}/{args.frames}  latency "
                    f"{scorer.latency[-1] * 1000:.0f} ms  AbsRel {d['abs_rel']:.3f}")
            now = time.monotonic()
            limit = args.timeout if not scorer.depth else args.stall
            if now - last > limit:
                raise DemoError(
                    f"no complete frame for {limit:.0f} s (camera frames seen: "
                    f"{listener.published}); see {out / 'logs'}")
            if now >= next_note:
                what = "waiting for dpt_node (loading models)" if not scorer.depth else "running"
                say(f"{what}: {now - start:.0f} s, camera frames seen {listener.published}")
                next_note = now + 5.0
            time.sleep(0.02)
        summary = scorer.summary()
        summary["camera_frames_seen"] = listener.published
        summary["setup"] = {"seed": args.seed, "width": args.width, "height": args.height,
                            "rate_hz": args.rate, "depth_model": str(args.depth_model),
                            "segmentation_model": str(args.segmentation_model),
                            "ros_domain_id": domain}
    finally:
        for child in reversed(children):
            child.stop()
        if listener is not None:
            listener.close()
    titles = ["input", "predicted depth", "ground-truth depth", "segmentation overlay",
              "point cloud (side view)"]
    grid(scorer.rows, titles).save(out / "grid.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Synthetic camera → dpt_node demo over real DDS.")
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    ap.add_argument("--frames", type=int, default=40, help="frames to score (default 40)")
    ap.add_argument("--seed", type=int, default=1_000_003, help="world seed (held-out)")
    ap.add_argument("--rate", type=float, default=5.0, help="camera rate (Hz)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--depth-model", default=str(WEIGHTS / "synthetic-depth"))
    ap.add_argument("--segmentation-model", default=str(WEIGHTS / "synthetic-seg"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--domain-id", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=120.0, help="s until the first frame")
    ap.add_argument("--stall", type=float, default=30.0, help="s allowed between frames")
    args = ap.parse_args(argv)
    if args.frames < 1:
        ap.error("--frames must be >= 1")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        summary = run(args)
    except DemoError as exc:
        print(f"[demo] FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("[demo] interrupted; processes stopped", file=sys.stderr, flush=True)
        return 130
    print(f"[demo] wrote {args.out / 'grid.png'} and {args.out / 'summary.json'}")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
