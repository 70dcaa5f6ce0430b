"""`dpt-ros bag` throughput: frames/s for a bag of N frames against the batch size.

End to end, as a user runs it: read + deserialise + decode the input, Pipeline.process on
the batch (model + colour maps + point cloud), build + serialise every output message, write
the output bag. "Outside the pipeline" is that total minus the time in Pipeline.process:
the tool's own cost (bag I/O, CDR, message building). The model is a random-weight metric
DPT of a chosen size (weights do not change the cost), built with dpt_ros.model, so this
needs neither the Hub nor transformers.

Run: `python benchmarks/bench_bag.py [--frames 64] [--batch-sizes 1 2 4 8] [--size 480x640]
[--model small] [--device auto] [--storage sqlite3]`; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

MODELS = {  # ViT depth/width presets; input is the processor size below
    "tiny": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=2,
                 intermediate_size=128, neck_hidden_sizes=[16, 32, 64, 64],
                 fusion_hidden_size=32, image_size=256),
    "small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                  intermediate_size=1536, neck_hidden_sizes=[48, 96, 192, 384],
                  fusion_hidden_size=64, image_size=256),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096, neck_hidden_sizes=[256, 512, 1024, 1024],
                  fusion_hidden_size=256, image_size=384),
}
OUT_INDICES = {"tiny": [0, 1, 2, 3], "small": [2, 5, 8, 11], "large": [5, 11, 17, 23]}


def make_checkpoint(name: str, directory: Path) -> Path:
    """A random-weight metric DPT (ViT) checkpoint in the Hugging Face layout."""
    from dpt_ros.model import DPTConfig, DPTForDepthEstimation, save_model
    from dpt_ros.model.dpt.image_processing import DPTImageProcessor

    cfg = dict(MODELS[name])
    size = cfg["image_size"]
    config = DPTConfig(**cfg, patch_size=16, backbone_out_indices=OUT_INDICES[name],
                       depth_estimation_type="metric")
    torch.manual_seed(0)
    save_model(DPTForDepthEstimation(config).eval(), directory)
    processor = DPTImageProcessor(size={"height": size, "width": size}, keep_aspect_ratio=False)
    (directory / "preprocessor_config.json").write_text(json.dumps(processor.to_dict()))
    return directory


def make_bag(path: Path, storage: str, n: int, height: int, width: int) -> None:
    """n rgb8 frames at 30 Hz with a camera_info each (messages built by hand)."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import CameraInfo, Image

    ts = get_typestore(Stores.ROS2_JAZZY)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    rng = np.random.default_rng(0)
    f = width / 2.0
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        img = writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=ts)
        inf = writer.add_connection("/cam/camera_info", "sensor_msgs/msg/CameraInfo",
                                    typestore=ts)
        for i in range(n):
            stamp = 10**9 + i * 33_333_333
            msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
            msg.header.frame_id = "cam"
            msg.data = rng.integers(0, 256, height * width * 3, dtype=np.uint8).tobytes()
            info = CameraInfo(header=msg.header, width=width, height=height)
            info.k = [f, 0.0, (width - 1) / 2, 0.0, f, (height - 1) / 2, 0.0, 0.0, 1.0]
            writer.write(inf, stamp, serialize_message(info))
            writer.write(img, stamp + 1, serialize_message(msg))


class TimedPipeline:
    """The Pipeline with the time spent in `process` summed (the rest is the tool's I/O)."""

    def __init__(self, pipeline) -> None:
        self._pipeline = pipeline
        self.seconds = 0.0

    def __getattr__(self, name: str):
        return getattr(self._pipeline, name)

    def process(self, frames, want):
        start = time.perf_counter()
        try:
            return self._pipeline.process(frames, want)
        finally:
            self.seconds += time.perf_counter() - start


def run(args: argparse.Namespace) -> list[dict]:
    from dpt_ros.core.pipeline.pipeline import Pipeline
    from dpt_ros.offline.bag import BagOptions, run_bag

    root = Path(tempfile.mkdtemp(prefix="bench_bag_"))
    try:
        ckpt = make_checkpoint(args.model, root / "ckpt")
        height, width = args.size
        make_bag(root / "in", args.storage, args.frames, height, width)
        pipeline = Pipeline(str(ckpt), device=args.device, dtype=args.dtype)
        pipeline.warmup(height, width)
        rows = []
        for batch in args.batch_sizes:
            out = root / f"out_b{batch}"
            opts = BagOptions(input=root / "in", output=out, image_topic="/cam/image_raw",
                              camera_info_topic="/cam/camera_info", batch_size=batch)
            timed = TimedPipeline(pipeline)
            with open(os.devnull, "w") as quiet:
                start = time.perf_counter()
                report = run_bag(opts, timed, stream=quiet)
                elapsed = time.perf_counter() - start
            assert report.processed == args.frames, report.summary()
            rows.append({"batch": batch, "fps": args.frames / elapsed,
                         "ms": elapsed / args.frames * 1e3,
                         "io_ms": (elapsed - timed.seconds) / args.frames * 1e3})
            shutil.rmtree(out)
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--size", type=_size, default=(480, 640), help="HxW of the bag's images")
    p.add_argument("--model", choices=sorted(MODELS), default="small")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    args = p.parse_args()
    rows = run(args)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" \
        else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"bag tool, {args.frames} frames {args.size[0]}x{args.size[1]} rgb8, "
          f"'{args.model}' metric DPT ({MODELS[args.model]['image_size']} px input, "
          f"{args.dtype}), {args.storage}, all outputs incl. points; {device}; "
          f"torch {torch.__version__}; {datetime.date.today()}")
    print()
    print("| batch size | frames/s | ms/frame | of which outside the pipeline | vs batch 1 |")
    print("|---:|---:|---:|---:|---:|")
    base = rows[0]["fps"]
    for r in rows:
        print(f"| {r['batch']} | {r['fps']:.2f} | {r['ms']:.1f} | {r['io_ms']:.1f} | "
              f"{r['fps'] / base:.2f}x |")


if __name__ == "__main__":
    main()
