"""Log-time shards: a bag cut into `--shard-seconds` units (camera_info logged after its image,
so pairing across a boundary needs the margin) joins into the bag the single pass writes —
no stamp missing or doubled at a boundary — listed as one rosbag2 bag of several files."""

from __future__ import annotations

import itertools
from collections import Counter

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
from _offline_util import read_bag

from dpt_ros.offline.fleet.units import NS, make_units, shard_ranges


def test_shard_ranges_tile_the_bag():
    start, end = 100 * NS, 103 * NS + 1
    for files, shard in (([], None), ([], NS // 3), ([101 * NS, 102 * NS + 7], NS // 2),
                         ([start, 101 * NS], None)):
        ranges = shard_ranges(start, end, files, shard)
        assert ranges[0][0] == start and ranges[-1][1] == end
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # no gap, no overlap
        assert all(lo < hi for lo, hi in ranges)
        if shard:
            assert max(hi - lo for lo, hi in ranges) <= shard
        assert {t for t in files if start < t < end} <= {lo for lo, _ in ranges}
    units = make_units("b", "/in/b", shard_ranges(start, end, [], NS), start, end, NS, NS // 2)
    assert [u.dir_name for u in units] == ["b_0", "b_1", "b_2", "b_3"]
    assert units[0].read_start == start and units[-1].read_stop == end
    assert units[2].read_start == units[2].start - NS
    assert units[2].read_stop == units[2].stop + NS // 2


@NEEDS_RAY
@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_shards_join_into_the_single_pass(ray_cluster, tmp_path, storage):
    bags = tmp_path / "bags"
    bags.mkdir()
    write_cameras_bag(bags / "long", storage, 12)
    # 0.35 s shards of a 10 Hz bag: boundaries fall between an image and its camera_info
    report, err = run_fleet([bags, tmp_path / "out"],
                            [*model_args(tmp_path, segmentation=False), "--shard-seconds",
                             "0.35", "--workers", "2"])
    assert report.exit_code == 0, err
    assert report.count("ok") == 4
    assert sorted(r["frames"] for r in report.rows) == [3, 3, 3, 3]
    single_pass(bags / "long", tmp_path / "single", model_args(tmp_path, segmentation=False))
    assert_same_bag(tmp_path / "out" / "long", tmp_path / "single")

    out = read_bag(tmp_path / "out" / "long")
    per_topic = Counter(topic for topic, _, _, _ in out)
    times = [(topic, t) for topic, _, t, _ in out]
    assert len(times) == len(set(times))  # nothing doubled at a boundary
    assert per_topic["/dpt/depth/image"] == per_topic["/cam/image_raw"] == 12  # nothing missing
    meta = yaml.safe_load((tmp_path / "out" / "long" / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    suffix = "mcap" if storage == "mcap" else "db3"
    assert info["relative_file_paths"] == [f"long_{k}.{suffix}" for k in range(4)]
    assert info["message_count"] == len(out)
    assert [t for _, _, t, _ in out] == sorted(t for _, _, t, _ in out)  # log-time order
