"""Per-frame overhead outside the model: dpt_ros's path against a naive baseline, same run.

Stages (what the node does around `model(...)` for one frame):
  conversion in    sensor_msgs/Image (bgr8) → RGB uint8
  pre-processing   RGB uint8 → 384x384 normalised pixel_values (DPT processor, bilinear)
  depth upsample   384x384 model output → input size (bicubic)
  depth colour map robust 2/98 % range + turbo LUT → BGR
  seg colours      class palette → BGR, 50 % overlay on the input
  points           back-projection + PointCloud2 packing (xyz, rgb, label; organised)
  message fill     Image 32FC1 depth, Image bgr8 colour, PointCloud2 from the buffers

The baseline is the usual hand-written Python ROS code: message data through Python lists
(element-wise setter), numpy percentile / fancy-index LUT, a numpy structured array filled field
by field for the cloud.

`--encodings` times instead the input conversion of the sensor encodings (yuv422,
bayer_rggb8; bgr8 for reference): the node's path (sensor bytes uploaded as received,
converted on the device) against decoding to RGB on the host first and uploading RGB, on
`--device` (cpu or cuda).

`--backprojection` times the back-projection of a raw camera with lens distortion (rays
through the inverted lens, cached per camera model) against the pinhole camera's, alone and
with the cloud packing (the node's `points` stage), plus the one-time cost of inverting the
lens.

`--publish` adds the publish time of 14.7 / 18.4 MB clouds, message objects against the
serialized path (`benchmarks/bench_publish.py`).

Run: `python benchmarks/bench_node.py [--repeat N] [--fill-methods] [--mallopt] [--publish]
[--encodings [--device cuda]] [--backprojection [--device cuda]]`.
"""

from __future__ import annotations

import argparse
import array
import ctypes
import ctypes.util
import dataclasses
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from sensor_msgs.msg import Image, PointCloud2, PointField
from std_msgs.msg import Header

from dpt_ros.core.camera.geometry import Intrinsics, backproject
from dpt_ros.core.codecs.upload import HOST_RGB, Uploader
from dpt_ros.core.pointcloud.pack import pack_cloud
from dpt_ros.core.render.colormap import colorize, lut, robust_range
from dpt_ros.core.render.segmentation import colorize_labels, overlay, palette
from dpt_ros.messages import (
    frame_from_image_msg,
    image_msg,
    pointcloud_msg,
    rgb_from_image_msg,
)
from dpt_ros.model.dpt.image_processing import DPTImageProcessor

SIZES = ((480, 640), (720, 1280))
STAGES = ("conversion in", "pre-processing", "depth upsample", "depth colour map",
          "seg colours", "points", "message fill")
PROCESSOR = DPTImageProcessor.from_dict({
    "size": {"height": 384, "width": 384}, "resample": 2, "image_mean": [0.5] * 3,
    "image_std": [0.5] * 3})


def _times_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, best) of `repeat` timed calls after one warm-up (allocator, LUT caches).

    On a shared machine the best run is the closest to the uncontended cost.
    """
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def _inputs(height: int, width: int) -> dict[str, object]:
    gen = torch.Generator().manual_seed(0)
    rows = torch.linspace(0.0, 1.0, height)[:, None]
    cols = torch.linspace(0.0, 1.0, width)[None, :]
    noise = 0.05 * torch.rand((height, width), generator=gen)
    depth = 1.0 + 6.0 * rows + torch.sin(cols * 9.0) + noise
    depth[: height // 20] = float("nan")  # an invalid band, as behind a window
    rgb = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 150, (height, width), generator=gen)
    msg = Image(height=height, width=width, encoding="bgr8", step=width * 3, is_bigendian=0)
    msg.data = array.array("B", rgb.flip(-1).contiguous().numpy().tobytes())
    return {
        "depth": depth,
        "model_depth": F.interpolate(depth[None, None], size=(384, 384), mode="bilinear")[0, 0],
        "rgb": rgb,
        "labels": labels,
        "msg": msg,
        "intr": Intrinsics.from_hfov(width, height, 70.0),
        "header": Header(frame_id="camera"),
    }


def ours(inp: dict) -> dict[str, Callable[[], object]]:
    depth, rgb, labels = inp["depth"], inp["rgb"], inp["labels"]
    colors = palette(150)
    state: dict[str, object] = {}

    def conversion() -> None:
        state["rgb_in"] = rgb_from_image_msg(inp["msg"])

    def preprocess() -> None:
        state["pixels"] = PROCESSOR.preprocess(rgb)

    def upsample() -> None:
        state["depth_in"] = F.interpolate(inp["model_depth"][None, None], size=depth.shape,
                                          mode="bicubic", align_corners=False)[0, 0]

    def depth_colours() -> None:
        vmin, vmax = robust_range(depth)
        state["depth_bgr"] = colorize(depth, vmin, vmax, "turbo").numpy()

    def seg_colours() -> None:
        color = colorize_labels(labels, colors)
        state["overlay"] = overlay(rgb.flip(-1), color, 0.5).numpy()

    def points() -> None:
        state["cloud"] = pack_cloud(backproject(depth, inp["intr"]), rgb, labels)

    def fill() -> None:
        image_msg(depth.numpy(), "32FC1", inp["header"])
        image_msg(state["depth_bgr"], "bgr8", inp["header"])
        pointcloud_msg(state["cloud"], inp["header"])

    stages = (conversion, preprocess, upsample, depth_colours, seg_colours, points)
    for fn in stages:
        fn()  # fill() needs the products of the earlier stages
    return dict(zip(STAGES, (*stages, fill)))


def baseline(inp: dict) -> dict[str, Callable[[], object]]:
    depth = inp["depth"].numpy()
    rgb, labels = inp["rgb"].numpy(), inp["labels"].numpy()
    intr: Intrinsics = inp["intr"]
    height, width = depth.shape
    table = lut("turbo")[:256].numpy()
    colors = palette(150).numpy()
    state: dict[str, object] = {}

    def conversion() -> None:
        msg = inp["msg"]
        data = np.array(list(msg.data), dtype=np.uint8)
        state["rgb_in"] = data.reshape(msg.height, msg.width, 3)[:, :, ::-1].copy()

    def preprocess() -> None:  # what a PIL-based processor does
        small = np.asarray(PILImage.fromarray(rgb).resize((384, 384), PILImage.BILINEAR))
        norm = (small.astype(np.float32) / 255.0 - 0.5) / 0.5
        state["pixels"] = torch.from_numpy(norm.transpose(2, 0, 1).copy())[None]

    def upsample() -> None:
        small = PILImage.fromarray(inp["model_depth"].numpy(), mode="F")
        state["depth_in"] = np.asarray(small.resize((width, height), PILImage.BICUBIC))

    def depth_colours() -> None:
        vmin, vmax = np.nanpercentile(depth, [2.0, 98.0])
        norm = np.clip((depth - vmin) / (vmax - vmin), 0.0, 1.0)
        index = np.nan_to_num(norm * 255.0).round().astype(np.int64)
        out = table[index]
        out[~np.isfinite(depth)] = 0
        state["depth_bgr"] = out

    def seg_colours() -> None:
        color = colors[labels]
        blend = 0.5 * rgb[:, :, ::-1].astype(np.float32) + 0.5 * color.astype(np.float32)
        state["overlay"] = blend.round().astype(np.uint8)

    def points() -> None:
        u, v = np.meshgrid(np.arange(width), np.arange(height))
        x = (u - intr.cx) * depth / intr.fx
        y = (v - intr.cy) * depth / intr.fy
        cloud = np.zeros(height * width, dtype=[
            ("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4"), ("label", "<u4")])
        cloud["x"], cloud["y"], cloud["z"] = x.ravel(), y.ravel(), depth.ravel()
        packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
            | rgb[..., 2].astype(np.uint32)
        cloud["rgb"] = packed.ravel().view(np.float32)
        cloud["label"] = labels.ravel()
        state["cloud"] = cloud

    def fill() -> None:
        depth_msg = Image(height=height, width=width, encoding="32FC1", step=width * 4)
        depth_msg.data = list(depth.view(np.uint8).ravel())
        color_msg = Image(height=height, width=width, encoding="bgr8", step=width * 3)
        color_msg.data = state["depth_bgr"].ravel().tolist()
        fields = [PointField(name=n, offset=4 * i, datatype=7, count=1)
                  for i, n in enumerate(("x", "y", "z", "rgb"))]
        fields.append(PointField(name="label", offset=16, datatype=6, count=1))
        cloud_msg = PointCloud2(height=height, width=width, fields=fields, point_step=20,
                                row_step=20 * width, is_dense=False)
        cloud_msg.data = state["cloud"].view(np.uint8).tolist()

    stages = (conversion, preprocess, upsample, depth_colours, seg_colours, points)
    for fn in stages:
        fn()
    return dict(zip(STAGES, (*stages, fill)))


def _row(stage: str, median: float, best: float, base: float) -> None:
    print(f"  {stage:17s} {median:8.2f} / {best:6.2f}   {base:18.2f}   {base / median:12.1f}x")


def fill_methods(repeat: int) -> None:
    """How to set a uint8[] field: the measurements behind dpt_ros/messages/__init__.py."""
    print("\nuint8[] field fill (ms, median):")
    for nbytes in (640 * 480 * 3, 640 * 480 * 20):
        payload = np.random.default_rng(0).integers(0, 256, nbytes, dtype=np.uint8)
        for check in (False, True):
            msg = Image(check_fields=check)

            def via_bytes(msg=msg, buf=payload) -> None:
                msg.data = buf.tobytes()

            def via_frombytes(msg=msg, buf=payload) -> None:
                a = array.array("B")
                a.frombytes(buf)
                msg.data = a

            def via_slot(msg=msg, buf=payload) -> None:
                a = array.array("B")
                a.frombytes(buf)
                msg._data = a

            def via_array_of_buffer(msg=msg, buf=payload) -> None:
                msg.data = array.array("B", memoryview(buf))

            row = {
                "bytes": _times_ms(via_bytes, 1 if check else repeat),
                "array.frombytes+setter": _times_ms(via_frombytes, repeat),
                "array.frombytes+slot": _times_ms(via_slot, repeat),
                "array('B', buffer)": _times_ms(via_array_of_buffer, 1),
            }
            cells = "  ".join(f"{k} {v[0]:8.3f}" for k, v in row.items())
            print(f"  {nbytes / 1e6:4.1f} MB checks={'on ' if check else 'off'}  {cells}")


SENSOR_ENCODINGS = {"bgr8": 3, "yuv422": 2, "bayer_rggb8": 1}  # encoding -> bytes per pixel


def encoding_costs(repeat: int, device: torch.device) -> None:
    """Per frame: Image message → RGB uint8 on `device`, the node's way (YUV / Bayer bytes
    uploaded as received, converted there by color_convert) and the host way (the same
    conversion on the CPU, then 3 bytes per pixel uploaded)."""
    upload = Uploader(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"\ninput conversion to RGB on {device} (ms, median / best):")
    print("  size       encoding      host decode + RGB upload   sensor bytes + device convert"
          "   host / device")
    for height, width in SIZES:
        for encoding, bpp in SENSOR_ENCODINGS.items():
            data = np.random.default_rng(1).integers(0, 256, height * width * bpp, np.uint8)
            msg = Image(height=height, width=width, encoding=encoding, step=width * bpp)
            msg.data = array.array("B", data.tobytes())

            def on_host(msg=msg) -> None:
                upload([(rgb_from_image_msg(msg), HOST_RGB)])
                sync()

            def on_device(msg=msg) -> None:
                frame = frame_from_image_msg(msg)
                upload([(frame.pixels, frame.encoding)])
                sync()

            host, host_best = _times_ms(on_host, repeat)
            dev, dev_best = _times_ms(on_device, repeat)
            print(f"  {width}x{height:<5d} {encoding:12s} {host:8.2f} / {host_best:6.2f} "
                  f"({3} B/px)      {dev:8.2f} / {dev_best:6.2f} ({bpp} B/px)"
                  f"        {host / dev:6.2f}x")


LENS = ("plumb_bob", (-0.28, 0.09, 0.0012, -0.0009, -0.012))


def backprojection_costs(repeat: int, device: torch.device) -> None:
    """Per frame: depth → points through a plumb_bob lens vs through a pinhole, same size."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"\nback-projection on {device} (ms, median / best; lens rays cached):")
    print("  size        pinhole            lens               lens / pinhole   "
          "(+ packing: pinhole / lens / ratio)   lens inversion (once)")
    for height, width in SIZES:
        pinhole = Intrinsics.from_hfov(width, height, 70.0)
        lens = dataclasses.replace(pinhole, distortion_model=LENS[0], d=LENS[1])
        depth = (torch.rand((height, width), generator=torch.Generator().manual_seed(0))
                 * 8 + 0.5).to(device)
        rgb = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8).to(device)
        start = time.perf_counter()
        backproject(depth, lens)  # builds the cached rays
        sync()
        once = (time.perf_counter() - start) * 1e3
        row = {}
        for name, intr in (("pinhole", pinhole), ("lens", lens)):
            def project(intr=intr, depth=depth) -> None:
                backproject(depth, intr)
                sync()

            def with_packing(intr=intr, depth=depth, rgb=rgb) -> None:
                pack_cloud(backproject(depth, intr), rgb)
                sync()

            row[name] = (_times_ms(project, repeat), _times_ms(with_packing, repeat))
        (pm, pb), (ppm, _) = row["pinhole"]
        (lm, lb), (lpm, _) = row["lens"]
        print(f"  {width}x{height:<5d} {pm:7.2f} / {pb:6.2f}   {lm:7.2f} / {lb:6.2f}   "
              f"{lm / pm:6.2f}x (best {lb / pb:.2f}x)     {ppm:7.2f} / {lpm:7.2f} / "
              f"{lpm / ppm:.2f}x              {once:7.1f}")


def keep_large_blocks() -> bool:
    """glibc: serve big buffers from the heap and never trim it, so frame buffers are reused.

    By default glibc mmaps each multi-MB buffer and unmaps it on free, so every frame pays
    page faults (thousands per frame at 640x480) for its fresh output buffers.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 256 << 20)) and bool(
        libc.mallopt(m_trim_threshold, 1 << 30))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--baseline-repeat", type=int, default=3)
    parser.add_argument("--fill-methods", action="store_true")
    parser.add_argument("--encodings", action="store_true",
                        help="time only the input conversion of yuv422 / Bayer frames")
    parser.add_argument("--backprojection", action="store_true",
                        help="time only the lens back-projection against the pinhole one")
    parser.add_argument("--device", default="cpu",
                        help="device of --encodings / --backprojection (cpu, cuda)")
    parser.add_argument("--publish", action="store_true",
                        help="also time publishing large clouds (object vs serialized path)")
    parser.add_argument("--mallopt", action="store_true",
                        help="keep large blocks in the heap (glibc mallopt) before measuring")
    args = parser.parse_args()
    if args.mallopt:
        print(f"mallopt applied: {keep_large_blocks()}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{datetime.datetime.now().isoformat(timespec='seconds')}")
    if args.encodings:
        encoding_costs(args.repeat, torch.device(args.device))
        return
    if args.backprojection:
        backprojection_costs(args.repeat, torch.device(args.device))
        return
    for height, width in SIZES:
        inp = _inputs(height, width)
        fast, slow = ours(inp), baseline(inp)
        print(f"\n{width}x{height}       dpt_ros ms (median / best)   baseline ms (median)"
              "   speed-up (medians)")
        totals = np.zeros(3)
        for stage in STAGES:
            median, best = _times_ms(fast[stage], args.repeat)
            base = _times_ms(slow[stage], args.baseline_repeat)[0]
            totals += (median, best, base)
            _row(stage, median, best, base)
        _row("total", *totals)
    if args.fill_methods:
        fill_methods(args.repeat)
    if args.publish:
        import bench_publish

        bench_publish.report(min(args.repeat, 20))


if __name__ == "__main__":
    main()
