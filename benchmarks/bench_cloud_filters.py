"""Cost of the costmap filters (`core.pointcloud.filters`) per frame, against the unfiltered cloud
and against Open3D on the same points.

Clouds: frames of the synthetic world (exact depth, colours and classes) at 640×480 and
1280×720, back-projected as the pipeline does. Timed, in one run, alternating:

  unfiltered      pack_cloud: organised H×W cloud with rgb + label (what the node does today)
  filtered        flying pixels (edge_threshold 0.05) + class filter (floor excluded) +
                  voxel grid 0.05 m, all on the tensor's device, packed
  voxel only      the same without edge / class filters (pack_cloud(voxel_size=0.05))
  open3d voxel    PointCloud.voxel_down_sample(0.05) on the same valid points (colours too)
  open3d chain    voxel_down_sample(0.05) + remove_statistical_outlier(20, 2.0) on its output
  open3d SOR      remove_statistical_outlier(20, 2.0) on the whole cloud (the issue's figure)

plus, with `--node`, the node's own per-frame cost (`Pipeline.process` of the shipped
synthetic checkpoints, both models, ~/points wanted) with the filters off and on: the share
the filters add to a frame. Medians (or `--stat min`) of `--repeat` runs; torch on
`--threads` threads.

    python benchmarks/bench_cloud_filters.py [--repeat 15] [--node] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's dpt_ros

from dpt_ros.core.camera.geometry import backproject  # noqa: E402
from dpt_ros.core.pointcloud.filters import class_lut, keep_mask  # noqa: E402
from dpt_ros.core.pointcloud.pack import pack_cloud  # noqa: E402
from dpt_ros.synthetic.classes import FLOOR  # noqa: E402
from dpt_ros.synthetic.render import render_path_frame  # noqa: E402

VOXEL, EDGE = 0.05, 0.05


STAT = statistics.median  # --stat min: the least disturbed run on a shared machine


def median_ms(fn: Callable[[], object], repeat: int, sync: Callable[[], None]) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return STAT(times)


def cloud_case(width: int, height: int, repeat: int, device: torch.device,
               sync: Callable[[], None]) -> dict[str, float | int]:
    frame = render_path_frame(seed=1000291, index=5, width=width, height=height)
    depth = torch.from_numpy(frame.depth).to(device)
    rgb = torch.from_numpy(frame.rgb).to(device)
    labels = torch.from_numpy(frame.labels.astype(np.int64)).to(device)
    xyz = backproject(depth, frame.intrinsics)
    lut = class_lut((), (FLOOR,), 6, device)

    def unfiltered():
        return pack_cloud(xyz, rgb, labels)

    def filtered():
        keep = keep_mask(xyz[..., 2], EDGE, labels, lut)
        return pack_cloud(xyz, rgb, labels, keep=keep, voxel_size=VOXEL)

    def voxel_only():
        return pack_cloud(xyz, rgb, labels, voxel_size=VOXEL)

    out: dict[str, float | int] = {
        "unfiltered_ms": median_ms(unfiltered, repeat, sync),
        "filtered_ms": median_ms(filtered, repeat, sync),
        "voxel_only_ms": median_ms(voxel_only, repeat, sync),
        "points_in": int(np.isfinite(frame.depth).sum()),
        "points_filtered": filtered().width,
        "points_voxel_only": voxel_only().width,
    }
    try:
        import open3d as o3d
    except ImportError as err:  # not installed, or its libusb missing
        print(f"open3d not available ({err}); its columns are left out", file=sys.stderr)
        return out
    valid = np.isfinite(frame.depth).reshape(-1)
    pts = xyz.cpu().reshape(-1, 3).numpy()[valid].astype(np.float64)
    colors = frame.rgb.reshape(-1, 3)[valid] / 255.0
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    pcd.colors = o3d.utility.Vector3dVector(colors)
    no_sync = lambda: None
    out["open3d_voxel_ms"] = median_ms(lambda: pcd.voxel_down_sample(VOXEL), repeat, no_sync)
    out["open3d_chain_ms"] = median_ms(
        lambda: pcd.voxel_down_sample(VOXEL).remove_statistical_outlier(20, 2.0), repeat,
        no_sync)
    out["open3d_sor_full_ms"] = median_ms(lambda: pcd.remove_statistical_outlier(20, 2.0),
                                          max(1, repeat // 5), no_sync)
    out["open3d_voxel_points"] = len(pcd.voxel_down_sample(VOXEL).points)
    return out


def node_case(repeat: int, device: str) -> dict[str, float]:
    """Pipeline.process at 640×480 with both shipped models, ~/points wanted: filters off /
    on (median ms per frame)."""
    from dpt_ros.config.settings import PipelineSettings
    from dpt_ros.core.pipeline.frame import Frame
    from dpt_ros.core.pipeline.pipeline import Pipeline

    weights = ROOT / "dpt_ros" / "weights"
    p = Pipeline(depth_model=str(weights / "synthetic-depth"),
                 segmentation_model=str(weights / "synthetic-seg"), device=device)
    frame = render_path_frame(seed=1000291, index=5, width=640, height=480)
    frames = [Frame(frame.rgb, frame.intrinsics)]
    off = PipelineSettings()
    on = PipelineSettings(pointcloud_voxel_size=VOXEL, pointcloud_edge_threshold=EDGE,
                          pointcloud_exclude_classes=("floor",))
    times: dict[str, list[float]] = {"off": [], "on": []}
    for settings in (off, on):  # warm both
        p.settings = settings
        p.process(frames, {"points"})
    for _ in range(repeat):  # alternating, so load changes hit both alike
        for name, settings in (("off", off), ("on", on)):
            p.settings = settings
            t0 = time.perf_counter()
            p.process(frames, {"points"})
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {f"node_{k}_ms": STAT(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--node", action="store_true", help="also the node's per-frame cost")
    parser.add_argument("--stat", choices=("median", "min"), default="median")
    args = parser.parse_args()
    global STAT
    STAT = min if args.stat == "min" else statistics.median
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__}, {args.threads} threads, device {device}, "
          f"{args.stat} of {args.repeat}, load average {os.getloadavg()[0]:.1f}")
    for width, height in ((640, 480), (1280, 720)):
        r = cloud_case(width, height, args.repeat, device, sync)
        added = r["filtered_ms"] - r["unfiltered_ms"]
        print(f"\n{width}x{height}: {r['points_in']} valid points")
        print(f"  unfiltered (organised)  {r['unfiltered_ms']:8.1f} ms")
        print(f"  filtered (edge+class+voxel) {r['filtered_ms']:8.1f} ms "
              f"({added:+.1f} ms), {r['points_filtered']} points")
        print(f"  voxel only              {r['voxel_only_ms']:8.1f} ms, "
              f"{r['points_voxel_only']} points")
        if "open3d_voxel_ms" in r:
            print(f"  open3d voxel            {r['open3d_voxel_ms']:8.1f} ms, "
                  f"{r['open3d_voxel_points']} points "
                  f"(ours / open3d: {r['voxel_only_ms'] / r['open3d_voxel_ms']:.2f})")
            print(f"  open3d voxel + SOR      {r['open3d_chain_ms']:8.1f} ms "
                  f"(open3d / ours filtered: {r['open3d_chain_ms'] / r['filtered_ms']:.1f}x)")
            print(f"  open3d SOR, full cloud  {r['open3d_sor_full_ms']:8.1f} ms "
                  f"(/ ours filtered: {r['open3d_sor_full_ms'] / r['filtered_ms']:.0f}x)")
    if args.node:
        n = node_case(args.repeat, args.device)
        print(f"\nnode per frame, 640x480, both models, ~/points: filters off "
              f"{n['node_off_ms']:.1f} ms, on {n['node_on_ms']:.1f} ms "
              f"({(n['node_on_ms'] / n['node_off_ms'] - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
