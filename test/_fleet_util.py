"""Fleet test helpers: bags with several cameras (camera_info logged after its image), a
corrupt bag, the single-machine pass to compare with, and a fleet run in-process."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _offline_util import (
    CHATTER_TOPIC,
    camera_info_msg,
    checkpoints,
    frame_rgb,
    image_msg,
    log_time,
    read_bag,
)

HAVE_RAY = importlib.util.find_spec("ray") is not None
NEEDS_RAY = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (the fleet extra: "
                               "pip install -e '.[fleet]')")
CAMERAS = ("/cam", "/cam2")
IMAGE_TOPIC, INFO_TOPIC = "/cam/image_raw", "/cam/camera_info"
INFO_AFTER_NS = 3_000_000  # camera_info logged 3 ms after its image, as drivers publish


def write_cameras_bag(path: Path, storage: str, n: int, first: int = 0) -> None:
    """`n` frames at 10 Hz of two cameras (image, then camera_info 3 ms later) + a chatter
    topic; frames `first`.. so bags differ."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    from std_msgs.msg import String

    ts = get_typestore(Stores.ROS2_JAZZY)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        conns = {}
        for cam in CAMERAS:
            conns[cam] = (
                writer.add_connection(f"{cam}/image_raw", "sensor_msgs/msg/Image", typestore=ts),
                writer.add_connection(f"{cam}/camera_info", "sensor_msgs/msg/CameraInfo",
                                      typestore=ts))
        chat = writer.add_connection(CHATTER_TOPIC, "std_msgs/msg/String", typestore=ts)
        for i in range(first, first + n):
            t = log_time(i)
            for k, cam in enumerate(CAMERAS):
                img, info = conns[cam]
                rgb = frame_rgb(i + 1000 * k)
                writer.write(img, t + k * 1000, serialize_message(image_msg(rgb, i)))
                writer.write(info, t + k * 1000 + INFO_AFTER_NS,
                             serialize_message(camera_info_msg(i)))
            if i % 3 == 0:
                writer.write(chat, t + 500, serialize_message(String(data=f"hello {i}")))


def corrupt(bag: Path) -> None:
    """Overwrite the middle of the bag's storage file with garbage (metadata intact)."""
    (storage,) = [p for p in bag.iterdir() if p.suffix in (".db3", ".mcap")]
    data = bytearray(storage.read_bytes())
    lo, hi = len(data) // 4, 3 * len(data) // 4
    data[lo:hi] = np.random.default_rng(0).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    storage.write_bytes(bytes(data))


def params_file(tmp: Path) -> Path:
    """One torch thread, as every 1-CPU worker has: outputs then match bit for bit (thread
    counts change float summation order, ~1e-7 relative)."""
    path = tmp / "params.yaml"
    path.write_text("dpt_node:\n  ros__parameters:\n    num_threads: 1\n    device: cpu\n")
    return path


def model_args(tmp: Path, segmentation: bool = True) -> list[str]:
    c = checkpoints()
    args = ["--depth-model", str(c["metric"]), "--params", str(params_file(tmp)),
            "--batch-size", "1"]
    return args + (["--segmentation-model", str(c["segmentation"])] if segmentation else [])


def topic_args() -> list[str]:
    return ["--image-topic", IMAGE_TOPIC, "--camera-info-topic", INFO_TOPIC]


def single_pass(src: Path, dst: Path, extra: list[str]) -> None:
    """`dpt-ros bag` on one bag, in this process (torch threads restored after)."""
    import torch

    from dpt_ros.offline.cli import main

    threads = torch.get_num_threads()
    try:
        code = main(["bag", str(src), str(dst), *topic_args(), *extra])
    finally:
        torch.set_num_threads(threads)
    assert code == 0, code


def run_fleet(paths: list[Path], extra: list[str], **hooks: Any):
    """`dpt-ros fleet` in-process on the session's Ray (hooks: crash_units, on_submit,
    stop); returns (report, stderr text)."""
    from dpt_ros.offline.cli import build_parser, fleet_options
    from dpt_ros.offline.fleet.driver import run_fleet as run

    args = build_parser().parse_args(["fleet", *map(str, paths), *topic_args(), *extra])
    opts = fleet_options(args)
    stop = hooks.pop("stop", None)
    for key, value in hooks.items():
        setattr(opts, key, value)
    err = io.StringIO()
    report = run(opts, stop, err)
    return report, err.getvalue()


_CLUSTER: dict = {}  # the one cluster of the session, while fleet tests run


def _start() -> dict:
    """Head + one worker node, 1 CPU each, both on 127.0.0.1."""
    from dpt_ros.offline.fleet.cluster import LOOPBACK, OBJECT_STORE_BYTES, import_ray

    temp = tempfile.mkdtemp(dir="/tmp", prefix="rt")
    os.makedirs(os.path.join(temp, "ray"))
    old_tmp = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp
    ray = import_ray(local=True)
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES,
            "node_ip_address": LOOPBACK}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    return {"ray": ray, "cluster": cluster, "temp": temp, "old_tmp": old_tmp}


def stop_cluster() -> None:
    """Stop the session's cluster (after the last fleet test)."""
    if not _CLUSTER:
        return
    c = dict(_CLUSTER)
    _CLUSTER.clear()
    c["ray"].shutdown()
    c["cluster"].shutdown()
    shutil.rmtree(c["temp"], ignore_errors=True)
    if c["old_tmp"] is None:
        os.environ.pop("RAY_TMPDIR", None)
    else:
        os.environ["RAY_TMPDIR"] = c["old_tmp"]


def ensure_cluster():
    """The session's simulated two-node cluster, started on first use (skips without Ray)."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (the fleet extra)")
    if not _CLUSTER:
        _CLUSTER.update(_start())
    return _CLUSTER["cluster"]




def _decoded(records: list[tuple[str, str, int, bytes]]) -> list[tuple[str, str, int, Any]]:
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from std_msgs.msg import String

    types = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CameraInfo": CameraInfo,
             "sensor_msgs/msg/PointCloud2": PointCloud2, "std_msgs/msg/String": String}
    return [(topic, mt, t, deserialize_message(raw, types[mt])) for topic, mt, t, raw in records]


def assert_same_bag(got: Path, want: Path) -> int:
    """Same topics and types, message for message the same log times, stamps and data
    (compared as messages: rclpy leaves CDR padding bytes unset); returns the count."""
    a, b = read_bag(got), read_bag(want)
    assert [r[:3] for r in a] == [r[:3] for r in b]
    for (topic, _, t, x), (_, _, _, y) in zip(_decoded(a), _decoded(b)):
        assert x == y, (topic, t)
    return len(a)
