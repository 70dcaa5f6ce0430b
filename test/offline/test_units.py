"""Small pieces of the offline tool: progress maths, millimetre PNG encoding, PLY layout,
atomic output directories, Ctrl-C handling, topic names."""

from __future__ import annotations

import io
import os
import signal

import numpy as np
import pytest
import torch

from dpt_ros.core.pointcloud.pack import pack_cloud
from dpt_ros.offline.atomic import AtomicDir
from dpt_ros.offline.exitcodes import CliError, ExitCode
from dpt_ros.offline.interrupt import StopFlag
from dpt_ros.offline.predict.ply import ply_vertices, write_ply
from dpt_ros.offline.predict.writers import depth_to_mm, mm_to_depth
from dpt_ros.offline.progress import Progress, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_rate_eta_and_throttling():
    clock, out = FakeClock(), io.StringIO()
    p = Progress(100, "bag", stream=out, interval=1.0, clock=clock)
    clock.now = 2.0
    p.update(10)  # first update always drawn
    assert p.rate == pytest.approx(5.0) and p.eta == pytest.approx(18.0)
    assert out.getvalue().splitlines() == ["bag 10/100 frames | 5.0 frames/s | ETA 0:00:18"]
    clock.now = 2.5
    p.update(5)  # within the interval: not drawn
    assert len(out.getvalue().splitlines()) == 1
    clock.now = 3.0
    p.update(5)
    assert out.getvalue().splitlines()[-1].startswith("bag 20/100 frames")
    p.update(1)
    p.close()  # the state after the last update was not drawn yet
    assert len(out.getvalue().splitlines()) == 3
    p.close()  # nothing new: no duplicate line
    assert len(out.getvalue().splitlines()) == 3


def test_progress_unknown_total_and_durations():
    p = Progress(None, "predict", stream=io.StringIO(), clock=FakeClock())
    assert "ETA" not in p.line() and p.line().startswith("predict 0 frames")
    assert format_duration(3725) == "1:02:05"
    assert format_duration(float("nan")) == "?"


def test_depth_to_mm_rounds_and_marks_invalid():
    depth = np.array([[0.0004, 0.0006, 1.2344, 1.2346, 65.535, 65.5356, np.nan, -1.0, np.inf]],
                     np.float32)
    mm = depth_to_mm(depth)
    assert mm.dtype == np.uint16
    assert mm.tolist() == [[0, 1, 1234, 1235, 65535, 0, 0, 0, 0]]
    back = mm_to_depth(mm)
    assert np.isnan(back[0, 0]) and back[0, 3] == pytest.approx(1.235)
    rng = np.random.default_rng(0)
    d = rng.uniform(0.1, 60.0, size=(50, 50)).astype(np.float32)
    assert np.abs(mm_to_depth(depth_to_mm(d)) - d).max() <= 0.0005 + 1e-6


def test_ply_from_packed_cloud(tmp_path):
    h, w = 3, 4
    g = torch.Generator().manual_seed(0)
    xyz = torch.rand(h, w, 3, generator=g) + 0.5
    xyz[1, 2] = float("nan")
    rgb = torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 7, (h, w), generator=g)
    cloud = pack_cloud(xyz, rgb, labels)
    v = ply_vertices(cloud)
    keep = torch.isfinite(xyz).all(-1).numpy()
    assert len(v) == keep.sum() == h * w - 1
    np.testing.assert_array_equal(np.stack([v["x"], v["y"], v["z"]], -1), xyz.numpy()[keep])
    np.testing.assert_array_equal(np.stack([v["red"], v["green"], v["blue"]], -1),
                                  rgb.numpy()[keep])
    np.testing.assert_array_equal(v["label"], labels.numpy()[keep])

    path = tmp_path / "c.ply"
    assert write_ply(cloud, path) == h * w - 1
    head, body = path.read_bytes().split(b"end_header\n")
    assert b"element vertex 11" in head and b"property uchar red" in head
    assert b"property uint label" in head
    assert len(body) == 11 * (3 * 4 + 3 + 4)
    assert not list(tmp_path.glob(".*.tmp"))


def test_ply_without_color_and_label_strided():
    xyz = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3) + 1.0
    cloud = pack_cloud(xyz, stride=2)
    v = ply_vertices(cloud)
    assert v.dtype.names == ("x", "y", "z")
    np.testing.assert_array_equal(v["z"], xyz[::2, ::2, 2].reshape(-1).numpy())


def test_atomic_dir_commit_abort_and_force(tmp_path):
    final = tmp_path / "out_bag"
    a = AtomicDir(final)
    assert list(tmp_path.iterdir()) == []  # nothing on disk before start()
    assert a.start() == a.tmp
    assert a.tmp.name == "out_bag" and a.tmp.parent.parent == tmp_path
    a.tmp.mkdir()
    (a.tmp / "data").write_text("new")
    assert not final.exists()
    a.commit()
    assert (final / "data").read_text() == "new" and not a.tmp.exists()

    with pytest.raises(CliError) as err:
        AtomicDir(final)
    assert err.value.code == ExitCode.OUTPUT_EXISTS

    b = AtomicDir(final, force=True)
    b.start().mkdir()
    (b.tmp / "data").write_text("newer")
    b.abort()
    assert (final / "data").read_text() == "new" and not b.staging.exists()

    c = AtomicDir(final, force=True)
    c.start().mkdir()
    (c.tmp / "data").write_text("newest")
    c.commit()
    assert (final / "data").read_text() == "newest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out_bag"]


def test_stop_flag_first_sigint_requests_second_raises():
    before = signal.getsignal(signal.SIGINT)
    with StopFlag() as stop:
        assert not stop.stop_requested
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.stop_requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_topic_names():
    from dpt_ros.offline.topics import topic_name

    assert topic_name("/dpt", "depth/colorized") == "/dpt/depth/colorized"
    assert topic_name("dpt/", "points") == "/dpt/points"
    assert topic_name("/", "depth") == "/depth"
    assert topic_name("/robot/dpt", "depth") == "/robot/dpt/depth"
