"""The demo's command line and its run: start the node, then the camera, collect and score
`--frames` complete frames, stop both, time each model alone, write grid.png and
summary.json."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from dpt_ros.demo import DEMO_SEED, PACKAGE_DIR, WEIGHTS, DemoError
from dpt_ros.demo.collect import Listener, complete_frames, wait_for_node
from dpt_ros.demo.picture import kept_indices, picture_frame, write_picture
from dpt_ros.demo.processes import Child, camera_args, node_args
from dpt_ros.demo.scoring import Scorer, frame_arrays, model_rates


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def run(args: argparse.Namespace) -> dict:
    """Start everything, collect `args.frames` frames, write the outputs, stop everything."""
    out: Path = args.out
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    domain = args.domain_id if args.domain_id is not None else 1 + os.getpid() % 100
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_DIR.parent), env.get("PYTHONPATH")) if p)
    say(f"ROS_DOMAIN_ID={domain}; logs in {logs}")
    children: list[Child] = []
    listener = None
    scorer = Scorer(args.seed)
    keep, kept = kept_indices(args.frames), []
    try:
        listener = Listener(domain)
        children.append(Child("dpt_node", node_args(args), env, logs))
        say(f"started dpt_node (pid {children[0].proc.pid}); waiting until it has loaded "
            "its models")
        wait_for_node(listener, children[0], args.timeout, say)
        # Started only now, so frame 0 (path time 0) meets a ready node: every run scores
        # the same stretch of the camera path, whatever the machine's load.
        children.append(Child("synthetic_camera", camera_args(args), env, logs))
        say(f"started synthetic_camera (pid {children[1].proc.pid}); waiting for the first "
            "result")
        for stamp, msgs, arrival in complete_frames(listener, children, args.frames,
                                                    args.timeout, args.stall, logs, say):
            index = scorer.count
            frame = frame_arrays(msgs)
            d = scorer.add(stamp, frame, arrival)
            if index in keep:
                kept.append(picture_frame(index, msgs, frame, d["abs_rel"]))
            say(f"frame {scorer.count}/{args.frames}  latency "
                f"{scorer.latency[-1] * 1000:.0f} ms  AbsRel {d['abs_rel']:.3f}")
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
    summary["model_fps"] = model_rates(args, [k["image"] for k in kept])
    write_picture(kept, summary, out / "grid.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def parser() -> argparse.ArgumentParser:
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
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
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
