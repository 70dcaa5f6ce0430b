"""`dpt-ros fleet`, in order: plan, guard the root, skip what is done, start the pool,
schedule, assemble finished bags, report.

The driver reads only metadata and markers and writes the manifest, the assembled bags'
metadata and the summary; every message is read and written by the workers.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from dpt_ros.offline.bag import REFERENCE_WAIT_S, BagOptions
from dpt_ros.offline.exitcodes import CliError, ExitCode
from dpt_ros.offline.fleet.assemble import assemble_bag
from dpt_ros.offline.fleet.commit import RootLock, bag_done, sweep_staging, unit_done
from dpt_ros.offline.fleet.manifest import Manifest, fingerprint
from dpt_ros.offline.fleet.plan import BagPlan, check_names, find_bags, plan_bag
from dpt_ros.offline.fleet.scheduler import Scheduler, Slot
from dpt_ros.offline.fleet.summary import FleetReport
from dpt_ros.offline.fleet.units import NS, Unit
from dpt_ros.offline.interrupt import StopFlag
from dpt_ros.offline.progress import Progress


@dataclass
class FleetOptions:
    """What `dpt-ros fleet` was asked to do. `template` holds the bag options shared by
    every bag (its input / output are set per unit); `values` the checked node parameters."""

    inputs: list[str]
    output_root: Path
    template: BagOptions
    values: dict[str, Any]
    address: str | None = None  # None: a local Ray on 127.0.0.1 for this run
    workers: int | None = None  # None: one per GPU (with GPUs asked for) or per CPU
    num_gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    shard_seconds: float | None = None  # None: one unit per storage file
    margin_s: float | None = None  # None: from the parameters (see margins())
    max_attempts: int = 3
    force: bool = False
    crash_units: frozenset[str] = frozenset()  # test hook, see actor.FleetWorker
    on_submit: Callable[[Unit, Slot], None] | None = None  # test hook


def margins(values: dict[str, Any], margin_s: float | None) -> tuple[float, float]:
    """(before, after) in seconds of log time read around a shard.

    After: the longest an image waits for a later camera_info or reference. Before: long
    enough for the camera_info pairing and for the alignment filter (which forgets after
    `alignment.max_age_s` and decays with `alignment.smoothing_s`: ten time constants leave
    e^-10 of older state) to be in the state the single pass has at the boundary.
    """
    if margin_s is not None:
        return margin_s, margin_s
    wait = max(values["sync.timeout_ms"] / 1000.0, REFERENCE_WAIT_S)
    before = max(5.0, wait, values["alignment.max_age_s"] + 10 * values["alignment.smoothing_s"])
    return before, wait + 1.0


def _bag_options_fp(t: BagOptions) -> dict[str, Any]:
    return {"image_topic": t.image_topic, "camera_info_topic": t.camera_info_topic,
            "depth_reference_topic": t.depth_reference_topic,
            "points_reference_topic": t.points_reference_topic, "prefix": t.prefix,
            "topics_out": t.topics_out, "storage": t.storage}


def run_fleet(opts: FleetOptions, stop: StopFlag | None = None,
              stream: TextIO | None = None) -> FleetReport:
    """The whole run; raises CliError for what stops it before any unit (bad inputs, a
    changed model without --force, a model no worker can load)."""
    t0 = time.monotonic()
    stream = stream if stream is not None else sys.stderr
    root = opts.output_root.absolute()
    report = FleetReport(root, started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    bags = check_names(find_bags(opts.inputs))
    for path in bags.values():
        if isinstance(path, str):  # a URL: not this file system
            continue
        rp, rr = path.resolve(), root.resolve()
        if rp == rr or rp in rr.parents or rr in rp.parents:
            raise CliError(ExitCode.USAGE, f"the output root must be outside the input {path}")
    if opts.template.alignment_report is not None:
        raise CliError(ExitCode.USAGE, "--alignment-report is a dpt-ros bag option; the "
                       "fleet records alignment in the output bags only")
    root.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(opts.values, _bag_options_fp(opts.template))
    digest = fp["digest"]
    with RootLock(root):
        manifest = Manifest(root, fp)
        manifest.load(opts.force)
        swept = sweep_staging(root)
        if swept:
            print(f"fleet: removed {swept} stale staging folder(s) of killed attempts",
                  file=stream)
        before, after = margins(opts.values, opts.margin_s)
        plans = [plan_bag(name, path, opts.template.image_topic, opts.shard_seconds,
                          before, after) for name, path in bags.items()]
        todo = _resume(plans, root, digest, manifest, report)
        waiting = {u.bag for u in todo}
        for plan in plans:  # every unit committed before a crash, the bag not yet assembled
            if report.bags.get(plan.name) == "pending" and plan.name not in waiting:
                _assemble(root, plan, fp, report, manifest)
        manifest.save()
        try:
            if todo:
                _process(opts, plans, todo, root, fp, manifest, report, stop, stream, t0)
        finally:
            manifest.save()
            sweep_staging(root)
    report.elapsed_s = time.monotonic() - t0
    report.write_json()
    return report


def _resume(plans: list[BagPlan], root: Path, digest: str, manifest: Manifest,
            report: FleetReport) -> list[Unit]:
    """Rows for what cannot run (unplannable bags) or need not (done: the markers say so);
    returns the units left to do."""
    todo: list[Unit] = []
    for plan in plans:
        if plan.error is not None:
            row = {"unit": f"{plan.name}#plan", "bag": plan.name, "status": "failed",
                   "frames": 0, "attempts": 1,
                   "error": f"bag {plan.name} ({plan.input}): {plan.error}"}
            report.rows.append(row)
            manifest.set(row)
            report.bags[plan.name] = "failed"
            continue
        whole = bag_done(root, plan.name, digest)
        if whole is not None:
            frames = whole.get("frames", {})
            for unit in plan.units:
                _skipped(unit, frames.get(unit.id, 0), manifest, report)
            report.bags[plan.name] = "ok"
            continue
        report.bags[plan.name] = "pending"
        for unit in plan.units:
            marker = unit_done(root, unit, digest)
            if marker is not None:
                _skipped(unit, marker.get("frames", 0), manifest, report)
            else:
                todo.append(unit)
    return todo


def _skipped(unit: Unit, frames: int, manifest: Manifest, report: FleetReport) -> None:
    row = dict(manifest.rows.get(unit.id) or {})
    row.update(unit=unit.id, bag=unit.bag, start=unit.start, stop=unit.stop,
               status="skipped", frames=frames, error=None)
    report.rows.append(row)
    manifest.set(row)


def _process(opts: FleetOptions, plans: list[BagPlan], todo: list[Unit], root: Path,
             fp: dict[str, Any], manifest: Manifest, report: FleetReport,
             stop: StopFlag | None, stream: TextIO, t0: float) -> None:
    # deferred: both import Ray (the optional `fleet` extra), needed only once units run
    from dpt_ros.offline.fleet.actor import FleetWorker
    from dpt_ros.offline.fleet.cluster import connect

    gpus = opts.num_gpus_per_worker
    cluster = connect(opts.address, num_gpus=None)
    try:
        res = cluster.resources()
        workers = opts.workers or _default_workers(res, gpus, opts.cpus_per_worker)
        workers = max(1, min(workers, len(todo)))
        remote = cluster.ray.remote(FleetWorker).options(
            num_cpus=opts.cpus_per_worker, num_gpus=gpus, max_restarts=-1,
            max_task_retries=0, max_concurrency=1)
        if opts.address is None and gpus > res.get("GPU", 0):  # no autoscaler to wait for
            raise CliError(ExitCode.CONFIG, f"--num-gpus-per-worker {gpus}: this machine's "
                           f"Ray has {res.get('GPU', 0):g} GPU(s)")
        actors = [remote.remote(opts.values, opts.crash_units) for _ in range(workers)]
        print(f"fleet: starting {workers} worker(s) ({opts.cpus_per_worker:g} CPU, {gpus:g} "
              f"GPU each; cluster {_resources(res)})", file=stream)
        try:
            infos = cluster.ray.get([a.ready.remote() for a in actors])
        except cluster.ray.exceptions.RayActorError as err:  # e.g. killed loading the model
            raise CliError(ExitCode.CONFIG, f"a worker died while loading the model: "
                           f"{str(err).strip().splitlines()[0]}") from None
        errors = sorted({i["error"] for i in infos if i["error"]})
        if errors:
            raise CliError(ExitCode.CONFIG, f"a worker could not load the model: {errors[0]}")
        report.startup_s = time.monotonic() - t0
        report.ray = {"version": cluster.ray.__version__, "address": opts.address or "local",
                      "resources": res, "nodes": len(cluster.ray.nodes())}
        fp_model = infos[0].get("model")
        print(f"fleet: {workers} worker(s) ready in {report.startup_s:.1f} s ({fp_model}); "
              f"{len(todo)} unit(s) to do", file=stream)
        slots = [Slot(a, k, i["pid"]) for k, (a, i) in enumerate(zip(actors, infos))]
        by_bag = {p.name: p for p in plans}
        remaining = {p.name: {u.id for u in p.units} for p in plans if p.error is None}
        for row in report.rows:
            remaining.get(row["bag"], set()).discard(row["unit"])
        total = sum(by_bag[b].images for b in {u.bag for u in todo})
        progress = Progress(total or None, "fleet", stream=stream)
        progress.done = sum(r.get("frames", 0) for r in report.rows
                            if r["status"] == "skipped" and r["bag"] in {u.bag for u in todo})
        units_total = len(todo)

        def on_row(row: dict[str, Any]) -> None:
            if row.get("status") == "load_error":
                raise CliError(ExitCode.CONFIG, f"a restarted worker could not load the "
                               f"model: {row.get('error')}")
            row.setdefault("model", fp_model)
            report.rows.append(row)
            manifest.set(row)
            manifest.save()
            bag = row["bag"]
            if row["status"] == "failed":
                report.bags[bag] = "failed"
            else:
                remaining[bag].discard(row["unit"])
                if not remaining[bag] and report.bags[bag] != "failed":
                    _assemble(root, by_bag[bag], fp, report, manifest)
            done = sum(r["status"] in ("ok", "failed") for r in report.rows)
            progress.label = f"fleet [{done}/{units_total} units, {len(report.failed)} failed]"
            progress.update(row.get("frames", 0) if row["status"] == "ok" else 0)

        sched = Scheduler(
            cluster.ray, slots,
            submit=lambda actor, unit: actor.run.remote(unit, opts.template, str(root),
                                                        fp["digest"]),
            on_row=on_row, max_attempts=opts.max_attempts,
            should_stop=lambda: bool(stop is not None and stop.stop_requested),
            on_submit=opts.on_submit)
        sched.run(todo)
        progress.close()
        report.interrupted = sched.stopped
        work = max(time.monotonic() - t0 - report.startup_s, 1e-9)
        report.processing_s = work
        report.workers = [
            {"index": s.index, "pid": i["pid"], "host": i["host"], "load_s": round(i["load_s"], 3),
             "units": s.units, "deaths": s.deaths, "busy_s": round(s.busy_s, 3),
             "utilisation": round(min(1.0, s.busy_s / work), 3)}
            for s, i in zip(slots, infos)]
    finally:
        cluster.shutdown()


def _resources(res: dict[str, float]) -> str:
    return ", ".join(f"{k} {res[k]:g}" for k in ("CPU", "GPU") if k in res) or "none"


def _default_workers(res: dict[str, float], gpus: float, cpus: float) -> int:
    if gpus > 0:
        return max(1, math.floor(res.get("GPU", 0) / gpus))
    return max(1, math.floor(res.get("CPU", 1) / max(cpus, 1e-9)))


def _assemble(root: Path, plan: BagPlan, fp: dict[str, Any], report: FleetReport,
              manifest: Manifest) -> None:
    """All units of a bag are committed: build OUTPUT_ROOT/<bag>."""
    frames = {u.id: (manifest.rows.get(u.id) or {}).get("frames", 0) for u in plan.units}
    marker = {"fingerprint": fp["digest"], "bag": plan.name, "input": str(plan.input),
              "units": len(plan.units), "frames": frames}
    try:
        assemble_bag(root, plan.units, marker, plan.topic_counts)
    except (OSError, ValueError, KeyError) as err:
        span = f"log time [{plan.start / NS:.3f}, {plan.end / NS:.3f}) s"
        row = {"unit": f"{plan.name}#assemble", "bag": plan.name, "status": "failed",
               "frames": 0, "attempts": 1,
               "error": f"bag {plan.name} ({plan.input}) {span}: not published: {err}"}
        report.rows.append(row)
        manifest.set(row)
        report.bags[plan.name] = "failed"
        return
    report.bags[plan.name] = "ok"
