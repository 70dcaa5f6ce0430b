"""End-to-end frame time of the processing core: a uint8 camera frame on the host in,
metric depth + colorized depth + PointCloud2 bytes on the host out.

Random weights at the real configs (Depth-Anything-V2-Metric-Indoor-Small at 518,
DPT-Hybrid-384, DPT-Large-384; relative models get a depth scale so the metric path and the
cloud are exercised). Each case runs the fp32 eager pipeline (the baseline) and the
configured fast path (`--dtype`, `--compile`) in the same run and prints p50/p99 and the
ratio. On CUDA the frame time is taken around `Pipeline.process`, which ends with the host
copies, so it is the true host-to-host latency.

Run: `python benchmarks/bench_e2e.py [--cases ...] [--repeat N] [--dtype bfloat16]
[--compile reduce-overhead] [--size 720x1280]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "test"), str(REPO / "test" / "model")]

from _model_util import randomize  # noqa: E402
from test_real_configs import CONFIGS  # noqa: E402

from dpt_ros.core.camera.geometry import Intrinsics  # noqa: E402
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline, PipelineSettings  # noqa: E402
from dpt_ros.model import DepthAnythingForDepthEstimation, DPTConfig, DPTForDepthEstimation  # noqa: E402
from dpt_ros.model.checkpoint import save_model  # noqa: E402

PROCESSORS = {
    "dpt": {"do_resize": True, "size": {"height": 384, "width": 384}, "keep_aspect_ratio": False,
            "ensure_multiple_of": 1, "resample": 2, "do_rescale": True,
            "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5] * 3,
            "image_std": [0.5] * 3, "image_processor_type": "DPTImageProcessor"},
    "depth_anything": {"do_resize": True, "size": {"height": 518, "width": 518},
                       "keep_aspect_ratio": True, "ensure_multiple_of": 14, "resample": 3,
                       "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                       "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
                       "image_processor_type": "DPTImageProcessor"},
}
CASES = {
    "DA-V2-Metric-Small-518": "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
    "DPT-Hybrid-384": "Intel/dpt-hybrid-midas",
    "DPT-Large-384": "Intel/dpt-large",
}
WANT = {"depth", "depth_colorized", "points"}


def make_checkpoint(repo: str, root: Path) -> Path:
    config = DPTConfig.from_dict(CONFIGS[repo])
    cls = (DepthAnythingForDepthEstimation if config.model_type == "depth_anything"
           else DPTForDepthEstimation)
    out = save_model(randomize(cls(config).eval()), root / repo.replace("/", "--"))
    (out / "preprocessor_config.json").write_text(json.dumps(PROCESSORS[config.model_type]))
    return out


def frame_times(pipe: Pipeline, frame: Frame, repeat: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame milliseconds and the last frame's depth (metres, host)."""
    for _ in range(3):  # warm-up: allocator, cuDNN autotune, compilation, graph capture
        pipe.process([frame], WANT)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        (result,) = pipe.process([frame], WANT)
        times.append(time.perf_counter() - start)
        assert result.points is not None and result.depth_colorized is not None
    return np.array(times) * 1e3, result.depth.copy()


def depth_error(depth: np.ndarray, ref: np.ndarray, relative_model: bool,
                tolerance: float | None = None) -> str:
    """max |Δ| / max |ref| and the median relative error over pixels valid in both. For a
    relative model on inverse depth (affine in its output): depth = 1 / (s·pred + t) has a
    pole where s·pred + t → 0, which would turn tiny output differences into any depth.
    With `tolerance`: a verdict on the median relative error, and no NaN / inf where the
    reference is valid (the half-precision guard's promise)."""
    ok = np.isfinite(depth) & np.isfinite(ref) & (ref > 0) & (depth > 0)
    if not ok.any():
        return "no valid pixels"
    d, r = depth[ok].astype(np.float64), ref[ok].astype(np.float64)
    if relative_model:
        d, r = 1.0 / d, 1.0 / r
    median = np.median(np.abs(d - r) / np.abs(r))
    text = f"{np.abs(d - r).max() / np.abs(r).max():.1e} / {median:.1e}"
    if tolerance is not None:
        lost = int((np.isfinite(ref) & ~np.isfinite(depth)).sum())
        verdict = "within" if median <= tolerance and lost == 0 else "OUTSIDE"
        text += f" ({verdict} {tolerance:g}; {lost} pixels lost)"
    return text


def profile(pipe: Pipeline, frame: Frame, frames: int = 10) -> None:
    """Where a frame's time goes: device kernel time against wall time, top operators."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(frames):
            pipe.process([frame], WANT)
        wall = (time.perf_counter() - start) / frames * 1e3
    events = prof.key_averages()
    kernel = sum(e.self_device_time_total for e in events) / frames / 1e3
    print(f"profile: {wall:.2f} ms/frame wall, {kernel:.2f} ms/frame of device time "
          f"(kernels + copies)")
    print(events.table(sort_by="self_device_time_total", row_limit=18, max_name_column_width=60))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default=None, help="fast path dtype (default: bfloat16 on CUDA)")
    ap.add_argument("--compile", default=None, help="fast path compile mode (default: "
                    "reduce-overhead on CUDA, none on CPU)")
    ap.add_argument("--size", default="720x1280", help="camera frame HxW")
    ap.add_argument("--paths", nargs="+", metavar="DTYPE:COMPILE",
                    help="paths to time, the first is the reference (default: float32:none "
                    "and the fast path)")
    ap.add_argument("--profile", action="store_true", help="CUDA: profile the last path")
    ap.add_argument("--tolerance", type=float, default=None,
                    help="verdict: median relative depth error of each path vs the first")
    args = ap.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    cuda = args.device != "cpu" and torch.cuda.is_available()
    fast_dtype = args.dtype or ("bfloat16" if cuda else "float32")
    fast_compile = args.compile or ("reduce-overhead" if cuda else "none")
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}, threads {torch.get_num_threads()}, "
          f"{torch.cuda.get_device_name() if cuda else 'CPU'}; frame {height}x{width}")
    rng = np.random.default_rng(0)
    frame = Frame(rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                  Intrinsics.from_hfov(width, height, 70.0))
    settings = PipelineSettings(depth_scale=1.0, depth_shift=0.1)
    print("| case | path | p50 ms | p99 ms | speed-up (p50) | depth vs first path: "
          "max|Δ|/max, median rel (relative models: inverse depth) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            ckpt = str(make_checkpoint(CASES[name], Path(tmp)))
            paths = [tuple(p.split(":")) for p in args.paths] if args.paths else [
                ("float32", "none"), (fast_dtype, fast_compile)]
            paths = list(dict.fromkeys(paths))  # fast path = reference on a CPU
            base = ref = None
            for dtype, mode in paths:
                pipe = Pipeline(depth_model=ckpt, device=args.device, dtype=dtype,
                                compile_mode=mode, settings=settings)
                t, depth = frame_times(pipe, frame, args.repeat)
                p50, p99 = np.percentile(t, 50), np.percentile(t, 99)
                base = base or p50
                relative = not pipe.model_is_metric
                err = "reference" if ref is None else depth_error(depth, ref, relative,
                                                                  args.tolerance)
                ref = depth if ref is None else ref
                print(f"| {name} | {dtype} {mode} ({pipe.compile_status}) | {p50:.2f} | "
                      f"{p99:.2f} | {base / p50:.2f}x | {err} |", flush=True)
                if args.profile and (dtype, mode) == paths[-1] and cuda:
                    profile(pipe, frame)
                del pipe
                if cuda:
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
