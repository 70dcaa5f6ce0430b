"""Bags behind a URL (pyarrow file systems, as Ray Data reads them; `file://` here, the same
code as `s3://`): the driver plans from the remote metadata.yaml alone; each unit copies only
the storage files its read window overlaps, into a private folder it removes; the output
equals `dpt-ros bag` on the bag itself. The input is a split rosbag2 bag (two files)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from _fleet_util import (
    NEEDS_RAY,
    assert_same_bag,
    model_args,
    run_fleet,
    single_pass,
    write_cameras_bag,
)
from _offline_util import log_time, read_bag

pytest.importorskip("pyarrow", reason="pyarrow (Ray Data's file systems) is not installed")

from dpt_ros.offline.fleet.assemble import merge_metadata
from dpt_ros.offline.fleet.remote import fetch, find_remote_bags


def _split_bag(root, name: str = "split"):
    """A rosbag2 bag of two storage files (frames 0-5, then 6-11), like a split recording."""
    bag = root / name
    bag.mkdir(parents=True)
    metas = []
    for k, first in enumerate((0, 6)):
        part = root / f"{name}_{k}"
        write_cameras_bag(part, "mcap", 6, first=first)
        shutil.move(part / f"{name}_{k}.mcap", bag / f"{name}_{k}.mcap")
        metas.append(yaml.safe_load((part / "metadata.yaml").read_text()))
        shutil.rmtree(part)
    (bag / "metadata.yaml").write_text(yaml.safe_dump(merge_metadata(metas), sort_keys=False))
    return bag


def test_fetch_copies_only_the_files_of_the_window(tmp_path):
    bag = _split_bag(tmp_path / "bags")
    url = f"file://{tmp_path / 'bags'}"
    assert find_remote_bags(url) == [f"file://{bag}"]
    all_msgs = read_bag(bag)
    assert len({t for _, _, t, _ in all_msgs}) == len(all_msgs)
    local = fetch(f"file://{bag}", log_time(1), log_time(3), tmp_path / "copy" / "split")
    assert sorted(p.name for p in local.iterdir()) == ["metadata.yaml", "split_0.mcap"]
    assert read_bag(local) == [m for m in all_msgs if m[2] < log_time(6) - 10_000_000]
    local = fetch(f"file://{bag}", log_time(5), log_time(7), tmp_path / "copy2" / "split")
    assert sorted(p.name for p in local.iterdir()) == ["metadata.yaml", "split_0.mcap",
                                                       "split_1.mcap"]


@NEEDS_RAY
def test_remote_split_bag_equals_single_pass(ray_cluster, tmp_path):
    copies = Path(tempfile.gettempdir())
    before = set(copies.glob("dpt_fleet_in_*"))
    bag = _split_bag(tmp_path / "bags")
    args = model_args(tmp_path, segmentation=False)
    report, err = run_fleet([f"file://{tmp_path / 'bags'}", tmp_path / "out"],
                            [*args, "--shard-seconds", "0.3", "--workers", "2"])
    assert report.exit_code == 0, err
    assert report.count("ok") >= 4 and report.bags == {"split": "ok"}
    assert all(r["bytes_read"] > 0 for r in report.rows)
    single_pass(bag, tmp_path / "single", args)
    assert_same_bag(tmp_path / "out" / "split", tmp_path / "single")
    assert set(copies.glob("dpt_fleet_in_*")) <= before  # the units' copies are gone
