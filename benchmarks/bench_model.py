"""Forward time of our models against transformers on the same weights and input, same run.

Real-size configs (Intel/dpt-hybrid-midas, Intel/dpt-large, Depth-Anything-V2-Small, and the
MiDaS v3.1 / ZoeDepth ones: Intel/dpt-beit-large-512, Intel/dpt-swinv2-tiny-256,
Intel/zoedepth-nyu-kitti) with random weights: the transformers model is built, saved with
save_pretrained and loaded back with our load_model, so both run identical tensors. Runs
alternate (reference, ours, ...) so load spikes on a shared machine hit both; median and
minimum are reported with hf/ours (> 1: ours is faster) and the max relative output difference.

  CPU fp32 (always):      DPT-Hybrid-384, DA-V2-Small-518 and PromptDA-vits-518 (with a
                          192x256 metric prompt), batch 1 (the MiDaS v3.1 / ZoeDepth cases
                          with --cpu-cases DPT-BEiT-L-512 ...)
  CUDA fp16/bf16 (if any): DPT-Hybrid-384, DPT-Large-384, DA-V2-Small-518, batch 1 and 4;
                           bf16 batch 1 also ours under torch.compile reduce-overhead (*)

Run: `python benchmarks/bench_model.py [--repeat N] [--cpu-cases ...] [--no-cuda]`.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "test"), str(REPO / "test" / "model")]

from _model_util import randomize  # noqa: E402
from test_real_configs import CONFIGS, MIDAS31_CONFIGS, build_reference  # noqa: E402

from dpt_ros.model import load_model  # noqa: E402

CASES: dict[str, tuple[str, int | tuple[int, int]]] = {
    "DPT-Hybrid-384": ("Intel/dpt-hybrid-midas", 384),
    "DPT-Large-384": ("Intel/dpt-large", 384),
    "DA-V2-Small-518": ("depth-anything/Depth-Anything-V2-Small-hf", 518),
    "DPT-BEiT-L-512": ("Intel/dpt-beit-large-512", 512),
    "DPT-Swinv2-T-256": ("Intel/dpt-swinv2-tiny-256", 256),
    # a 480x640 frame through the Hub processor (reflect pad, keep aspect, multiple of 32)
    "ZoeDepth-NYU-KITTI": ("Intel/zoedepth-nyu-kitti", (384, 512)),
    "PromptDA-vits-518": ("depth-anything/prompt-depth-anything-vits-hf", 518),
}
ALL_CONFIGS = {**CONFIGS, **MIDAS31_CONFIGS}
PROMPT_SIZE = (192, 256)  # an ARKit-style low-resolution metric depth


def _reference(repo: str) -> torch.nn.Module:
    if "prompt-depth-anything" in repo:
        import transformers as T
        from test_prompt_depth import _real

        return T.PromptDepthAnythingForDepthEstimation(_real(repo.split("-")[-2]))
    return build_reference(ALL_CONFIGS[repo])


def _with_prompt(model: torch.nn.Module, prompt: torch.Tensor):
    return lambda x: model(x, prompt_depth=prompt)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(model: torch.nn.Module, x: torch.Tensor) -> float:
    _sync(x.device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model(x).predicted_depth
    _sync(x.device)
    _time.last = out  # type: ignore[attr-defined]
    return time.perf_counter() - start


def _compiled_row(eager: dict, ours: torch.nn.Module, x: torch.Tensor, ref_out: torch.Tensor,
                  repeat: int) -> dict:
    """Our model as the node runs it with `compile: reduce-overhead` (inductor + CUDA
    graphs), against the same transformers eager time."""
    fast = torch.compile(ours, mode="reduce-overhead", dynamic=False)
    for _ in range(5):  # compile, record, capture
        _time(fast, x)
    times = [_time(fast, x) for _ in range(repeat)]
    out = _time.last.float()  # type: ignore[attr-defined]
    err = ((out - ref_out.float()).abs().max() / ref_out.float().abs().max()).item()
    return {**eager, "model": eager["model"] + "*", "ours_ms": 1e3 * statistics.median(times),
            "ours_min_ms": 1e3 * min(times), "rel_err": err}


def bench(
    name: str, device: torch.device, dtype: torch.dtype, batches: list[int], repeat: int,
    warmup: int, compiled: bool = False,
) -> list[dict]:
    repo, size = CASES[name]
    height, width = (size, size) if isinstance(size, int) else size
    ref = randomize(_reference(repo)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ref.save_pretrained(tmp)
        ours = load_model(tmp, device=device, dtype=dtype)
    ref = ref.to(device=device, dtype=dtype)
    rows = []
    for batch in batches:
        x = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
        x = x.to(device=device, dtype=dtype)
        run_ref, run_ours = ref, ours
        if "prompt" in repo:
            g = torch.Generator().manual_seed(1)
            prompt = (0.5 + 3.5 * torch.rand(batch, 1, *PROMPT_SIZE, generator=g)).to(device)
            run_ref, run_ours = _with_prompt(ref, prompt), _with_prompt(ours, prompt)
        for _ in range(warmup):
            _time(run_ref, x)
            _time(run_ours, x)
        t_ref, t_ours = [], []
        for _ in range(repeat):
            t_ref.append(_time(run_ref, x))
            r = _time.last  # type: ignore[attr-defined]
            t_ours.append(_time(run_ours, x))
        o = _time.last  # type: ignore[attr-defined]
        err = ((o.float() - r.float()).abs().max() / r.float().abs().max()).item()
        rows.append({
            "model": name, "device": device.type, "dtype": str(dtype).replace("torch.", ""),
            "batch": batch, "ours_ms": 1e3 * statistics.median(t_ours),
            "hf_ms": 1e3 * statistics.median(t_ref), "rel_err": err,
            "ours_min_ms": 1e3 * min(t_ours), "hf_min_ms": 1e3 * min(t_ref),
        })
        print(_format(rows[-1]), flush=True)
        if compiled and batch == 1 and "prompt" not in repo:
            rows.append(_compiled_row(rows[-1], ours, x, r, repeat))
            print(_format(rows[-1]), flush=True)
    del ref, ours
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def _format(row: dict) -> str:
    ratio = row["hf_ms"] / row["ours_ms"]
    return (f"{row['model']:<18} {row['device']:<4} {row['dtype']:<8} b={row['batch']}  "
            f"ours {row['ours_ms']:9.1f} ms  transformers {row['hf_ms']:9.1f} ms  "
            f"hf/ours {ratio:5.2f}  (min: {row['ours_min_ms']:.1f} vs {row['hf_min_ms']:.1f} ms, "
            f"hf/ours {row['hf_min_ms'] / row['ours_min_ms']:.2f})  "
            f"max|Δ|/max|ref| {row['rel_err']:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=True,
                        help="CUDA bf16 batch 1: also ours under torch.compile "
                        "reduce-overhead (rows marked *)")
    parser.add_argument("--cpu-cases", nargs="*", default=["DPT-Hybrid-384", "DA-V2-Small-518",
                                                           "PromptDA-vits-518"],
                        choices=list(CASES))
    parser.add_argument("--cuda-cases", nargs="*", default=list(CASES)[:3], choices=list(CASES))
    parser.add_argument("--no-cuda", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {threads} threads")
    for name in args.cpu_cases:
        bench(name, torch.device("cpu"), torch.float32, [1], args.repeat, warmup=1)
    if torch.cuda.is_available() and not args.no_cuda:
        print(torch.cuda.get_device_name())
        for dtype in (torch.float16, torch.bfloat16):
            for name in args.cuda_cases:
                bench(name, torch.device("cuda"), dtype, [1, 4], max(args.repeat, 20), warmup=5,
                      compiled=args.compiled and dtype == torch.bfloat16)


if __name__ == "__main__":
    main()
