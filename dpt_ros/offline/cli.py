"""`dpt-ros`: the offline tool (bag / predict / info). See docs/offline.md.

Exit codes are listed in dpt_ros.offline.exitcodes.ExitCode; messages go to stderr, and
stdout carries only what a command is asked to print (`info`).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Any

from dpt_ros.config.vocabulary import ALIGNMENT_MODES
from dpt_ros.offline.atomic import check_output_free
from dpt_ros.offline.exitcodes import CliError, ExitCode

# fleet.cli imports no Ray at import time: the other commands work without the extra
from dpt_ros.offline.fleet import cli as fleet_cli
from dpt_ros.offline.interrupt import StopFlag


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (override the parameter file)")
    g.add_argument("--params", help="dpt_node parameter YAML (/**/dpt_node: ros__parameters:)")
    g.add_argument("--depth-model", help="depth checkpoint: existing directory or Hub id")
    g.add_argument("--depth-model-revision", metavar="REV",
                   help="Hub branch, tag or commit of the depth model (default: main)")
    g.add_argument("--segmentation-model", help="segmentation checkpoint directory or Hub id")
    g.add_argument("--segmentation-model-revision", metavar="REV",
                   help="Hub branch, tag or commit of the segmentation model")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    g.add_argument("--dtype", choices=("float32", "float16", "bfloat16"))
    g.add_argument("--compile", help="torch.compile mode: none, default, reduce-overhead "
                   "(CUDA graphs), max-autotune; pays off on a GPU")
    g.add_argument("--batch-size", type=_positive_int, default=8, help="frames per model pass")
    g.add_argument("--alignment-mode", choices=ALIGNMENT_MODES,
                   help="alignment.mode: fit each frame to its metric reference "
                        "(docs/alignment.md)")
    g.add_argument("--alignment-report", type=Path, metavar="CSV",
                   help="write each frame's alignment (scale, shift, inliers, residual, "
                        "status) to this CSV")


def bag_args(p: argparse.ArgumentParser) -> None:
    """The one option table of `dpt-ros bag` and `dpt-ros fleet` (topics, outputs, camera
    fallbacks, model): the fleet runs the bag tool's work, so it takes the same options under
    the same names, from here."""
    p.add_argument("--image-topic", required=True, help="sensor_msgs/Image or CompressedImage")
    p.add_argument("--camera-info-topic", help="sensor_msgs/CameraInfo for intrinsics")
    p.add_argument("--depth-reference-topic", help="metric depth registered to the images "
                   "(Image 32FC1 m / 16UC1 mm), paired by stamp, for alignment")
    p.add_argument("--points-reference-topic", help="metric point cloud (PointCloud2 "
                   "x/y/z; alignment.extrinsic moves it into the camera frame), for alignment")
    p.add_argument("--prefix", default="/dpt", help="namespace of the output topics")
    p.add_argument(
        "--topics-out", nargs="+", metavar="NAME",
        help="output topics to write, relative to --prefix (default: all the model produces)",
    )
    p.add_argument("--storage", choices=("sqlite3", "mcap"), help="default: as the input")
    p.add_argument("--hfov", type=float, help="camera.hfov fallback (degrees)")
    p.add_argument("--focal-length", type=float, help="camera.focal_length fallback (px)")
    _model_args(p)


def bag_config(args: argparse.Namespace) -> Any:
    """The checked node parameters of a bag-style command (file + flags)."""
    return _config(args, {"camera.hfov": args.hfov, "camera.focal_length": args.focal_length})


def bag_options(args: argparse.Namespace, config: Any, input: Path, output: Path) -> Any:
    """BagOptions from the shared option table (one input bag into one output bag)."""
    from dpt_ros.offline.bag import BagOptions  # rclpy, sensor_msgs, rosbags

    return BagOptions(
        input=input,
        output=output,
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        batch_size=args.batch_size,
        prefix=args.prefix,
        topics_out=args.topics_out,
        storage=args.storage,
        force=args.force,
        params=config.values,
        decode=config.decode,
        depth_reference_topic=args.depth_reference_topic,
        points_reference_topic=args.points_reference_topic,
        alignment_report=args.alignment_report,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dpt-ros", description="DPT depth/segmentation for recorded bags, images and videos"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    bag = sub.add_parser("bag", help="process a ROS 2 bag (.db3/.mcap) into a new bag")
    bag.add_argument("input", type=Path, help="input bag directory (or a .db3/.mcap file)")
    bag.add_argument("output", type=Path, help="output bag directory (must not exist)")
    bag.add_argument("--force", action="store_true", help="replace an existing output")
    bag_args(bag)

    fleet = sub.add_parser("fleet", help="many bags on a Ray cluster, resumable "
                           "(pip install dpt_ros[fleet]; docs/fleet.md)")
    fleet_cli.fleet_args(fleet)
    bag_args(fleet)

    pred = sub.add_parser("predict", help="images, folders and videos -> depth files")
    pred.add_argument("paths", nargs="+", type=Path, help="images, folders or videos")
    pred.add_argument("--out", required=True, type=Path, help="output directory")
    pred.add_argument("--depth-format", choices=("png", "npy"), default="png",
                      help="png: uint16 millimetres, 0 = invalid; npy: float32 metres, NaN")
    pred.add_argument("--outputs", nargs="+", metavar="NAME",
                      help="subset of: depth relative depth_colorized segmentation "
                           "seg_colorized overlay points")
    for name in ("fx", "fy", "cx", "cy"):
        pred.add_argument(f"--{name}", type=float, help="intrinsics in pixels (for .ply)")
    pred.add_argument("--hfov", type=float, help="horizontal field of view in degrees (.ply)")
    pred.add_argument("--reference-dir", type=Path, help="metric references for alignment: "
                      "<stem>.png (16-bit mm) or <stem>.npy (float32 m) per image, registered "
                      "to it; each image is fitted to its own (default report: "
                      "<out>/alignment.csv)")
    pred.add_argument("--force", action="store_true", help="overwrite existing files")
    _model_args(pred)

    info = sub.add_parser("info", help="describe a checkpoint without running it")
    info.add_argument("source", help="checkpoint directory or Hub repo id")
    info.add_argument("--revision", help="Hub branch, tag or commit (default: main)")
    info.add_argument("--json", action="store_true", help="print JSON")
    return parser


# Each command imports its own modules when it runs: `dpt-ros --help` and argument errors
# load neither torch (config, predict, files, info: the pipeline and the model) nor rclpy /
# rosbags (bag).


def _config(args: argparse.Namespace, extra: dict[str, Any]) -> Any:
    from dpt_ros.offline.config import load_config  # torch (the pipeline)

    overrides = {
        "depth_model": args.depth_model,
        "segmentation_model": args.segmentation_model,
        "depth_model_revision": args.depth_model_revision,
        "segmentation_model_revision": args.segmentation_model_revision,
        "device": args.device,
        "dtype": args.dtype,
        "compile": args.compile,
        "alignment.mode": args.alignment_mode,
        **extra,
    }
    config = load_config(args.params, overrides)
    if config.ignored:
        print(f"dpt-ros: ignoring unknown parameters {config.ignored}", file=sys.stderr)
    return config


def _cmd_bag(args: argparse.Namespace) -> ExitCode:
    from dpt_ros.offline.bag import run_bag  # rclpy, sensor_msgs, rosbags
    from dpt_ros.offline.config import build_pipeline  # torch

    if not args.input.exists():
        raise CliError(ExitCode.INPUT, f"input bag {args.input} does not exist")
    check_output_free(args.output.absolute(), args.force)  # before the slow model load
    config = bag_config(args)
    pipeline = build_pipeline(config)
    opts = bag_options(args, config, args.input, args.output)
    with StopFlag() as stop:
        report = run_bag(opts, pipeline, stop)
    print(report.summary(), file=sys.stderr)
    return report.exit_code


def _cmd_predict(args: argparse.Namespace) -> ExitCode:
    from dpt_ros.offline.config import build_pipeline  # torch
    from dpt_ros.offline.predict.run import IntrinsicsSpec, PredictOptions, run_predict  # torch
    from dpt_ros.offline.predict.sources import collect_sources  # torch (core.codecs)

    intrinsics = IntrinsicsSpec(args.fx, args.fy, args.cx, args.cy, args.hfov)
    collect_sources(args.paths)  # fail on a bad path before the slow model load
    config = _config(args, {})
    pipeline = build_pipeline(config)
    opts = PredictOptions(
        paths=args.paths,
        out=args.out,
        depth_format=args.depth_format,
        batch_size=args.batch_size,
        intrinsics=intrinsics,
        outputs=args.outputs,
        force=args.force,
        decode=config.decode,
        reference_dir=args.reference_dir,
        alignment_report=args.alignment_report,
    )
    with StopFlag() as stop:
        report = run_predict(opts, pipeline, stop)
    print(report.summary(), file=sys.stderr)
    return report.exit_code


def _cmd_info(args: argparse.Namespace) -> ExitCode:
    from dpt_ros.offline.info import checkpoint_info, format_info, info_json  # torch (model)

    info = checkpoint_info(args.source, args.revision)
    print(info_json(info) if args.json else format_info(info))
    return ExitCode.OK


def fleet_options(args: argparse.Namespace) -> Any:
    """`dpt-ros fleet`'s FleetOptions: the bag options through the shared table."""
    config = bag_config(args)
    return fleet_cli.fleet_options(args, config, bag_options(args, config, Path("."), Path(".")))


def _cmd_fleet(args: argparse.Namespace) -> ExitCode:
    return fleet_cli.cmd_fleet(fleet_options(args))


COMMANDS = {"bag": _cmd_bag, "fleet": _cmd_fleet, "predict": _cmd_predict, "info": _cmd_info}


def main(argv: list[str] | None = None) -> int:
    """Console-script entry; returns the exit code (see ExitCode)."""
    args = build_parser().parse_args(argv)
    try:
        return int(COMMANDS[args.command](args))
    except CliError as err:
        print(f"dpt-ros {args.command}: error: {err}", file=sys.stderr)
        return int(err.code)
    except KeyboardInterrupt:
        print(f"dpt-ros {args.command}: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except Exception:
        traceback.print_exc()
        print(f"dpt-ros {args.command}: internal error (a bug; please report it)", file=sys.stderr)
        return int(ExitCode.ERROR)


if __name__ == "__main__":
    sys.exit(main())
