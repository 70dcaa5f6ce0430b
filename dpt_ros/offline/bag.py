"""`dpt-ros bag`: run the node's pipeline over a recorded bag and write a new bag.

Input messages are deserialised with `rclpy.serialization.deserialize_message`, so
dpt_ros.messages gets exactly the message objects the node gets from a subscription, and
outputs are built by dpt_ros.messages and serialised with `serialize_message`, so the output
bag holds the bytes the node would publish. rosbags only reads and writes raw CDR.

Alignment (`--depth-reference-topic`, `--points-reference-topic`): each image is paired, in
bag time, with the references nearest in stamp within `alignment.slop_ms`
(`core.camera.sync.ReferenceSync`, every image kept and in order; an image waits up to
`REFERENCE_WAIT_S` of bag time for a reference stamped at or after it) and aligned by the
pipeline's per-camera `Aligner`, as in the node; `--alignment-report` writes the fit of
every frame (CSV), the summary says how many frames were aligned.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rclpy.serialization import deserialize_message, serialize_message
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from dpt_ros import messages
from dpt_ros.config.params import DEFAULTS
from dpt_ros.config.settings import DEFAULT_DECODE, DecodeOptions
from dpt_ros.core.alignment import Extrinsic
from dpt_ros.core.camera.camera_info import stamp_ns, stamp_text
from dpt_ros.core.camera.sync import ReferenceSync
from dpt_ros.core.errors import BadInput
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline
from dpt_ros.offline import bag_io
from dpt_ros.offline.alignment_report import AlignmentReport
from dpt_ros.offline.atomic import AtomicDir
from dpt_ros.offline.camera_infos import NO_INFO, BagCameras
from dpt_ros.offline.exitcodes import CliError, ExitCode, run_exit_code
from dpt_ros.offline.interrupt import StopFlag
from dpt_ros.offline.progress import Progress
from dpt_ros.offline.topics import (
    LABELS,
    labels_message,
    result_messages,
    select_topics,
    topic_name,
    wanted_outputs,
)

IMAGE_TYPES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage}
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
REFERENCE_TYPES = {"depth": ("sensor_msgs/msg/Image", Image),
                   "points": ("sensor_msgs/msg/PointCloud2", PointCloud2)}
REFERENCE_WAIT_S = 1.0  # bag time an image may wait for its reference (no latency offline)


@dataclass(frozen=True)
class Window:
    """A log-time slice of a bag processed on its own (a `dpt-ros fleet` shard).

    The pipeline is stateful in log time (camera_info and reference waits, the alignment
    filter), so the slice reads a margin around its range, `[read_start, read_stop)`, and
    writes (and counts) only what is logged in `[start, stop)`: a frame near an edge is
    paired and aligned as in the whole-bag pass, and shards side by side write every
    message exactly once.
    """

    start: int
    stop: int
    read_start: int
    read_stop: int

    def __contains__(self, t: int) -> bool:
        return self.start <= t < self.stop


@dataclass
class BagOptions:
    """What `dpt-ros bag` was asked to do."""

    input: Path
    output: Path
    image_topic: str
    camera_info_topic: str | None = None
    batch_size: int = 8
    prefix: str = "/dpt"
    topics_out: list[str] | None = None  # None = every output the model can produce
    storage: str | None = None  # sqlite3 | mcap; None = same as the input
    force: bool = False
    # node parameter values (sync.*, camera.*: how images find their camera_info, the
    # intrinsics without one), defaults for those not given
    params: dict[str, Any] = field(default_factory=dict)
    decode: DecodeOptions = DEFAULT_DECODE  # node parameters input.bits / input.max_pixels
    # Copied messages held back while decoded frames wait for their model pass; past this
    # many bytes the partial batch runs early, so memory stays bounded whatever the bag holds.
    buffer_bytes: int = 64 << 20
    depth_reference_topic: str | None = None  # alignment references (Image / PointCloud2)
    points_reference_topic: str | None = None
    alignment_report: Path | None = None  # per-frame CSV of the fit


@dataclass
class BagReport:
    """Counts for the summary and the exit code."""

    images: int = 0  # image messages in the input (from the bag's index)
    processed: int = 0
    skipped: Counter = field(default_factory=Counter)  # (topic, reason) -> count
    no_points: Counter = field(default_factory=Counter)  # why -> frames written without points
    written: Counter = field(default_factory=Counter)  # output topic -> count
    not_copied: list[str] = field(default_factory=list)
    interrupted: bool = False
    elapsed: float = 0.0
    output: Path | None = None  # set once the output is in place
    alignment: AlignmentReport | None = None
    bytes_read: int = 0  # raw message bytes read from the input (fleet throughput)

    @property
    def exit_code(self) -> ExitCode:
        return run_exit_code(self.interrupted, bool(self.skipped))

    def summary(self) -> str:
        rate = self.processed / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"processed {self.processed}/{self.images} images in {self.elapsed:.1f} s "
            f"({rate:.1f} frames/s)"
        ]
        if self.skipped:
            total = sum(self.skipped.values())
            lines.append(f"skipped {total} malformed message(s):")
            lines += [f"  {n} x {topic}: {why}" for (topic, why), n in sorted(self.skipped.items())]
        if self.no_points:
            total = sum(self.no_points.values())
            lines.append(f"written without points: {total} frame(s) (their depth is written):")
            lines += [f"  {n} x {why}" for why, n in sorted(self.no_points.items())]
        if self.not_copied:
            lines.append(f"not copied (unknown message definition): {', '.join(self.not_copied)}")
        if self.alignment is not None:
            lines += self.alignment.summary()
        if self.interrupted:
            lines.append("interrupted: no output was written")
        elif self.output is not None:
            lines.append(f"wrote {self.output}")
            lines += [f"  {topic}: {n}" for topic, n in sorted(self.written.items())]
        return "\n".join(lines)


def run_bag(
    opts: BagOptions,
    pipeline: Pipeline,
    stop: StopFlag | None = None,
    stream: TextIO | None = None,
    window: Window | None = None,
    atomic: AtomicDir | None = None,
) -> BagReport:
    """Process `opts.input` into `opts.output`; raises CliError for user-facing failures.

    `window` restricts the run to one log-time slice (fleet shards); `atomic` replaces the
    default staging next to the output (the fleet commits units its own way)."""
    inp, out = Path(opts.input).absolute(), Path(opts.output).absolute()
    _check_paths(inp, out)
    atomic = atomic if atomic is not None else AtomicDir(out, opts.force)
    try:
        reader = Reader(inp)
        reader.open()
    except (ReaderError, OSError, sqlite3.DatabaseError) as err:
        raise CliError(ExitCode.INPUT, f"cannot read bag {inp}: {err}") from None
    try:
        return _Run(opts, pipeline, reader, atomic, stop, stream, window).run()
    finally:
        reader.close()


def _check_paths(inp: Path, out: Path) -> None:
    if not inp.exists():
        raise CliError(ExitCode.INPUT, f"input bag {inp} does not exist")
    ri, ro = inp.resolve(), out.resolve()
    if ri == ro or ri in ro.parents or ro in ri.parents:
        raise CliError(ExitCode.USAGE, "the output must be outside the input bag (and not hold it)")


class _Run:
    """One bag conversion: state shared by the read loop and the batch flush."""

    def __init__(
        self,
        opts: BagOptions,
        pipeline: Pipeline,
        reader: Reader,
        atomic: AtomicDir,
        stop: StopFlag | None,
        stream: TextIO | None,
        window: Window | None = None,
    ) -> None:
        self.opts, self.pipeline, self.reader, self.atomic = opts, pipeline, reader, atomic
        self.stop, self.stream, self.window = stop, stream, window
        self.report = BagReport()
        self.image_conns = self._connections(opts.image_topic, set(IMAGE_TYPES))
        self.cam_conns = (
            self._connections(opts.camera_info_topic, {CAMERA_INFO_TYPE})
            if opts.camera_info_topic
            else []
        )
        self.report.images = sum(c.msgcount for c in self.image_conns)
        values = {**DEFAULTS, **opts.params}
        self.cameras = BagCameras(values, sum(c.msgcount for c in self.cam_conns) > 0,
                                  opts.image_topic)
        self.ref_conns = {
            kind: self._connections(topic, {REFERENCE_TYPES[kind][0]})
            for kind, topic in (("depth", opts.depth_reference_topic),
                                ("points", opts.points_reference_topic)) if topic
        }
        if self.ref_conns and not (pipeline.alignment.enabled or pipeline.takes_prompt):
            raise CliError(ExitCode.USAGE, "a reference topic needs alignment.mode scale or "
                           "scale_shift (--alignment-mode, or the parameter file), or a "
                           "Prompt Depth Anything model")
        self.refs: ReferenceSync[tuple[tuple[str, int, Any], Any]] = ReferenceSync(
            values["alignment.slop_ms"] / 1000.0, REFERENCE_WAIT_S, newest_only=False,
            pending=1 << 30, expected=tuple(k for k, conns in self.ref_conns.items()
                                            if sum(c.msgcount for c in conns)))
        ext = Extrinsic.from_list(values["alignment.extrinsic"])
        self.extrinsic = None if ext.is_identity else ext
        try:
            self.topics = select_topics(pipeline, opts.topics_out)
        except ValueError as err:
            raise CliError(ExitCode.USAGE, str(err)) from None
        if not self.topics:
            raise CliError(ExitCode.USAGE, "nothing to write: no output topic selected")
        self.want = wanted_outputs(self.topics)
        names = {topic_name(opts.prefix, t.name) for t in self.topics}
        clash = sorted(names & {c.topic for c in reader.connections})
        if clash:
            raise CliError(
                ExitCode.USAGE, f"the input already has {clash}; choose another --prefix"
            )
        # (log time, header, frame, info, reference kinds)
        self.batch: list[tuple[int, Any, Frame, Any, list[str]]] = []
        self.pending: list[tuple[int, Connection, bytes]] = []  # copies waiting for the batch
        self.pending_bytes = 0

    def _connections(self, topic: str, types: set[str]) -> list[Connection]:
        conns = [c for c in self.reader.connections if c.topic == topic]
        if not conns:
            have = sorted({c.topic for c in self.reader.connections if c.msgtype in types})
            raise CliError(ExitCode.INPUT, f"topic {topic} is not in the bag (candidates: {have})")
        wrong = sorted({c.msgtype for c in conns} - types)
        if wrong:
            raise CliError(
                ExitCode.INPUT, f"topic {topic} has type {wrong}, expected {sorted(types)}"
            )
        return conns

    def run(self) -> BagReport:
        storage = self.opts.storage or bag_io.input_storage(Path(self.opts.input))
        start = time.monotonic()
        progress = Progress(self.report.images or None, "bag", stream=self.stream)
        tmp = self.atomic.start()
        writer = None
        done = False
        try:
            if self.pipeline.alignment.enabled or self.pipeline.takes_prompt:
                self.report.alignment = AlignmentReport(self.opts.alignment_report)
            writer = bag_io.open_writer(tmp, storage)
            copies = bag_io.copy_connections(writer, self.reader.connections)
            self.report.not_copied = sorted(
                {c.topic for c in self.reader.connections if c.id not in copies}
            )
            self.outputs = {
                t.name: bag_io.add_output_connection(
                    writer, topic_name(self.opts.prefix, t.name), t.msgtype
                )
                for t in self.topics
            }
            self.writer, self.progress = writer, progress
            if LABELS in self.outputs:
                if self._inside(self.reader.start_time):
                    raw = serialize_message(labels_message(self.pipeline.labels))
                    writer.write(self.outputs[LABELS], self.reader.start_time, raw)
                    self.report.written[topic_name(self.opts.prefix, LABELS)] += 1
            self._read_all(copies)
            progress.close()
            self.report.elapsed = time.monotonic() - start
            if not self.report.interrupted:
                writer.close()
                self.atomic.commit()
                self.report.output = self.atomic.final
                done = True
        finally:
            if self.report.alignment is not None:
                self.report.alignment.close()
            if not done:
                if writer is not None:
                    writer.abort()
                self.atomic.abort()
        return self.report

    def _read_all(self, copies: dict[int, Connection]) -> None:
        image_ids = {c.id: IMAGE_TYPES[c.msgtype] for c in self.image_conns}
        cam_ids = {c.id for c in self.cam_conns}
        ref_ids = {c.id: kind for kind, conns in self.ref_conns.items() for c in conns}
        w = self.window
        span = {} if w is None else {"start": w.read_start, "stop": w.read_stop}
        try:
            for conn, t, raw in self.reader.messages(**span):
                if self.stop is not None and self.stop.stop_requested:
                    self.report.interrupted = True
                    return
                self.report.bytes_read += len(raw)
                if conn.id in copies:
                    self.pending.append((t, copies[conn.id], raw))
                    self.pending_bytes += len(raw)
                if conn.id in cam_ids:
                    self._camera_info(conn.topic, t, raw)
                elif conn.id in image_ids:
                    self._image(conn.topic, t, raw, image_ids[conn.id])
                elif conn.id in ref_ids:
                    self._reference(conn.topic, t, raw, ref_ids[conn.id])
                self._unpaired(self.cameras.expire(t / 1e9))
                self._decode(self.refs.expire(t / 1e9))
                if self.pending_bytes > self.opts.buffer_bytes:
                    self._unpaired(self.cameras.flush())  # memory first: stop waiting
                    self._decode(self.refs.flush())
                if len(self.batch) >= self.opts.batch_size or self.pending_bytes > (
                    self.opts.buffer_bytes
                ) or not (self.batch or self.cameras.waiting or self.refs.waiting):
                    # No frame waiting: nothing can come before the copies, write them now.
                    self._flush()
        except (ReaderError, OSError, sqlite3.DatabaseError) as err:
            raise CliError(ExitCode.INPUT, f"input bag unreadable: {err}") from None
        self._unpaired(self.cameras.flush())
        self._decode(self.refs.flush())
        self._flush()

    def _inside(self, t: int) -> bool:
        """Whether log time `t` is this run's to write and count (always, without a window)."""
        return self.window is None or t in self.window

    def _skip(self, topic: str, t: int, why: str) -> None:
        if self._inside(t):
            self.report.skipped[(topic, why)] += 1

    def _camera_info(self, topic: str, t: int, raw: bytes) -> None:
        try:
            msg = deserialize_message(raw, CameraInfo)
        except Exception:  # rclpy raises its own RMWError types for bad CDR
            self._skip(topic, t, "undecodable CDR")
            return
        for item, info in self.cameras.add_info(msg):
            self._paired(item, info)

    def _image(self, topic: str, t: int, raw: bytes, cls: type) -> None:
        try:
            msg = deserialize_message(raw, cls)
        except Exception:  # rclpy raises its own RMWError types for bad CDR
            self._skip(topic, t, "undecodable CDR")
            return
        for item, info in self.cameras.add_image(msg, (topic, t, msg), t / 1e9):
            self._paired(item, info)

    def _reference(self, topic: str, t: int, raw: bytes, kind: str) -> None:
        try:
            msg = deserialize_message(raw, REFERENCE_TYPES[kind][1])
        except Exception:  # rclpy raises its own RMWError types for bad CDR
            self._skip(topic, t, "undecodable CDR")
            return
        self._decode(self.refs.add_reference(kind, stamp_ns(msg.header), msg, t / 1e9))

    def _unpaired(self, items: list[tuple[str, int, Any]]) -> None:
        for topic, t, _ in items:
            self._skip(topic, t, "no camera_info with its stamp")

    def _paired(self, item: tuple[str, int, Any], info: Any) -> None:
        """An image that has its camera_info (or needs none): on to its references."""
        _, t, msg = item
        self._decode(self.refs.add_image(stamp_ns(msg.header), (item, info), t / 1e9))

    def _decode(self, released: list[tuple[tuple[tuple[str, int, Any], Any], dict]]) -> None:
        for (item, info), refs in released:
            self._frame(item, info, refs)

    def _frame(self, item: tuple[str, int, Any], info: Any, refs: dict) -> None:
        """Decode an image (and its references) into the batch, as the node does."""
        topic, t, msg = item
        try:  # the node's decoder: YUV / Bayer stay sensor bytes, converted on the device
            frame = messages.decode_frame(
                msg, self.opts.decode,
                lambda width, height: self.cameras.camera(info, width, height))
        except BadInput as err:
            self._skip(topic, t, f"bad input ({err.kind})")
            return
        try:
            frame.reference = messages.frame_reference(
                refs.get("depth"), refs.get("points"), self.extrinsic,
                self.opts.decode.max_pixels, msg.header.frame_id,
                str(self.opts.depth_reference_topic))
        except BadInput as err:  # the frame goes on without it, as in the node
            topics = {"depth": self.opts.depth_reference_topic,
                      "points": self.opts.points_reference_topic}
            names = ", ".join(str(topics[k]) for k in sorted(refs))
            self._skip(names, t, f"bad reference: {err}")
            refs = {}
        lens = messages.unsupported_lens(frame.intrinsics, str(self.opts.camera_info_topic))
        if lens and "points" in self.want and self._inside(t):  # depth written, as the node
            self.report.no_points[lens] += 1
        self.batch.append((t, msg.header, frame, None if info is NO_INFO else info,
                           sorted(refs)))

    def _flush(self) -> None:
        """Run the batch (if any), then write copies and outputs in log-time order. The
        reader yields log-time order, so everything written later is not earlier."""
        records: list[tuple[int, int, Connection, bytes]] = [
            (t, 0, conn, raw) for t, conn, raw in self.pending if self._inside(t)
        ]
        if self.batch:
            results = self.pipeline.process([f for _, _, f, _, _ in self.batch], self.want)
            for (t, header, frame, info, refs), result in zip(self.batch, results):
                if not self._inside(t):  # a margin frame: it only carried state
                    continue
                if self.report.alignment is not None:
                    self.report.alignment.add(stamp_text(stamp_ns(header)), result.alignment,
                                              refs)
                size = frame.size[::-1]
                for topic, msg in result_messages(result, header, self.topics, info, size):
                    records.append((t, 1, self.outputs[topic.name], serialize_message(msg)))
                    self.report.written[topic_name(self.opts.prefix, topic.name)] += 1
                self.report.processed += 1
        records.sort(key=lambda r: (r[0], r[1]))
        for t, _, conn, data in records:
            self.writer.write(conn, t, data)
        if self.batch:
            self.progress.update(len(self.batch))
            if self.report.alignment is not None:
                self.report.alignment.flush()
        self.batch.clear()
        self.pending.clear()
        self.pending_bytes = 0
