"""Helpers for the offline-tool tests: tiny random-weight checkpoints (built once per test
session with transformers, the oracle), synthetic frames, and input bags written with rosbags
from messages built by hand with rclpy (independent of the package's converters)."""

from __future__ import annotations

import atexit
import functools
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
from _checkpoints import make_checkpoints

IMAGE_TOPIC = "/cam/image_raw"
COMPRESSED_TOPIC = "/cam/image_raw/compressed"
INFO_TOPIC = "/cam/camera_info"
CHATTER_TOPIC = "/chatter"
FRAME_ID = "cam_optical"
HEIGHT, WIDTH = 30, 40
FX, FY, CX, CY = 35.0, 36.0, 19.0, 14.5
LABELS = ["wall", "floor", "chair"]


@functools.cache
def checkpoints() -> dict[str, Path]:
    """The shared tiny checkpoints at 32² / 28² with LABELS, built once per session."""
    root = Path(tempfile.mkdtemp(prefix="dpt_offline_ckpt_"))
    atexit.register(shutil.rmtree, root, True)
    return make_checkpoints(root, vit_size=32, dinov2_size=28, labels=LABELS)


def frame_rgb(i: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Deterministic colour ramps shifted per frame, plus noise: every frame differs."""
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x + 3 * i) * 7, (y + 5 * i) * 9, (x + y) * 4 + 20 * i], axis=-1) % 256
    return np.clip(base + rng.integers(0, 30, size=base.shape), 0, 255).astype(np.uint8)


def stamp_of(i: int) -> tuple[int, int]:
    return 100 + i // 10, (i % 10) * 100_000_000


def log_time(i: int) -> int:
    sec, nsec = stamp_of(i)
    return sec * 10**9 + nsec + 1_000_000  # recorded 1 ms after the stamp


def image_msg(rgb: np.ndarray, i: int, encoding: str = "rgb8"):
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_of(i)
    msg.header.frame_id = FRAME_ID
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = encoding
    pixels = rgb[..., ::-1] if encoding == "bgr8" else rgb
    msg.step = rgb.shape[1] * 3
    msg.data = np.ascontiguousarray(pixels).tobytes()
    return msg


def compressed_msg(rgb: np.ndarray, i: int):
    from PIL import Image as PILImage
    from sensor_msgs.msg import CompressedImage

    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="PNG")
    msg = CompressedImage()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_of(i)
    msg.header.frame_id = FRAME_ID
    msg.format = "png"
    msg.data = buf.getvalue()
    return msg


def camera_info_msg(i: int, d: list[float] | None = None):
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_of(i)
    msg.header.frame_id = FRAME_ID
    msg.width, msg.height = WIDTH, HEIGHT
    msg.distortion_model = "plumb_bob"
    msg.d = list(d) if d else [0.0] * 5
    msg.k = [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [FX, 0.0, CX, 0.0, 0.0, FY, CY, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def write_bag(
    path: Path,
    storage: str,
    n_frames: int,
    compressed: bool = False,
    bad: dict[int, str] | None = None,
    with_info: bool = True,
    info_offset: int = -1000,
    info_d: list[float] | None = None,
    no_info: frozenset[int] = frozenset(),
) -> dict[int, np.ndarray]:
    """A bag with n frames (+ camera info, + a chatter topic); `bad` maps a frame index to
    'garbage' (undecodable CDR) or 'short' (an Image whose data is too small). Each camera
    info has its image's stamp and is logged `info_offset` ns from it (after it when
    positive, as drivers publish), with D = `info_d`; frames in `no_info` have none.

    Returns the RGB of every well-formed frame by index.
    """
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    from std_msgs.msg import String

    ts = get_typestore(Stores.ROS2_JAZZY)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    bad = bad or {}
    frames: dict[int, np.ndarray] = {}
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        img_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        img_topic = COMPRESSED_TOPIC if compressed else IMAGE_TOPIC
        img = writer.add_connection(img_topic, img_type, typestore=ts)
        info = writer.add_connection(INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=ts)
        chat = writer.add_connection(CHATTER_TOPIC, "std_msgs/msg/String", typestore=ts)
        for i in range(n_frames):
            t = log_time(i)
            if with_info and i not in no_info:
                writer.write(info, t + info_offset, serialize_message(camera_info_msg(i, info_d)))
            rgb = frame_rgb(i)
            if bad.get(i) == "garbage":
                data = b"\x00\x01\x00\x00" + b"\xff" * 23
            elif bad.get(i) == "short":
                msg = image_msg(rgb, i)
                msg.data = msg.data[: len(msg.data) // 2]
                data = serialize_message(msg)
            else:
                frames[i] = rgb
                msg = compressed_msg(rgb, i) if compressed else image_msg(rgb, i)
                data = serialize_message(msg)
            writer.write(img, t, data)
            if i % 2 == 0:
                writer.write(chat, t + 500, serialize_message(String(data=f"hello {i}")))
    return frames


def read_bag(path: Path) -> list[tuple[str, str, int, bytes]]:
    """(topic, msgtype, log time, raw CDR) of every message, in log-time order."""
    from rosbags.rosbag2 import Reader

    with Reader(path) as reader:
        return [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]


def tree_digest(path: Path) -> dict[str, bytes]:
    """Every file under `path` with its bytes (to prove an input was not touched)."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path)): p.read_bytes() for p in files}
