"""Bad input never stops dpt_node: each malformed kind is skipped, warned about, counted by
kind in /diagnostics, and the next good frame is processed. Also the compressed transport:
jpeg and png in, the same result as the raw image for lossless png."""

from __future__ import annotations

import io as iolib
import time
from typing import Any

import numpy as np
import pytest
from _node_util import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    SHARED_PARAMS,
    NodeProcess,
    Peer,
    camera_info_msg,
    camera_rgb,
    diagnostics_values,
    domain_id,
    image_array,
    image_msg,
    send_until,
    stamp_of,
    start_nodes,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

H, W = 48, 64


class Side:
    """One running node seen from its peer: publishers, the depth output, error counts."""

    def __init__(self, peer: Peer, proc: NodeProcess, compressed: bool = False) -> None:
        self.peer, self.proc = peer, proc
        topic = IMAGE_TOPIC + ("/compressed" if compressed else "")
        self.image = peer.publisher(CompressedImage if compressed else Image, topic)
        # the compressed node's camera has no camera_info publisher: parameter intrinsics
        self.info = None if compressed else peer.publisher(CameraInfo, INFO_TOPIC)
        self.depth = peer.collect(Image, "/dpt_node/depth/image")
        self.diag = peer.collect(DiagnosticArray, "/diagnostics")

    def errors(self) -> dict[str, int]:
        msgs = [m for m in self.diag.msgs if diagnostics_values(m)]
        if not msgs:
            return {}
        values = diagnostics_values(msgs[-1])
        return {k[7:]: int(v) for k, v in values.items() if k.startswith("errors.")}

    def send_until_counted(self, sends, kind: str, timeout: float = 15.0) -> dict[str, int]:
        """Publish until /diagnostics counts one more `kind` error than before."""
        before = self.errors().get(kind, 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pub, msg in sends:
                pub.publish(msg)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                if self.errors().get(kind, 0) > before:
                    return self.errors()
                time.sleep(0.05)
        raise TimeoutError(f"no '{kind}' error counted within {timeout} s:\n{self.proc.log()}")

    def pair(self, msg) -> list[tuple[Any, Any]]:
        """The image, then (as drivers do) its camera_info with the same stamp."""
        if self.info is None:
            return [(self.image, msg)]
        info = camera_info_msg(50.0, 50.0, (W - 1) / 2, (H - 1) / 2, W, H,
                               stamp_of(msg), msg.header.frame_id)
        return [(self.image, msg), (self.info, info)]

    def good(self, sec: int, frame_id: str = "cam") -> Image:
        msg = image_msg(camera_rgb(H, W, seed=sec), "rgb8", (sec, 0), frame_id)
        return send_until(self.pair(msg), [self.depth], (sec, 0))[0]

    def close(self) -> None:
        for c in (self.depth, self.diag):
            self.peer.node.destroy_subscription(c.sub)


@pytest.fixture(scope="module")
def raw(shared_node):
    side = Side(*shared_node)
    yield side
    side.close()


@pytest.fixture(scope="module")
def compressed(checkpoints, tmp_path_factory):
    peer = Peer(domain_id(__name__))
    params = {**SHARED_PARAMS, "depth_model": checkpoints["metric"],
              "image_transport": "compressed", "warmup": False}
    (proc,) = start_nodes([(params, {})], [peer], tmp_path_factory.mktemp("compressed"),
                          [IMAGE_TOPIC + "/compressed"])
    yield Side(peer, proc, compressed=True)
    code = proc.stop()
    peer.close()
    assert code == 0, proc.log()


def broken(kind: str, sec: int) -> Image:
    msg = image_msg(camera_rgb(H, W), "rgb8", (sec, 0), "cam")
    if kind == "step":
        msg.step = W * 3 - 1
    elif kind == "data":
        msg.data = bytes(msg.data)[: -W * 3]
    elif kind == "size":
        msg.width, msg.height, msg.step, msg.data = 0, 0, 0, b""
    elif kind == "encoding":
        msg.encoding = "bayer_rggb16"  # a ROS encoding the node does not read
    return msg


def test_each_malformed_image_is_survived_counted_and_followed(raw):
    raw.good(1)
    expected: dict[str, int] = {}
    for i, kind in enumerate(("step", "data", "size", "encoding")):
        errors = raw.send_until_counted(raw.pair(broken(kind, 100 + i)), kind)
        expected[kind] = errors[kind]
        assert {k: v for k, v in errors.items() if k in expected} == expected  # only this kind
        raw.good(200 + i)
    assert raw.proc.alive()
    log = raw.proc.log()
    for kind in expected:
        assert f"skipped a frame ({kind})" in log


def test_bad_camera_info_is_survived_and_counted(raw):
    zero = camera_info_msg(0.0, 0.0, 32.0, 24.0, W, H, (300, 0), "zero_cam")
    wrong_size = camera_info_msg(50.0, 50.0, 320.0, 240.0, 640, 480, (301, 0), "big_cam")
    for sec, info in ((300, zero), (301, wrong_size)):
        frame = image_msg(camera_rgb(H, W), "rgb8", (sec, 0), info.header.frame_id)
        before = raw.errors().get("camera_info", 0)
        errors = raw.send_until_counted([(raw.image, frame), (raw.info, info)], "camera_info")
        assert errors["camera_info"] > before
        raw.good(310 + sec)  # frames of a camera with a valid camera_info still work
    # the warning says what was wrong (the second one falls in the same 5 s throttle window)
    assert "focal lengths must be finite and > 0" in raw.proc.log()


def compressed_msg(rgb: np.ndarray, fmt: str, sec: int) -> CompressedImage:
    from PIL import Image as PILImage

    buf = iolib.BytesIO()
    PILImage.fromarray(rgb).save(buf, format=fmt.upper(), **({"quality": 95} if fmt ==
                                                                "jpeg" else {}))
    msg = CompressedImage()
    msg.header.stamp.sec, msg.header.frame_id = sec, "cam"
    msg.format = fmt
    msg.data = buf.getvalue()
    return msg


def test_compressed_input(compressed, raw):
    rgb = camera_rgb(H, W, seed=7)
    raw_out = raw.good(7)  # the same picture through the raw node (same checkpoint)
    for sec, fmt in ((10, "png"), (11, "jpeg")):
        out = send_until([(compressed.image, compressed_msg(rgb, fmt, sec))],
                         [compressed.depth], (sec, 0))[0]
        assert (out.height, out.width, out.header.frame_id) == (H, W, "cam")
        if fmt == "png":  # lossless: exactly the raw frame's result
            assert np.array_equal(image_array(out), image_array(raw_out))
    # nothing publishes this node's camera_info: intrinsics from parameters, and it says so
    compressed.peer.wait_until(
        lambda: any(diagnostics_values(m).get("intrinsics", "").startswith("parameters")
                    for m in compressed.diag.msgs), 5.0, "intrinsics: parameters")
    assert "no publisher on /cam/camera_info" in compressed.proc.log()

    corrupt = compressed_msg(rgb, "jpeg", 20)
    corrupt.data = bytes(corrupt.data)[:200] + b"\x00" * 100
    depth_png = compressed_msg(rgb, "png", 21)
    depth_png.format = "16UC1; compressedDepth png"
    for msg in (corrupt, depth_png):
        compressed.send_until_counted([(compressed.image, msg)], "compressed")
        sec = msg.header.stamp.sec + 10
        send_until([(compressed.image, compressed_msg(rgb, "jpeg", sec))],
                   [compressed.depth], (sec, 0))
    assert compressed.proc.alive()
