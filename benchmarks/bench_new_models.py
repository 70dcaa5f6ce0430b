"""Forward time of the new families against their references, same weights, same input,
same run (issue 20): Depth Anything 3 (DA3METRIC-LARGE's real network, ViT-L/14, at the
official 504-side input of a 640 x 480 frame: 378 x 504) against the official
depth-anything-3 code (test-only oracle: `make oracles`); Depth Pro against transformers at
its real 1536 x 1536 input with the real fusion / FOV layout but DINOv2-S encoders (the
ViT-L ones take minutes per forward on a 2-core CPU; `--depth-pro-large` for them).

Runs alternate (reference, ours, ...) so load spikes on a shared machine hit both; median
and minimum are reported with ref/ours (> 1: ours is faster) and the max relative output
difference. Run: `python benchmarks/bench_new_models.py [--repeat N] [--threads T]
[--only da3|depth_pro]`.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "test")]

from _model_util import randomize  # noqa: E402


def _time(fn, x, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with torch.no_grad():
            fn(x)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def compare(name: str, ref_fn, ours_fn, x, ref_out, ours_out, repeat: int) -> str:
    with torch.no_grad():
        a, b = ref_out(ref_fn(x)), ours_out(ours_fn(x))  # warm-up, and the outputs
    diff = float((a - b).abs().max() / a.abs().max())
    r, o = [], []
    for _ in range(repeat):
        r += _time(ref_fn, x, 1)
        o += _time(ours_fn, x, 1)
    mr, mo = statistics.median(r), statistics.median(o)
    return (f"| {name} | {torch.get_num_threads()} | fp32 | 1 | {mo:.1f} | {mr:.1f} | "
            f"{mr / mo:.2f} | {min(o):.0f} / {min(r):.0f} | {diff:.1e} |")


def bench_da3(repeat: int, tmp: Path, small: bool = False) -> str:
    from _da3_oracle import SMALL_HEAD, SMALL_NET, official_network, save_official

    from dpt_ros.model import load_model
    from dpt_ros.model.depth_anything3.configuration import PRESETS

    preset = PRESETS["da3metric-large"]
    net, head = (SMALL_NET, SMALL_HEAD) if small else (preset["net"], preset["head"])
    official = official_network(net, head, seed=0)
    ours = load_model(save_official(official, tmp / "da3", "da3metric-large",
                                    net if small else None, head if small else None))
    x = torch.randn(1, 3, 378, 504)

    def ref(x):
        feats, _ = official.backbone(x[:, None], cam_token=None, export_feat_layers=[])
        return official._process_depth_head(feats, 378, 504)

    name = ("DA3 net, DINOv2-S size" if small else "DA3METRIC-LARGE net")
    return compare(f"{name} (378×504) vs official 0.1.1", ref, ours, x,
                   lambda o: o.depth[:, 0], lambda o: o.predicted_depth, repeat)


def bench_depth_pro(repeat: int, tmp: Path, large: bool) -> str:
    import transformers as T

    from dpt_ros.model import load_model

    if large:
        enc = {"model_type": "dinov2", "hidden_size": 1024, "num_hidden_layers": 24,
               "num_attention_heads": 16, "patch_size": 16}
    else:
        enc = {"model_type": "dinov2", "hidden_size": 384, "num_hidden_layers": 12,
               "num_attention_heads": 6, "patch_size": 16}
    config = T.DepthProConfig(use_fov_model=True, image_model_config=enc,
                              patch_model_config=enc, fov_model_config=enc)
    ref = randomize(T.DepthProForDepthEstimation(config).eval(), seed=0)
    ref.save_pretrained(str(tmp / "pro"))
    ours = load_model(tmp / "pro")
    x = torch.randn(1, 3, 1536, 1536)
    name = f"Depth Pro 1536², FOV, DINOv2-{'L' if large else 'S'} encoders vs transformers"
    return compare(name, ref, ours, x, lambda o: o.predicted_depth,
                   lambda o: o.predicted_depth, repeat)


def main() -> None:
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--depth-pro-large", action="store_true")
    p.add_argument("--only", choices=("da3", "depth_pro"), help="run one of the two")
    p.add_argument("--da3-small", action="store_true",
                   help="DA3 network at the parity tests' DINOv2-S size")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("| model | threads | dtype | batch | ours ms (median) | reference ms | ref / ours "
          "| min: ours / ref ms | max \\|Δ\\| / max \\|ref\\| |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "da3"):
            print(bench_da3(args.repeat, Path(tmp), args.da3_small), flush=True)
            gc.collect()
        if args.only in (None, "depth_pro"):
            print(bench_depth_pro(args.repeat, Path(tmp), args.depth_pro_large), flush=True)


if __name__ == "__main__":
    main()
