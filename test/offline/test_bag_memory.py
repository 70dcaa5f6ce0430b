"""`dpt-ros bag` holds a bounded number of copied messages, whatever the bag holds.

The reader and the writer are watched from outside: before each message the reader hands
over, the messages read but not yet written are counted (and their bytes summed). A bag
whose images are all rejected must not buffer at all (nothing waits for a model pass); a
bag of good images buffers at most one batch's worth, or `buffer_bytes`. The output keeps
every input message, in log-time order. Runs on the shipped synthetic checkpoint (no
transformers needed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("rosbags")

from _offline_util import CHATTER_TOPIC, IMAGE_TOPIC, INFO_TOPIC, read_bag, write_bag

from dpt_ros.core.pipeline.pipeline import Pipeline
from dpt_ros.offline import bag as bag_tool
from dpt_ros.offline import bag_io

ROOT = Path(__file__).resolve().parents[2]
SYNTH = ROOT / "dpt_ros" / "weights" / "synthetic-depth"


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(depth_model=str(SYNTH), device="cpu")


class Watch:
    """Counts messages read and copies written; records the worst backlog."""

    def __init__(self) -> None:
        self.read = self.written = 0
        self.read_bytes = self.written_bytes = 0
        self.max_backlog = self.max_backlog_bytes = 0
        self.copy_ids: set[int] = set()

    def before_next(self) -> None:
        self.max_backlog = max(self.max_backlog, self.read - self.written)
        self.max_backlog_bytes = max(self.max_backlog_bytes, self.read_bytes - self.written_bytes)


@pytest.fixture
def watch(monkeypatch) -> Watch:
    w = Watch()
    real_reader, real_open, real_copy = bag_tool.Reader, bag_io.open_writer, \
        bag_io.copy_connections

    class Reader(real_reader):
        def messages(self, *args, **kwargs):
            for conn, t, raw in super().messages(*args, **kwargs):
                if not args and not kwargs:  # the main pass (not the camera_info pre-scan)
                    w.before_next()
                    w.read += 1
                    w.read_bytes += len(raw)
                yield conn, t, raw

    def open_writer(path, storage):
        writer = real_open(path, storage)
        write = writer.write

        def counted(conn, t, data):
            if conn.id in w.copy_ids:
                w.written += 1
                w.written_bytes += len(data)
            return write(conn, t, data)

        writer.write = counted
        return writer

    def copy_connections(writer, connections):
        out = real_copy(writer, connections)
        w.copy_ids = {c.id for c in out.values()}
        return out

    monkeypatch.setattr(bag_tool, "Reader", Reader)
    monkeypatch.setattr(bag_io, "open_writer", open_writer)
    monkeypatch.setattr(bag_io, "copy_connections", copy_connections)
    return w


def _run(tmp_path: Path, pipeline: Pipeline, **opts):
    out = tmp_path / "out"
    report = bag_tool.run_bag(bag_tool.BagOptions(
        input=tmp_path / "in", output=out, image_topic=IMAGE_TOPIC,
        camera_info_topic=INFO_TOPIC, **opts), pipeline)
    return report, out


def _check_copied(tmp_path: Path, out: Path) -> None:
    inp = read_bag(tmp_path / "in")
    got = read_bag(out)
    times = [t for _, _, t, _ in got]
    assert times == sorted(times)
    assert [m for m in got if not m[0].startswith("/dpt/")] == inp


@pytest.mark.parametrize("frames", [20, 80])
def test_all_rejected_images_buffer_nothing(tmp_path, pipeline, watch, frames):
    write_bag(tmp_path / "in", "sqlite3", frames, bad={i: "short" for i in range(frames)})
    report, out = _run(tmp_path, pipeline, batch_size=8)
    assert report.processed == 0 and sum(report.skipped.values()) == frames
    assert watch.read == frames * 2 + frames // 2  # images, camera infos, chatter
    assert watch.written == watch.read
    assert watch.max_backlog == 0  # every copy out before the next message is read
    _check_copied(tmp_path, out)


def test_good_images_buffer_at_most_the_cap(tmp_path, pipeline, watch):
    write_bag(tmp_path / "in", "mcap", 24)
    image_bytes = len(next(raw for topic, _, _, raw in read_bag(tmp_path / "in")
                           if topic == IMAGE_TOPIC))
    cap = 3 * image_bytes  # well below a batch of 8 frames (and their infos and chatter)
    report, out = _run(tmp_path, pipeline, batch_size=8, buffer_bytes=cap)
    assert report.processed == 24 and not report.skipped
    assert watch.written == watch.read
    assert 0 < watch.max_backlog_bytes <= cap + image_bytes  # the cap plus the last message
    _check_copied(tmp_path, out)
    written = [m for m in read_bag(out) if m[0] == "/dpt/depth/image"]
    assert len(written) == 24
    assert CHATTER_TOPIC in {m[0] for m in read_bag(out)}
