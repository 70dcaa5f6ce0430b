"""`dpt-ros fleet` against `dpt-ros bag` on the same bags, in one run.

Scenarios (each a fresh process, as a user runs them):
- `bag serial`: `dpt-ros bag` bag after bag (one process per bag);
- `fleet 1 worker`: `dpt-ros fleet --workers 1`: the fixed start-up (local Ray + the actor
  + its model) is reported apart from the processing;
- `2 plain processes`: this machine's ceiling for two workers: two concurrent sequences of
  `dpt-ros bag`, each over half of the bags;
- `fleet 2 workers`: `--workers 2`;
- `multi-node 1 / 2 workers`: a Ray cluster of two simulated nodes (1 CPU each,
  `ray.cluster_utils.Cluster` on 127.0.0.1) joined with `--address`, 1 then 2 workers.

"processing frames/s" excludes what happens once per process (Python + torch import, model
load; for the fleet: Ray and actor start-up): the bag tool's own "processed N images in X s"
summed per process, the fleet's `processing_s` from its summary JSON. MB/s are input bytes
read and output bytes written over the processing time. The model is a random-weight metric
DPT (`bench_bag.make_checkpoint`), the bags are `bench_bag.make_bag`'s (rgb8 + camera_info).
Every process and worker runs one torch thread (`num_threads: 1`): on a shared 2-core
machine two spinning torch threads per process fall 4-7x behind one (measured here).

Run: `python benchmarks/bench_fleet.py [--bags 4] [--frames 24] [--size 240x320]
[--model tiny] [--storage mcap]`; prints a Markdown table (and `--json FILE`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bag import _size, make_bag, make_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["--image-topic", "/cam/image_raw", "--camera-info-topic", "/cam/camera_info"]
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dpt_ros.offline.cli", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc


def _size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bag_sequence(bags: list[Path], out: Path, model: list[str]) -> dict:
    """`dpt-ros bag` over `bags` one after another; wall and the tool's own processing."""
    t0 = time.perf_counter()
    processing = 0.0
    frames = 0
    for bag in bags:
        proc = _cli(["bag", bag, out / bag.name, *TOPICS, *model])
        m = re.search(r"processed (\d+)/\d+ images in ([\d.]+) s", proc.stderr)
        frames += int(m.group(1))
        processing += float(m.group(2))
    return {"wall_s": time.perf_counter() - t0, "processing_s": processing, "frames": frames,
            "read": sum(_size_of(b) for b in bags), "written": _size_of(out)}


def serial(bags: list[Path], out: Path, model: list[str]) -> dict:
    r = bag_sequence(bags, out, model)
    r["startup_s"] = None
    return r


def plain_two(bags: list[Path], out: Path, model: list[str]) -> dict:
    """Two concurrent sequences over halves of the bags; processing = the longer one."""
    halves = [bags[0::2], bags[1::2]]
    results: list[dict] = [{}, {}]

    def go(k: int) -> None:
        (out / str(k)).mkdir(parents=True)
        results[k] = bag_sequence(halves[k], out / str(k), model)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=go, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"wall_s": time.perf_counter() - t0, "startup_s": None,
            "processing_s": max(r["processing_s"] for r in results),
            "frames": sum(r["frames"] for r in results),
            "read": sum(r["read"] for r in results), "written": _size_of(out)}


def fleet(bags_dir: Path, out: Path, model: list[str], extra: list[str]) -> dict:
    t0 = time.perf_counter()
    _cli(["fleet", bags_dir, out, *TOPICS, *model, *extra])
    wall = time.perf_counter() - t0
    (summary,) = (out / "fleet_runs").glob("*.json")
    s = json.loads(summary.read_text())
    return {"wall_s": wall, "startup_s": s["startup_s"], "processing_s": s["processing_s"],
            "frames": s["frames"], "read": s["mb_read"] * 1e6, "written": s["mb_written"] * 1e6,
            "utilisation": [w["utilisation"] for w in s["workers"]]}


def start_cluster(nodes: int):
    """A simulated multi-node Ray cluster on 127.0.0.1 (1 CPU per node) in this process."""
    os.environ.update(LOOPBACK_ENV)
    temp = tempfile.mkdtemp(dir="/tmp", prefix="rt")
    os.makedirs(os.path.join(temp, "ray"))
    os.environ["RAY_TMPDIR"] = temp
    from dpt_ros.offline.fleet.cluster import LOOPBACK, OBJECT_STORE_BYTES, import_ray

    import_ray(local=True)
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES,
            "node_ip_address": LOOPBACK}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(**node)
    cluster.wait_for_nodes()
    return cluster, temp


def _fps(r: dict) -> float:
    return r["frames"] / r["processing_s"]


def _median_run(rs: list[dict]) -> dict:
    """Per-figure medians of repeated runs of one scenario."""
    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    out = {"frames": rs[0]["frames"]}
    for key in ("wall_s", "processing_s", "read", "written"):
        out[key] = med([r[key] for r in rs])
    starts = [r["startup_s"] for r in rs if r["startup_s"] is not None]
    out["startup_s"] = med(starts) if starts else None
    out["fps"] = med([_fps(r) for r in rs])
    out["fps_wall"] = med([r["frames"] / r["wall_s"] for r in rs])
    out["mbps_read"] = med([r["read"] / 1e6 / r["processing_s"] for r in rs])
    out["mbps_written"] = med([r["written"] / 1e6 / r["processing_s"] for r in rs])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bags", type=int, default=4)
    p.add_argument("--frames", type=int, default=24, help="frames per bag")
    p.add_argument("--size", type=_size, default=(240, 320), help="HxW of the images")
    p.add_argument("--model", default="tiny")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="mcap")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3, help="each scenario this many times, in "
                   "rotated order; medians reported (the machine may be shared)")
    p.add_argument("--skip-multinode", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench_fleet_"))
    runs: dict[str, list[dict]] = {}
    try:
        ckpt = make_checkpoint(args.model, root / "ckpt")
        bags_dir = root / "bags"
        bags_dir.mkdir()
        bags = []
        for k in range(args.bags):
            bags.append(bags_dir / f"bag{k}")
            make_bag(bags[-1], args.storage, args.frames, *args.size)
        params = root / "params.yaml"  # one torch thread per process / worker, everywhere
        params.write_text("dpt_node:\n  ros__parameters:\n    num_threads: 1\n"
                          "    device: cpu\n")
        model = ["--depth-model", ckpt, "--params", params, "--batch-size",
                 str(args.batch_size)]

        def fresh(name: str) -> Path:
            out = root / "out" / name
            shutil.rmtree(root / "out", ignore_errors=True)
            out.parent.mkdir()
            return out

        scenarios = {
            "bag serial": lambda: serial(bags, fresh("s"), model),
            "fleet 1 worker": lambda: fleet(bags_dir, fresh("f1"), model, ["--workers", "1"]),
            "2 plain processes": lambda: plain_two(bags, fresh("p2"), model),
            "fleet 2 workers": lambda: fleet(bags_dir, fresh("f2"), model, ["--workers", "2"]),
        }
        cluster = temp = None
        if not args.skip_multinode:
            cluster, temp = start_cluster(2)
            for n in (1, 2):
                scenarios[f"multi-node (2 simulated nodes), {n} worker(s)"] = (
                    lambda n=n: fleet(bags_dir, fresh(f"m{n}"), model,
                                      ["--workers", str(n), "--address", cluster.address]))
        names = list(scenarios)
        try:
            for r in range(args.rounds):  # rotated order: the machine's load drifts
                for name in names[r % len(names):] + names[:r % len(names)]:
                    runs.setdefault(name, []).append(scenarios[name]())
                    print(f"round {r + 1}: {name}: {_fps(runs[name][-1]):.1f} frames/s",
                          file=sys.stderr)
        finally:
            if cluster is not None:
                cluster.shutdown()
                shutil.rmtree(temp, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    rows = {name: _median_run(rs) for name, rs in runs.items()}
    serial_fps = rows["bag serial"]["fps"]
    ceiling = rows["2 plain processes"]["fps"]
    print(f"{args.bags} bags x {args.frames} frames {args.size[0]}x{args.size[1]} rgb8 "
          f"({args.storage}), '{args.model}' metric DPT, batch {args.batch_size}, all outputs; "
          f"{platform.machine()} {os.cpu_count()} CPUs; Python {platform.python_version()}; "
          f"{datetime.date.today()}; median of {args.rounds} round(s), frames/s range "
          "in brackets")
    print()
    print("| run | frames | wall s | start-up s | processing s | frames/s (processing) | "
          "frames/s (wall) | vs reference | MB/s read | MB/s written |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        ref = ""
        if name.startswith("fleet 1"):
            ref = f"{r['fps'] / serial_fps:.2f}x bag serial"
        elif name.startswith("fleet 2"):
            ref = f"{r['fps'] / ceiling:.2f}x 2 plain"
        elif name.startswith("multi-node") and name.endswith("2 worker(s)"):
            one = rows.get("multi-node (2 simulated nodes), 1 worker(s)")
            ref = f"{r['fps'] / one['fps']:.2f}x 1 worker" if one else ""
        start = "" if r["startup_s"] is None else f"{r['startup_s']:.1f}"
        lo, hi = min(map(_fps, runs[name])), max(map(_fps, runs[name]))
        print(f"| {name} | {r['frames']} | {r['wall_s']:.1f} | {start} | "
              f"{r['processing_s']:.1f} | {r['fps']:.1f} [{lo:.1f}–{hi:.1f}] | "
              f"{r['fps_wall']:.1f} | {ref} | "
              f"{r['mbps_read']:.1f} | {r['mbps_written']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, default=str))


if __name__ == "__main__":
    main()
