"""Publish time of a large PointCloud2: the message-object path against the serialized path.

What is timed is what the node does per cloud once `Pipeline.process` has returned: from the
packed host buffer (`PackedCloud`, as the pipeline hands it over) to the return of the
publish call, on a reliable publisher with the node's output QoS. Paths, in the same run,
alternating:

  object             messages.pointcloud_msg + Publisher.publish(msg)   (the reference)
  serialized         messages.cdr in place + rcl_publish_serialized_message   (the node's)
  serialized, copy   the same from an unframed payload (joined bytes: one copy more)
  rclpy raw bytes    messages.cdr bytes + Publisher.publish(bytes)   (rclpy's raw publish)

with no subscriber, and with a subscriber in another process (the DDS delivery is part of
the publish call then). `python benchmarks/bench_node.py --publish` runs it;
`python benchmarks/bench_publish.py [--repeat N]` alone, too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's dpt_ros

TOPIC = "/bench_publish/points"
SUBSCRIBER = """
import os, sys, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
rclpy.init()
node = rclpy.create_node("bench_publish_sub")
count = [0]
node.create_subscription(PointCloud2, sys.argv[1], lambda m: count.__setitem__(0, count[0] + 1),
                         QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
parent = os.getppid()
node.create_timer(0.5, lambda: os.getppid() != parent and os._exit(0))  # outlive no parent
print("ready", flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
    pass
"""


def clouds() -> dict[str, object]:
    from dpt_ros.core.pointcloud.pack import pack_cloud

    gen = torch.Generator().manual_seed(0)
    xyz = torch.rand((720, 1280, 3), generator=gen) * 5
    rgb = torch.randint(0, 256, (720, 1280, 3), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 150, (720, 1280), generator=gen)
    return {"1280x720 xyz+rgb": pack_cloud(xyz, rgb),
            "1280x720 xyz+rgb+label": pack_cloud(xyz, rgb, labels)}


def paths(pub, packed, header) -> dict[str, Callable[[], None]]:
    from dpt_ros.messages import cdr as messages_cdr
    from dpt_ros.ros.serialized import send_cloud

    unframed = replace(packed, data=packed.data.copy())
    return {
        "object": lambda: send_cloud(pub, packed, header, serialized=False),
        "serialized": lambda: send_cloud(pub, packed, header, serialized=True),
        "serialized, copy": lambda: send_cloud(pub, unframed, header, serialized=True),
        "rclpy raw bytes": lambda: pub.publish(messages_cdr.pointcloud_cdr(packed, header)),
    }


def measure(repeat: int, with_subscriber: bool, gap: float) -> dict[str, dict[str, list]]:
    import rclpy
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import Header

    from dpt_ros.ros.qos import output_qos

    domain = 1 + (os.getpid() * 7 + zlib.crc32(b"bench_publish")) % 100
    os.environ.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env = dict(os.environ)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bench_publish", context=context)
    from dpt_ros.ros.serialized import FastPath

    reason = FastPath.check(node)  # as the node does at start-up
    if reason:
        print(f"fast path off: {reason}; 'serialized' is rclpy's publish(bytes) here")
    pub = node.create_publisher(PointCloud2, TOPIC, output_qos())
    sub = None
    try:
        if with_subscriber:
            sub = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, TOPIC], env=env,
                                   stdout=subprocess.PIPE, text=True)
            assert sub.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 20
            while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            if pub.get_subscription_count() == 0:
                raise RuntimeError("the subscriber process never matched")
        header = Header(frame_id="camera_color_optical_frame")
        times: dict[str, dict[str, list]] = {}
        for name, packed in clouds().items():
            fns = paths(pub, packed, header)
            times[name] = {path: [] for path in fns}
            for fn in fns.values():  # warm-up (allocator, layout caches, DDS buffers)
                fn()
                time.sleep(gap)
            for _ in range(repeat):
                for path, fn in fns.items():
                    start = time.perf_counter()
                    fn()
                    times[name][path].append((time.perf_counter() - start) * 1e3)
                    time.sleep(gap)  # let the subscriber take the sample
        return times
    finally:
        if sub is not None:
            sub.terminate()
            sub.wait(10)
        node.destroy_node()
        context.try_shutdown()


def report(repeat: int, gap: float = 0.15) -> None:
    for with_subscriber in (False, True):
        times = measure(repeat, with_subscriber, gap)
        who = "a subscriber in another process" if with_subscriber else "no subscriber"
        print(f"\npublish of one organised cloud, {who} (ms, median / best of {repeat}):")
        for name, rows in times.items():
            base = statistics.median(rows["object"])
            for path, t in rows.items():
                med = statistics.median(t)
                print(f"  {name:24s} {path:18s} {med:7.2f} / {min(t):6.2f}   "
                      f"{base / med:5.2f}x vs object")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"nbytes: {[c.data.nbytes for c in clouds().values()]}")
    report(args.repeat)


if __name__ == "__main__":
    main()
