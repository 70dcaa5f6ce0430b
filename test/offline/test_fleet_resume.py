"""Nothing lost, nothing half-written, resumable: an interrupted run keeps its committed
units (the done-markers are the truth, even with the manifest gone), a re-run sweeps stale
staging, skips what is done and completes the rest into the single pass's bag; a change of
model is refused unless --force."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from _fleet_util import (
    NEEDS_RAY,
    assert_same_bag,
    checkpoints,
    model_args,
    run_fleet,
    single_pass,
    write_cameras_bag,
)

from dpt_ros.offline.exitcodes import CliError, ExitCode

pytestmark = NEEDS_RAY


def test_interrupt_resume_and_model_guard(ray_cluster, tmp_path):
    bags = tmp_path / "bags"
    bags.mkdir()
    write_cameras_bag(bags / "r1", "mcap", 8)
    write_cameras_bag(bags / "r2", "sqlite3", 8, first=30)
    root = tmp_path / "out"
    args = [*model_args(tmp_path, segmentation=False), "--shard-seconds", "0.2",
            "--workers", "2"]

    stop = SimpleNamespace(stop_requested=False)
    submitted = []

    def interrupt_after_two(unit, slot):  # Ctrl-C once two units are in flight
        submitted.append(unit.id)
        if len(submitted) == 2:
            stop.stop_requested = True

    first, _ = run_fleet([bags, root], args, stop=stop, on_submit=interrupt_after_two)
    assert first.interrupted and first.exit_code == ExitCode.INTERRUPTED
    assert first.count("ok") == 2 and set(first.bags.values()) == {"pending"}
    assert not (root / "r1").exists() and not (root / "r2").exists()

    # The run's bookkeeping lost (an abort after the commits), a killed attempt's staging left
    (root / "fleet_manifest.json").unlink()
    stale = root / ".staging" / "r1_1.deadbeef" / "r1_1"
    stale.mkdir(parents=True)
    (stale / "r1_1.mcap").write_bytes(b"half")

    second, err = run_fleet([bags, root], args)
    assert "removed 1 stale staging" in err
    assert second.exit_code == 0, err
    assert sorted(r["unit"] for r in second.rows if r["status"] == "skipped") == \
        sorted(submitted)
    assert second.count("ok") == 8 - 2
    assert not any((root / ".staging").iterdir())
    assert not (root / ".units" / "r1").exists()  # units folded into the bags
    for name in ("r1", "r2"):
        single_pass(bags / name, tmp_path / f"single_{name}",
                    model_args(tmp_path, segmentation=False))
        assert_same_bag(root / name, tmp_path / f"single_{name}")
    manifest = json.loads((root / "fleet_manifest.json").read_text())
    assert {r["status"] for r in manifest["units"].values()} == {"ok", "skipped"}
    assert manifest["fingerprint"]["model"]["depth_model"] == str(checkpoints()["metric"])

    # Another model into the same root: refused, nothing touched
    other = [*model_args(tmp_path, segmentation=False)[:-2], "--depth-model",
             str(checkpoints()["relative"]), "--batch-size", "1", "--shard-seconds", "0.2"]
    before = (root / "fleet_manifest.json").read_text()
    with pytest.raises(CliError) as refused:
        run_fleet([bags, root], other)
    assert refused.value.code == ExitCode.OUTPUT_EXISTS
    assert "depth_model" in str(refused.value) and "--force" in str(refused.value)
    assert (root / "fleet_manifest.json").read_text() == before

    # --force: redone with the new model, the root now records it
    forced, err = run_fleet([bags / "r1", root], [*other, "--force"])
    assert forced.exit_code == 0, err
    assert forced.count("ok") == 4 and forced.count("skipped") == 0
    manifest = json.loads((root / "fleet_manifest.json").read_text())
    assert manifest["fingerprint"]["model"]["depth_model"] == str(checkpoints()["relative"])
