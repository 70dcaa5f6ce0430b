"""What the demo hears over DDS: the camera's ground truth and the node's outputs, grouped
by header stamp, handed on frame by frame once every topic of a stamp has arrived."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image, PointCloud2

from dpt_ros.demo import CAMERA_NS, GT_TOPICS, NODE, OUT_TOPICS, DemoError
from dpt_ros.demo.processes import Child

Stamp = tuple[int, int]
Say = Callable[[str], None]


class Listener:
    """Subscribes to ground truth and outputs; groups messages by header stamp."""

    def __init__(self, domain: int):
        self.context = rclpy.Context()
        # the demo stops itself on SIGINT / SIGTERM (children first, then this listener):
        # rclpy's own handlers would shut this context down under it, mid-stop
        rclpy.init(context=self.context, domain_id=domain,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("dpt_demo", context=self.context)
        self.lock = threading.Lock()
        self.frames: dict[Stamp, dict[str, object]] = defaultdict(dict)
        self.arrival: dict[Stamp, float] = {}
        self.published = 0
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        kinds = {"pose": PoseStamped, "points": PointCloud2}
        for topic in GT_TOPICS:
            self._subscribe(kinds.get(topic, Image), f"{CAMERA_NS}/{topic}", topic, qos)
        for topic in OUT_TOPICS:
            self._subscribe(kinds.get(topic, Image), f"{NODE}/{topic}", topic, qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _subscribe(self, kind: type, topic: str, key: str, qos: QoSProfile) -> None:
        def store(msg) -> None:
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            with self.lock:
                self.frames[stamp][key] = msg
                if key in OUT_TOPICS:
                    self.arrival[stamp] = time.time()
                if key == "image_raw":
                    self.published += 1
        self.node.create_subscription(kind, topic, store, qos)

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:
                return

    def pop_complete(self) -> list[tuple[Stamp, dict[str, object], float]]:
        """Frames with every topic, oldest first; older incomplete frames are dropped (the
        node skips frames when it is slower than the camera)."""
        want = set(GT_TOPICS) | set(OUT_TOPICS)
        with self.lock:
            done = sorted(k for k, v in self.frames.items() if want <= v.keys())
            if not done:
                return []
            out = [(k, self.frames[k], self.arrival[k]) for k in done]
            for k in [k for k in self.frames if k <= done[-1]]:
                del self.frames[k]
                self.arrival.pop(k, None)
            return out

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=2)


def wait_for_node(listener: Listener, child: Child, timeout: float, say: Say) -> None:
    """Until dpt_node advertises its outputs (it creates its publishers after loading the
    models); DemoError if it dies or takes longer than `timeout` seconds."""
    start = time.monotonic()
    next_note = start + 5.0
    while not any(listener.node.count_publishers(f"{NODE}/{t}") for t in OUT_TOPICS):
        child.check()
        now = time.monotonic()
        if now - start > timeout:
            raise DemoError(f"dpt_node did not advertise its outputs within {timeout:.0f} s; "
                            f"see {child.log}")
        if now >= next_note:
            say(f"waiting for dpt_node (loading models): {now - start:.0f} s")
            next_note = now + 5.0
        time.sleep(0.05)


def complete_frames(listener: Listener, children: Sequence[Child], frames: int,
                    timeout: float, stall: float, log_dir: Path, say: Say
                    ) -> Iterator[tuple[Stamp, dict[str, object], float]]:
    """(stamp, messages by topic, arrival time) of the next `frames` complete frames.

    DemoError when a child dies, when nothing complete arrives within `timeout` s (the
    first frame) or `stall` s (any later one); says every 5 s how it is going."""
    count = 0
    start = last = time.monotonic()
    next_note = start + 5.0
    while count < frames:
        for child in children:
            child.check()
        for item in listener.pop_complete():
            if count >= frames:
                break
            count += 1
            yield item
            last = time.monotonic()
        now = time.monotonic()
        limit = timeout if not count else stall
        if now - last > limit:
            raise DemoError(f"no complete frame for {limit:.0f} s (camera frames seen: "
                            f"{listener.published}); see {log_dir}")
        if now >= next_note:
            what = "waiting for the first result" if not count else "running"
            say(f"{what}: {now - start:.0f} s, camera frames seen {listener.published}")
            next_note = now + 5.0
        time.sleep(0.02)
