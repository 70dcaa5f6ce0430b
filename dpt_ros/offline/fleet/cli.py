"""`dpt-ros fleet INPUT... OUTPUT_ROOT`: options and the command.

The topic, model, alignment and output options come from the bag tool's option table
(`dpt_ros.offline.cli.bag_args`), under the same names; this module adds only what is the
fleet's own. It imports no Ray: `dpt-ros --help` must work without the extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpt_ros.offline.exitcodes import CliError, ExitCode

if TYPE_CHECKING:
    from dpt_ros.offline.bag import BagOptions
    from dpt_ros.offline.fleet.driver import FleetOptions


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
        return value
    return parse


def fleet_args(p: argparse.ArgumentParser) -> None:
    """The fleet's own options (the bag options are added by the caller)."""
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="INPUT... OUTPUT_ROOT: bag directories, .db3/.mcap files, directories "
                        "holding bags or glob patterns; the last path is the output root "
                        "(OUTPUT_ROOT/<bag name>)")
    g = p.add_argument_group("fleet (Ray)")
    g.add_argument("--address", help="Ray cluster to join: 'auto', host:port or ray://...; "
                   "default: a local Ray started for the run, on 127.0.0.1 only")
    g.add_argument("--workers", type=_positive(int), help="worker actors (each loads the "
                   "model once); default: one per GPU with --num-gpus-per-worker, else per CPU")
    g.add_argument("--num-gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="GPUs per worker (a fraction overlaps CPU work on one GPU); 0: CPU")
    g.add_argument("--cpus-per-worker", type=_positive(float), default=1.0, metavar="C",
                   help="CPUs per worker (default 1)")
    g.add_argument("--shard-seconds", type=_positive(float), metavar="S",
                   help="split each storage file into log-time shards of S seconds "
                        "(default: one unit per storage file)")
    g.add_argument("--shard-margin", type=float, metavar="S",
                   help="log time read before and after each shard so pairing and alignment "
                        "at its edges match the single pass (default: from the parameters)")
    g.add_argument("--max-attempts", type=_positive(int), default=3,
                   help="attempts per unit when its worker process dies or its storage has a "
                        "transient I/O error (default 3); an exception in a unit is not "
                        "retried")
    g.add_argument("--force", action="store_true",
                   help="accept a model or options other than the ones recorded in "
                        "OUTPUT_ROOT's manifest (redoes the outputs)")


def fleet_options(args: argparse.Namespace, config: Any, template: BagOptions) -> FleetOptions:
    """FleetOptions from parsed arguments, the checked parameters and the bag options built
    from the shared table (by `dpt_ros.offline.cli`, which owns that table: importing it
    from here would make the two modules import each other)."""
    from dpt_ros.offline.fleet.driver import FleetOptions  # rosbags, rclpy (the bag tool)

    if len(args.paths) < 2:
        raise CliError(ExitCode.USAGE, "give at least one INPUT and the OUTPUT_ROOT")
    *inputs, root = args.paths
    # Found, not imported: Ray must be imported after the loopback settings (cluster.py).
    if importlib.util.find_spec("ray") is None:
        raise CliError(ExitCode.USAGE, "dpt-ros fleet needs Ray: pip install "
                       "'dpt_ros[fleet]'")
    return FleetOptions(
        inputs=inputs, output_root=Path(root), template=template, values=config.values,
        address=args.address, workers=args.workers,
        num_gpus_per_worker=args.num_gpus_per_worker, cpus_per_worker=args.cpus_per_worker,
        shard_seconds=args.shard_seconds, margin_s=args.shard_margin,
        max_attempts=args.max_attempts, force=args.force)


def cmd_fleet(opts: FleetOptions) -> ExitCode:
    """Run it with Ctrl-C as a request (units in flight finish and are committed)."""
    from dpt_ros.offline.fleet.driver import run_fleet  # rosbags, rclpy; ray when it runs
    from dpt_ros.offline.interrupt import StopFlag

    with StopFlag() as stop:
        report = run_fleet(opts, stop)
    print(report.summary(), file=sys.stderr)
    return report.exit_code
