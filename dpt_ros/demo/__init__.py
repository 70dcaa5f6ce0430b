"""`python -m dpt_ros.demo --out demo_out [--frames N]`: the whole pipeline on this machine.

Starts `dpt_node` (with the shipped synthetic weights) and, once the node has loaded its
models, `synthetic_camera` as separate processes on a private DDS domain; listens to the
node's outputs and the camera's ground truth, and writes `<out>/grid.png` (input, predicted
and ground-truth depth on one scale in metres, relative-error map, predicted and true
classes, point cloud by class seen from beside the camera; colour bars, class legend with
IoU, the run's figures) and `<out>/summary.json` (frames, frames/s over DDS and of each model
alone, latency p50/p95, depth AbsRel/RMSE/δ<1.25, per-class IoU and mIoU against ground
truth, median distance of the published points to the true scene surfaces). Child logs go
to `<out>/logs/`. Processes are always stopped, also on errors, Ctrl-C and SIGTERM.
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

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # dpt_ros/
WEIGHTS = PACKAGE_DIR / "weights"
CAMERA_NS = "/camera"
NODE = "/dpt_node"
GT_TOPICS = ("image_raw", "depth_gt", "labels_gt", "pose")
OUT_TOPICS = ("depth", "segmentation", "segmentation/overlay", "points")
# A held-out world chosen by its ground truth alone (not by any model's score): all six
# classes are in view from the first frame of its camera path on (docs/synthetic.md).
DEMO_SEED = 1_000_291


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
        from rclpy.signals import SignalHandlerOptions
        from sensor_msgs.msg import Image, PointCloud2

        self._rclpy = rclpy
        self.context = rclpy.Context()
        # the demo stops itself on SIGINT / SIGTERM (children first, then this listener):
        # rclpy's own handlers would shut this context down under it, mid-stop
        rclpy.init(context=self.context, domain_id=domain,
                   signal_handler_options=SignalHandlerOptions.NO)
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
    """xyz (N, 3) and class ids (N,) (None without a label field) of a PointCloud2."""
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(-1, msg.point_step)
    offset = {f.name: f.offset for f in msg.fields}

    def column(name: str, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(raw[:, offset[name]:offset[name] + 4]).view(dtype)[:, 0]

    xyz = np.stack([column(c, np.float32) for c in "xyz"], 1)
    return xyz, (column("label", np.uint32) if "label" in offset else None)


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
    """Accumulates the summary figures frame by frame (bounded memory) and keeps the first,
    middle and last frame for the picture."""

    def __init__(self, seed: int, frames: int):
        from dpt_ros.synthetic import CLASS_NAMES, make_world
        from dpt_ros.synthetic.metrics import Scores

        self.world = make_world(seed)
        self.scores = Scores(CLASS_NAMES)
        self.latency: list[float] = []
        self.arrivals: list[float] = []
        self.surface: list[np.ndarray] = []
        self.keep = sorted({0, frames // 2, frames - 1})
        self.kept: list[dict] = []

    @property
    def count(self) -> int:
        return len(self.latency)

    def add(self, stamp: tuple[int, int], msgs: dict[str, object], arrival: float) -> dict:
        from dpt_ros.synthetic.metrics import confusion, mean_iou
        from dpt_ros.synthetic.views import class_colors, side_view, splat_points

        index = self.count
        pred, gt = _image(msgs["depth"]), _image(msgs["depth_gt"])
        labels, labels_gt = _image(msgs["segmentation"]), _image(msgs["labels_gt"])
        d = self.scores.add_depth(pred, gt)
        self.scores.add_labels(labels, labels_gt)
        self.latency.append(arrival - (stamp[0] + stamp[1] * 1e-9))
        self.arrivals.append(arrival)
        pose = _pose(msgs["pose"])
        xyz, cloud_labels = _cloud(msgs["points"])
        world_pts = pose.to_world(xyz[::7][np.isfinite(xyz[::7]).all(1)])
        self.surface.append(self.world.surface_distance(world_pts).astype(np.float32))
        if index in self.keep:
            image = _image(msgs["image_raw"])
            n = len(self.scores.class_names)
            table = np.concatenate([class_colors(n), np.full((1, 3), 200, np.uint8)])
            ids = np.full(len(xyz), n) if cloud_labels is None else np.minimum(cloud_labels, n)
            pts = pose.to_world(xyz)
            target = np.nanmedian(pts, axis=0) if np.isfinite(pts).any() else pose.position
            view = splat_points(pts, table[ids], side_view(pose, target), *image.shape[1::-1])
            frame_miou = mean_iou(confusion(labels, labels_gt, n))
            self.kept.append({"index": index, "image": image, "pred": pred, "gt": gt,
                              "labels_gt": labels_gt, "cloud": view,
                              "overlay": _image(msgs["segmentation/overlay"]),
                              "abs_rel": d["abs_rel"], "miou": frame_miou})
        return d

    def summary(self) -> dict:
        n = self.count
        span = self.arrivals[-1] - self.arrivals[0] if n > 1 else 0.0
        lat = np.asarray(self.latency) * 1000.0
        surface = np.concatenate(self.surface) if self.surface else np.zeros(0)
        return {
            "frames": n,
            "fps": round((n - 1) / span, 3) if span > 0 else None,
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1),
                           "p95": round(float(np.percentile(lat, 95)), 1)},
            **self.scores.summary(),
            "point_to_surface_median_m": round(float(np.median(surface)), 4)
            if surface.size else None,
            "points_scored": int(surface.size),
        }


def run(args: argparse.Namespace) -> dict:
    """Start everything, collect `args.frames` frames, write the outputs, stop everything."""
    from dpt_ros.synthetic.sheet import demo_sheet

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
             "-p", f"num_threads:={args.node_threads}",
             "-r", f"image:={CAMERA_NS}/image_raw", "-r", f"camera_info:={CAMERA_NS}/camera_info"]
    say = lambda text: print(f"[demo] {text}", flush=True)
    say(f"ROS_DOMAIN_ID={domain}; logs in {out / 'logs'}")
    children: list[Child] = []
    listener = None
    try:
        listener = Listener(domain)
        children.append(Child("dpt_node", node, env, out / "logs"))
        say(f"started dpt_node (pid {children[0].proc.pid}); waiting until it has loaded "
            "its models")
        wait_for_node(listener, children[0], args.timeout, say)
        # Started only now, so frame 0 (path time 0) meets a ready node: every run scores
        # the same stretch of the camera path, whatever the machine's load.
        children.append(Child("synthetic_camera", camera, env, out / "logs"))
        say(f"started synthetic_camera (pid {children[1].proc.pid}); waiting for the first "
            "result")
        scorer = Scorer(args.seed, args.frames)
        start = last = time.monotonic()
        next_note = start + 5.0
        while scorer.count < args.frames:
            for child in children:
                child.check()
            for stamp, msgs, arrival in listener.pop_complete():
                if scorer.count >= args.frames:
                    break
                d = scorer.add(stamp, msgs, arrival)
                last = time.monotonic()
                say(f"frame {scorer.count}/{args.frames}  latency "
                    f"{scorer.latency[-1] * 1000:.0f} ms  AbsRel {d['abs_rel']:.3f}")
            now = time.monotonic()
            limit = args.timeout if not scorer.count else args.stall
            if now - last > limit:
                raise DemoError(
                    f"no complete frame for {limit:.0f} s (camera frames seen: "
                    f"{listener.published}); see {out / 'logs'}")
            if now >= next_note:
                what = "waiting for the first result" if not scorer.count else "running"
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
    say("timing each model alone (in this process, same pipeline as the node)")
    summary["model_fps"] = model_rates(args, [k["image"] for k in scorer.kept])
    demo_sheet(scorer.kept, summary).save(out / "grid.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def wait_for_node(listener: Listener, child: Child, timeout: float, say) -> None:
    """Until dpt_node advertises its outputs (it creates its publishers after loading the
    models); DemoError if it dies or takes longer than `timeout` seconds."""
    start = time.monotonic()
    next_note = start + 5.0
    while not any(listener.node.count_publishers(f"{NODE}/{t}") for t in OUT_TOPICS):
        child.check()
        now = time.monotonic()
        if now - start > timeout:
            raise DemoError(f"dpt_node did not advertise its outputs within {timeout:.0f} s; "
                            f"see {child.log}")
        if now >= next_note:
            say(f"waiting for dpt_node (loading models): {now - start:.0f} s")
            next_note = now + 5.0
        time.sleep(0.05)


def model_rates(args: argparse.Namespace, images: list[np.ndarray]) -> dict:
    """Frames per second of each model alone through the core pipeline (after the DDS run,
    so nothing else of the demo competes), with the outputs the node computes for it here."""
    import torch

    from dpt_ros.synthetic.evaluation import model_fps

    if args.node_threads:
        torch.set_num_threads(args.node_threads)  # as the node ran
    rates = {task: round(model_fps(model, task, images, device=args.device), 2)
             for task, model in (("depth", args.depth_model),
                                 ("segmentation", args.segmentation_model)) if model}
    return {**rates, "torch_threads": torch.get_num_threads(),
            "measured": "in-process Pipeline.process per frame, median, camera resolution"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Synthetic camera → dpt_node demo over real DDS.")
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    ap.add_argument("--frames", type=int, default=40, help="frames to score (default 40)")
    ap.add_argument("--seed", type=int, default=DEMO_SEED, help="world seed (held-out)")
    ap.add_argument("--rate", type=float, default=5.0, help="camera rate (Hz)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--depth-model", default=str(WEIGHTS / "synthetic-depth"))
    ap.add_argument("--segmentation-model", default=str(WEIGHTS / "synthetic-seg"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--node-threads", type=int, default=1,
                    help="dpt_node's torch CPU threads (0 = torch default). 1: camera, node "
                         "and demo share the CPU, and torch threads that wait for each other "
                         "on a busy 2-core machine cost more than they gain")
    ap.add_argument("--domain-id", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="s for the node to load its models, and again for the first frame")
    ap.add_argument("--stall", type=float, default=30.0, help="s allowed between frames")
    ap.add_argument("--check-classes", action="store_true",
                    help="exit 1 unless summary.json holds an IoU for every class")
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
    missing = [name for name, iou in summary["iou"].items() if iou is None]
    if args.check_classes and missing:
        print(f"[demo] FAILED: no IoU for {', '.join(missing)} (not in view, never "
              "predicted)", file=sys.stderr, flush=True)
        return 1
    return 0
