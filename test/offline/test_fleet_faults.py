"""Faults the fleet must survive and report in bounded time: a worker process killed
mid-run (by the pid the test reads) costs one retry and nothing else; a unit that crashes
its worker every time is reported after --max-attempts while every other unit completes."""

from __future__ import annotations

import os
import signal
import time

from _fleet_util import (
    NEEDS_RAY,
    assert_same_bag,
    model_args,
    run_fleet,
    single_pass,
    write_cameras_bag,
)

pytestmark = NEEDS_RAY


def test_killed_worker_retried_nothing_lost(ray_cluster, tmp_path):
    bags = tmp_path / "bags"
    bags.mkdir()
    write_cameras_bag(bags / "k", "mcap", 9)
    killed: list[int] = []

    def kill_once(unit, slot):
        if unit.id == "k#1" and not killed:
            killed.append(slot.pid)
            os.kill(slot.pid, signal.SIGKILL)  # only the worker this unit was handed to

    report, err = run_fleet([bags, tmp_path / "out"],
                            [*model_args(tmp_path, segmentation=False), "--shard-seconds",
                             "0.3", "--workers", "2"], on_submit=kill_once)
    assert killed, "unit k#1 was never submitted"
    assert report.exit_code == 0, err
    rows = {r["unit"]: r for r in report.rows}
    assert rows["k#1"]["attempts"] == 2 and rows["k#1"]["status"] == "ok"
    assert all(r["attempts"] == 1 for u, r in rows.items() if u != "k#1")
    assert sum(w["deaths"] for w in report.workers) == 1
    assert all(r["loads"] == 1 for r in rows.values())  # the restarted process loaded once
    single_pass(bags / "k", tmp_path / "single", model_args(tmp_path, segmentation=False))
    assert_same_bag(tmp_path / "out" / "k", tmp_path / "single")


def test_poison_unit_reported_after_max_attempts(ray_cluster, tmp_path):
    bags = tmp_path / "bags"
    bags.mkdir()
    write_cameras_bag(bags / "p", "sqlite3", 6)
    write_cameras_bag(bags / "q", "sqlite3", 4, first=10)
    t0 = time.monotonic()
    report, _err = run_fleet([bags, tmp_path / "out"],
                            [*model_args(tmp_path, segmentation=False), "--shard-seconds",
                             "0.3", "--workers", "2", "--max-attempts", "2"],
                            crash_units=frozenset({"p#0"}))
    elapsed = time.monotonic() - t0
    assert elapsed < 90, elapsed
    (row,) = report.failed
    assert row["unit"] == "p#0" and row["attempts"] == 2
    assert "worker process died on each of 2 attempt(s)" in row["error"]
    assert "bag p (" in row["error"] and "log time [100.001, " in row["error"]
    assert report.exit_code == 7
    assert report.bags == {"p": "failed", "q": "ok"}
    assert report.count("ok") == len(report.rows) - 1  # every other unit of p and q
    assert (tmp_path / "out" / "q").is_dir() and not (tmp_path / "out" / "p").exists()
    assert "FAILED p#0 after 2 attempt(s)" in report.summary()


def test_model_that_cannot_load_fails_the_job(ray_cluster, tmp_path):
    """Every worker would fail the same way: the job stops at start-up with the reason."""
    import pytest

    from dpt_ros.offline.exitcodes import CliError, ExitCode

    bags = tmp_path / "bags"
    bags.mkdir()
    write_cameras_bag(bags / "m", "mcap", 2)
    broken = tmp_path / "broken_ckpt"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "dpt", "architectures": ["Nope"]}')
    with pytest.raises(CliError) as failed:
        run_fleet([bags, tmp_path / "out"], ["--depth-model", str(broken), "--device", "cpu"])
    assert failed.value.code == ExitCode.CONFIG
    assert "could not load the model" in str(failed.value), failed.value
    assert not (tmp_path / "out" / "m").exists()
