"""`dpt-ros fleet` over a directory of bags (sqlite3 and mcap, two cameras, camera_info after
the image, one corrupt bag) on the simulated two-node cluster: every good bag's output is the
bag `dpt-ros bag` writes, the corrupt one is reported (which bag, which range, why) while the
others complete, the exit code says so, and each worker process loaded the model once."""

from __future__ import annotations

import json

import pytest
from _fleet_util import (
    NEEDS_RAY,
    assert_same_bag,
    corrupt,
    ensure_cluster,
    model_args,
    run_fleet,
    single_pass,
    write_cameras_bag,
)

pytestmark = NEEDS_RAY


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    ensure_cluster()
    tmp = tmp_path_factory.mktemp("fleet_eq")
    bags = tmp / "bags"
    bags.mkdir()
    write_cameras_bag(bags / "drive_a", "sqlite3", 7)
    write_cameras_bag(bags / "drive_b", "mcap", 6, first=20)
    write_cameras_bag(bags / "broken_mcap", "mcap", 6, first=40)
    corrupt(bags / "broken_mcap")  # rosbags reads it without an error, fewer messages
    write_cameras_bag(bags / "broken_db", "sqlite3", 6, first=60)
    corrupt(bags / "broken_db")  # sqlite refuses to open it
    report, err = run_fleet([bags, tmp / "out"], [*model_args(tmp), "--workers", "2"])
    return tmp, report, err


def test_outputs_equal_bag_tool(fleet):
    tmp, report, err = fleet
    for name in ("drive_a", "drive_b"):
        single_pass(tmp / "bags" / name, tmp / f"single_{name}", model_args(tmp))
        n = assert_same_bag(tmp / "out" / name, tmp / f"single_{name}")
        assert n > 6 * 5, name
    assert sorted(report.bags.items()) == [("broken_db", "failed"), ("broken_mcap", "failed"),
                                           ("drive_a", "ok"), ("drive_b", "ok")], err


def test_corrupt_bags_reported_others_complete(fleet):
    """Which bag, which time range, why; not retried; the others complete; exit code 7."""
    tmp, report, err = fleet
    failed = {r["bag"]: r for r in report.failed}
    assert sorted(failed) == ["broken_db", "broken_mcap"], err
    mcap, db = failed["broken_mcap"], failed["broken_db"]
    assert mcap["error"].startswith("bag broken_mcap (") and "log time [104.001, 104.5" in \
        mcap["error"], mcap["error"]
    assert "damaged or truncated" in mcap["error"] and "/cam/image_raw: " in mcap["error"]
    assert db["error"].startswith("bag broken_db (") and "whole bag" in db["error"]
    assert "malformed" in db["error"], db["error"]
    assert all(r["attempts"] == 1 for r in failed.values())  # deterministic: not retried
    assert report.exit_code == 7
    assert not (tmp / "out" / "broken_mcap").exists() and not (tmp / "out" / "broken_db").exists()
    manifest = json.loads((tmp / "out" / "fleet_manifest.json").read_text())
    assert manifest["units"][mcap["unit"]]["status"] == "failed"
    assert {r["status"] for u, r in manifest["units"].items() if u.startswith("drive")} \
        == {"ok"}
    summary = json.loads(report.summary_path.read_text())
    assert sorted(f["unit"] for f in summary["failures"]) == sorted(
        r["unit"] for r in failed.values())
    assert summary["bags"] == {"ok": 2, "failed": 2, "pending": 0, "total": 4}
    assert summary["mb_read"] > 0 and summary["mb_written"] > summary["mb_read"]
    assert "FAILED broken_mcap" in report.summary()


def test_model_loaded_once_per_worker_process(fleet):
    _, report, _ = fleet
    rows = [r for r in report.rows if r["status"] == "ok"]
    assert rows and all(r["loads"] == 1 for r in rows)
    assert len({r["pid"] for r in rows}) <= 2
    assert report.ray["nodes"] == 2  # the simulated multi-node cluster
    assert sum(w["units"] for w in report.workers) == 3
    for row in rows:
        assert {"frames", "host", "attempts", "model", "seconds"} <= set(row)
    assert sorted(r["frames"] for r in rows if r["bag"].startswith("drive")) == [6, 7]


def test_rerun_skips_everything_done(fleet, tmp_path):
    tmp, _, _ = fleet
    report, _ = run_fleet([tmp / "bags" / "drive_a", tmp / "bags" / "drive_b", tmp / "out"],
                          [*model_args(tmp), "--workers", "2"])
    assert {r["status"] for r in report.rows} == {"skipped"}
    assert report.exit_code == 0 and report.startup_s == 0  # no worker was started
