"""dpt_node over real DDS at a camera's rate: latency from publish to receipt of ~/points
(p50/p99) and frames dropped, against the in-process pipeline time of the same run.

The node is a subprocess started exactly as the launch file starts it (`dpt_node --ros-args
--params-file config/dpt.yaml -p ...`); this process is the camera (uint8 rgb8 frames of
`--size` at `--rate` Hz plus camera_info, reliable: the pip Fast DDS loses best-effort
messages of ~1 MB and more, docs/ros_node.md) and the consumer (a reliable subscriber on
~/points, what rviz or a planner would be). Both sides read the same monotonic clock, so
latency = arrival - publish. Dropped = published - clouds received: the node keeps only the
newest frame when the model is slower than the camera, so drops measure lost throughput.

The baseline is `Pipeline.process` on the same frame in this process (no ROS, no DDS): the
ratios say what the node and the transport add: the node's own latency (reception →
publication, from its /diagnostics) over the in-process time is what the node adds itself;
publish → ~/points over it adds both transports. Several sizes and both publish paths
(`serialized_publish` true / false) can be measured in one run (`--sizes`, `--serialized
both`), each against its own in-process baseline. Models: random weights at a real config
(`benchmarks/bench_e2e.py` cases) or the shipped synthetic checkpoint (`--case synthetic`).

Run: `python benchmarks/bench_node_dds.py [--case DA-V2-Metric-Small-518] [--sizes 480x640
720x1280] [--serialized true|false|both] [--rate 30] [--seconds 10] [--device auto]
[--dtype bfloat16] [--compile reduce-overhead] [--stride 1]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "test"), str(REPO / "benchmarks")]

from _node_util import (  # noqa: E402
    NodeProcess,
    Peer,
    camera_info_msg,
    camera_rgb,
    diagnostics_values,
    domain_id,
    image_msg,
    node_command,
    ros_env,
    send_until,
    stamp_of,
    wait_ready,
)
from bench_e2e import CASES, make_checkpoint  # noqa: E402

from dpt_ros.core.camera.geometry import Intrinsics  # noqa: E402
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline  # noqa: E402
from dpt_ros.demo import WEIGHTS  # noqa: E402

IMAGE, INFO, POINTS = "/cam/image_raw", "/cam/camera_info", "/dpt_node/points"
FIRST = 1000  # stamp.sec of the first measured frame; warm-up frames come before it


def checkpoint(case: str, tmp: Path) -> str:
    if case == "synthetic":
        return str(WEIGHTS / "synthetic-depth")
    return str(make_checkpoint(CASES[case], tmp))


def node_params(args: argparse.Namespace, model: str, threads: int) -> dict:
    return {
        "depth_model": model, "device": args.device, "dtype": args.dtype,
        "compile": args.compile, "num_threads": threads, "diagnostics_period": 0.5,
        # relative models: any calibration, so that ~/points (metric) is published
        "depth.scale": 1.0, "depth.shift": 0.1,
        "pointcloud.stride": args.stride,
        "serialized_publish": args.serialized,
    }


def in_process_ms(args: argparse.Namespace, model: str, frame: Frame, repeat: int) -> float:
    """Median Pipeline.process time for the points output: the baseline."""
    from dpt_ros.config.params_file import pipeline_kwargs_from_params

    pipe = Pipeline(**pipeline_kwargs_from_params(node_params(args, model, 0)))
    for _ in range(3):
        pipe.process([frame], {"points"})
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        pipe.process([frame], {"points"})
        times.append(time.perf_counter() - start)
    del pipe
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return float(np.median(times) * 1e3)


class Camera:
    """Publishes frames stamped (sec, 0) and remembers when each went out."""

    def __init__(self, peer: Peer, height: int, width: int) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.image = peer.publisher(Image, IMAGE, qos)
        self.info = peer.publisher(CameraInfo, INFO, qos)
        k = Intrinsics.from_hfov(width, height, 70.0)
        self.info_msg = camera_info_msg(k.fx, k.fy, k.cx, k.cy, width, height, (0, 0), "cam")
        # a few distinct frames, re-stamped: building 2.7 MB messages is not the camera's cost
        self._frames = [image_msg(camera_rgb(height, width, seed=i), "rgb8", (0, 0), "cam")
                        for i in range(3)]
        self.sent: dict[tuple[int, int], float] = {}

    def message(self, sec: int):
        msg = self._frames[sec % len(self._frames)]
        msg.header.stamp.sec = self.info_msg.header.stamp.sec = sec
        return msg

    def publish(self, sec: int) -> None:
        msg = self.message(sec)
        self.info.publish(self.info_msg)
        self.sent[(sec, 0)] = time.monotonic()
        self.image.publish(msg)

    def stream(self, first: int, n: int, rate: float) -> None:
        start = time.monotonic()
        for i in range(n):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            self.publish(first + i)


def measure(args: argparse.Namespace, model: str, log_dir: Path) -> dict:
    height, width = (int(v) for v in args.size.split("x"))
    domain = domain_id(f"bench_node_dds{args.case}{args.size}{args.serialized}{args.stride}")
    env = ros_env(domain)
    path = "serialized" if args.serialized else "object"
    log = log_dir / f"dpt_node_{args.size}_stride{args.stride}_{path}_{args.compile}.log"
    proc = NodeProcess(node_command(node_params(args, model, args.threads)), env, log)
    peer = Peer(domain, name="bench_camera")
    try:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import PointCloud2

        wait_ready(peer, proc, IMAGE, timeout=600.0)
        camera = Camera(peer, height, width)
        points = peer.collect(PointCloud2, POINTS)
        diag = peer.collect(DiagnosticArray, "/diagnostics")
        # matched, first frame of this size through (compiles here, if compiling)
        send_until([(camera.info, camera.info_msg), (camera.image, camera.message(1))],
                   [points], (1, 0), timeout=900.0, period=2.0)
        camera.stream(2, int(args.rate * args.warmup_seconds), args.rate)  # steady state
        time.sleep(1.0)
        n = int(args.rate * args.seconds)
        camera.stream(FIRST, n, args.rate)
        time.sleep(args.drain)
        arrivals = {stamp_of(m): t for m, t in zip(points.msgs, points.times)}
        lat = np.array([arrivals[s] - camera.sent[s] for s in camera.sent
                        if s[0] >= FIRST and s in arrivals]) * 1e3
        values = diagnostics_values(diag.msgs[-1]) if diag.msgs else {}
        return {"sent": n, "received": len(lat), "lat": lat, "diag": values}
    finally:
        peer.close()
        code = proc.stop()
        if code not in (0, None):
            print(f"dpt_node exited with {code}; log:\n{proc.log()[-3000:]}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="DA-V2-Metric-Small-518", choices=[*CASES, "synthetic"])
    ap.add_argument("--sizes", nargs="+", default=None, help="camera frames HxW (one run each)")
    ap.add_argument("--size", default="720x1280", help="one camera frame HxW (without --sizes)")
    ap.add_argument("--serialized", default="true", choices=("true", "false", "both"),
                    help="the node's serialized_publish (both: one run each, same baseline)")
    ap.add_argument("--rate", type=float, default=30.0, help="camera Hz")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured stream length")
    ap.add_argument("--warmup-seconds", type=float, default=2.0)
    ap.add_argument("--drain", type=float, default=3.0, help="seconds to wait after the last")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    ap.add_argument("--compile", default=None,
                    help="default: reduce-overhead on CUDA, none on CPU")
    ap.add_argument("--stride", type=int, default=1, help="pointcloud.stride (1: organised)")
    ap.add_argument("--strides", type=int, nargs="+", default=None,
                    help="several pointcloud.stride values, one node run each")
    ap.add_argument("--threads", type=int, default=0, help="node's torch CPU threads (0: all)")
    ap.add_argument("--baseline-repeat", type=int, default=10)
    args = ap.parse_args()
    cuda = args.device != "cpu" and torch.cuda.is_available()
    args.dtype = args.dtype or ("bfloat16" if cuda else "float32")
    args.compile = args.compile or ("reduce-overhead" if cuda else "none")
    args.threads = args.threads or torch.get_num_threads()
    modes = {"true": [True], "false": [False], "both": [True, False]}[args.serialized]
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name() if cuda else 'CPU'}; {args.case} {args.dtype} "
          f"compile={args.compile}; rgb8 at {args.rate:g} Hz for {args.seconds:g} s, reliable; "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = checkpoint(args.case, Path(tmp))
        logs = Path(os.environ.get("OUT") or tmp)  # the node's logs, kept where asked
        logs.mkdir(parents=True, exist_ok=True)
        for size in args.sizes or [args.size]:
            args.size = size
            height, width = (int(v) for v in size.split("x"))
            frame = Frame(camera_rgb(height, width), Intrinsics.from_hfov(width, height, 70.0))
            for stride in args.strides or [args.stride]:
                args.stride = stride
                args.serialized = modes[0]
                base = in_process_ms(args, model, frame, args.baseline_repeat)
                for serialized in modes:
                    args.serialized = serialized
                    rows.append((size, stride, serialized, base, measure(args, model, logs)))
                    print(f"# {size} stride {stride} serialized={serialized}: "
                          f"{rows[-1][-1]['diag'].get('latency_p50_ms', '?')} ms node p50",
                          flush=True)
    print("| case | camera | cloud stride | publish path | in-process p50 ms | node's own latency "
          "p50 / p95 ms | node / in-process | publish→~/points p50 / p99 ms | sent | received "
          "| dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size, stride, serialized, base, r in rows:
        lat, d = r["lat"], r["diag"]
        p50, p99 = (np.percentile(lat, q) if len(lat) else float("nan") for q in (50, 99))
        own = float(d.get("latency_p50_ms", "nan"))
        path = "serialized" if serialized else "message objects"
        print(f"| {args.case} | {size} | {stride} | {path} | {base:.1f} | {own:.1f} / "
              f"{d.get('latency_p95_ms', '?')} | {own / base:.2f}x | {p50:.1f} / {p99:.1f} | "
              f"{r['sent']} | {r['received']} | {r['sent'] - r['received']} |")


if __name__ == "__main__":
    main()
