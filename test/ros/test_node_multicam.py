"""One dpt_node serving two cameras (`cameras: [front, rear]`): per-camera inputs (one of them
remapped), outputs under ~/front and ~/rear with each camera's own header and camera_info,
depth identical to a single-frame Pipeline run, and frames that arrive together batched into
one model pass (`batch_wait_ms`). Also the plain-Python pieces: topic names and the
per-camera queues of one."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from _node_util import (
    NodeProcess,
    Peer,
    camera_info_msg,
    camera_rgb,
    cloud_array,
    diagnostics_values,
    domain_id,
    image_array,
    image_msg,
    labels_json,
    node_command,
    ros_env,
    send_until,
    wait_ready,
)

from dpt_ros.config.params import check_update
from dpt_ros.core.pipeline.outputs import camera_topic
from dpt_ros.ros.worker import LatestSlots

H, W = 60, 80
CAMERAS = {  # name -> input topics (front remapped, rear by its default name), K, frame_id
    "front": dict(image="/cams/front/image_raw", info="/cams/front/camera_info",
                  k=dict(fx=70.0, fy=66.0, cx=41.3, cy=28.6), frame="front_optical", seed=11),
    "rear": dict(image="/rear/image", info="/rear/camera_info",
                 k=dict(fx=52.0, fy=50.0, cx=38.0, cy=31.0), frame="rear_optical", seed=12),
}
IMAGE_OUTPUTS = {  # topic under ~/<camera> -> (encoding, channels)
    "depth/image": ("32FC1", 1),
    "depth_colorized/image": ("bgr8", 3),
    "segmentation/image": ("mono8", 1),
    "segmentation_overlay/image": ("bgr8", 3),
}


# ------------------------------------------------------------------ plain Python
def test_camera_topics_and_names():
    assert camera_topic("image", "") == "image"
    assert camera_topic("~/depth/image", "") == "~/depth/image"
    assert camera_topic("image", "front") == "front/image"
    assert camera_topic("~/depth/camera_info", "rear") == "~/rear/depth/camera_info"
    assert check_update({"cameras": ["front", "rear", "arm/wrist"]}, {}) is None
    assert "repeat" in check_update({"cameras": ["front", "front"]}, {})
    assert "namespaces" in check_update({"cameras": ["/abs"]}, {})
    assert "namespaces" in check_update({"cameras": [""]}, {})
    assert "<= 100" in check_update({"batch_wait_ms": 500.0}, {})


def test_latest_slots_batch_the_newest_of_each_camera():
    slots: LatestSlots[int] = LatestSlots(["front", "rear"])
    assert slots.put("front", 1) is False
    assert slots.put("front", 2) is True  # 1 was never taken: dropped for front
    assert slots.put("rear", 3) is False
    assert slots.take(0.0) == {"front": 2, "rear": 3}
    assert slots.take(0.01) is None

    # batch_wait: the worker waits after the first frame for the other camera's ...
    slots.batch_wait = 2.0
    slots.put("front", 4)
    threading.Timer(0.1, slots.put, ("rear", 5)).start()
    t0 = time.monotonic()
    assert slots.take(1.0) == {"front": 4, "rear": 5}
    assert time.monotonic() - t0 < 1.5  # ... and stops waiting once every camera has one
    # ... but no longer than batch_wait after the first frame arrived
    slots.batch_wait = 0.2
    slots.put("rear", 6)
    t0 = time.monotonic()
    assert slots.take(1.0) == {"rear": 6}
    assert 0.1 <= time.monotonic() - t0 < 1.0
    slots.put("front", 7)
    slots.close()
    assert slots.take(0.0) is None


# ----------------------------------------------------------------- the node
@pytest.fixture(scope="module")
def multicam(checkpoints, tmp_path_factory):
    """(peer, process, io) of a two-camera node with the metric depth and segmentation
    checkpoints; front's inputs are remapped, rear's keep their default names."""
    pytest.importorskip("rclpy")
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    params = {"device": "cpu", "diagnostics_period": 0.2, "cameras": list(CAMERAS),
              "batch_wait_ms": 100.0, "depth_model": checkpoints["metric"],
              "segmentation_model": checkpoints["segmentation"]}
    cmd = [*node_command(params), "-r", "front/image:=/cams/front/image_raw",
           "-r", "front/camera_info:=/cams/front/camera_info"]
    peer = Peer(domain_id("multicam"))
    proc = NodeProcess(cmd, ros_env(peer.domain), tmp_path_factory.mktemp("multicam") / "n.log")
    try:
        for cam in CAMERAS.values():
            wait_ready(peer, proc, cam["image"])
        io = {"diag": peer.collect(DiagnosticArray, "/diagnostics")}
        for name, cam in CAMERAS.items():
            out = {t: peer.collect(Image, f"/dpt_node/{name}/{t}") for t in IMAGE_OUTPUTS}
            out["depth/camera_info"] = peer.collect(CameraInfo,
                                                    f"/dpt_node/{name}/depth/camera_info")
            out["points"] = peer.collect(PointCloud2, f"/dpt_node/{name}/points")
            io[name] = {"image": peer.publisher(Image, cam["image"]),
                        "info": peer.publisher(CameraInfo, cam["info"]), "out": out}
        yield peer, proc, io
        code = proc.stop()
        assert code == 0, f"dpt_node exited with {code}:\n{proc.log()}"
    finally:
        proc.stop()
        peer.close()


def frames(sec: int) -> dict[str, tuple[np.ndarray, object, object]]:
    """Per camera: its RGB picture (different content), the Image and its CameraInfo."""
    out = {}
    for i, (name, cam) in enumerate(CAMERAS.items()):
        rgb = camera_rgb(H, W, seed=cam["seed"] + sec)
        msg = image_msg(rgb, "rgb8", (sec, 1000 + i), cam["frame"])
        info = camera_info_msg(**cam["k"], width=W, height=H, stamp=(sec, 1000 + i),
                               frame_id=cam["frame"])
        out[name] = (rgb, msg, info)
    return out


def send_pair(io, sent, timeout: float = 30.0) -> dict[str, dict]:
    """Publish both cameras' frames together until each camera's outputs carry its stamp."""
    sends = [(io[n][kind], m) for n, (_, msg, info) in sent.items()
             for kind, m in (("image", msg), ("info", info))]
    got = {}
    for name, (_, msg, _) in sent.items():
        topics = list(io[name]["out"])
        stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        msgs = send_until(sends, [io[name]["out"][t] for t in topics], stamp, timeout=timeout)
        got[name] = dict(zip(topics, msgs))
    return got


@pytest.mark.ros
def test_each_camera_gets_its_own_outputs_equal_to_a_single_frame_run(multicam, checkpoints):
    from dpt_ros.core.camera.geometry import Intrinsics
    from dpt_ros.core.pipeline.pipeline import Frame, Pipeline

    peer, _, io = multicam
    sent = frames(100)
    got = send_pair(io, sent)
    pipeline = Pipeline(depth_model=str(checkpoints["metric"]), device="cpu")
    depths = {}
    for name, (rgb, msg, _) in sent.items():
        out, cam = got[name], CAMERAS[name]
        for topic, m in out.items():  # each output carries its own camera's header
            assert (m.header.stamp.sec, m.header.stamp.nanosec) == (
                msg.header.stamp.sec, msg.header.stamp.nanosec), (name, topic)
            assert m.header.frame_id == cam["frame"], (name, topic)
        for topic, (encoding, channels) in IMAGE_OUTPUTS.items():
            m = out[topic]
            assert (m.encoding, m.height, m.width) == (encoding, H, W), (name, topic)
            assert image_array(m).shape == ((H, W) if channels == 1 else (H, W, channels))
        info = out["depth/camera_info"]  # the camera's own intrinsics
        k = cam["k"]
        assert np.allclose(info.k, [k["fx"], 0, k["cx"], 0, k["fy"], k["cy"], 0, 0, 1])
        cloud = out["points"]
        assert (cloud.height, cloud.width) == (H, W)
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb", "label"]

        depth = image_array(out["depth/image"])
        ref = pipeline.process([Frame(rgb, Intrinsics(k["fx"], k["fy"], k["cx"], k["cy"], W, H))],
                               {"depth"})[0].depth
        assert depth.shape == ref.shape == (H, W) and np.isfinite(ref).all()
        assert np.abs(depth - ref).max() <= 1e-5 * np.abs(ref).max(), name
        assert np.allclose(cloud_array(cloud)["z"], depth, equal_nan=True)
        depths[name] = depth
    assert not np.allclose(depths["front"], depths["rear"])  # different pictures, not mixed up
    # No single-camera topics, and one labels topic for the node.
    topics = dict(peer.node.get_topic_names_and_types())
    assert "/dpt_node/depth/image" not in topics and "/dpt_node/front/depth/image" in topics
    assert "/dpt_node/segmentation/labels" in topics
    assert "/dpt_node/front/segmentation/labels" not in topics


@pytest.mark.ros
def test_frames_arriving_together_share_one_pass(multicam):
    _, proc, io = multicam
    for sec in range(200, 206):
        send_pair(io, frames(sec))
    deadline = time.monotonic() + 10.0
    while True:
        io["diag"].clear()
        found = io["diag"].wait_for(lambda m: bool(diagnostics_values(m)), 5.0)
        assert found is not None, proc.log()
        values = diagnostics_values(found)
        if int(values["frames_processed"]) >= 12 or time.monotonic() > deadline:
            break
    processed, batches = int(values["frames_processed"]), int(values["batches"])
    assert values["batch_size_max"] == "2", values
    assert batches < processed and values["errors_total"] == "0", values
    for name in CAMERAS:
        assert int(values[f"{name}.frames_received"]) >= 6, values
        assert int(values[f"{name}.frames_processed"]) >= 6, values
        assert f"{name}.frames_dropped" in values
    assert sum(int(values[f"{n}.frames_processed"]) for n in CAMERAS) == processed
    assert values["front.input_topic"] == "/cams/front/image_raw"
    assert values["rear.input_topic"] == "/rear/image"


@pytest.mark.ros
def test_labels_are_one_topic(multicam):
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    peer = multicam[0]
    qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    labels = peer.collect(String, "/dpt_node/segmentation/labels", qos)
    msg = labels.wait_for(lambda m: True, 10.0)
    assert msg is not None and labels_json(msg)[4] == "person"
    peer.node.destroy_subscription(labels.sub)
