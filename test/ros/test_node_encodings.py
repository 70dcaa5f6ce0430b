"""dpt_node with the encodings real drivers send (real subprocess, real DDS).

- yuv422 (UYVY), yuv422_yuy2 (YUYV) and the four 8-bit Bayer patterns, padded rows: the colour
  of every point of `~/points` is the node's decoded pixel, and equals the independent
  references of _color_reference (Bayer exactly, YUV within 1 grey level); the depth equals
  the depth of that same picture sent as rgb8.
- mono16 from a 12-bit camera with `input.bits: 12` (set at run time): 4095 is white.
- Two cameras on compressed transport, one sending decompression bombs: each bomb is counted
  (`errors.size`) and the other camera's frame of the same batch is still processed.
"""

from __future__ import annotations

import io as iolib
import struct
import time
import zlib

import numpy as np
import pytest
from _color_reference import bayer_reference, packed, yuv_reference
from _node_util import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    NodeProcess,
    Peer,
    camera_info_msg,
    camera_rgb,
    cloud_array,
    diagnostics_values,
    domain_id,
    image_array,
    image_msg,
    node_command,
    ros_env,
    send_until,
    unpack_rgb,
    wait_ready,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: E402

H, W = 48, 64
FRAME = "enc_optical"
K = dict(fx=60.0, fy=58.0, cx=31.5, cy=23.5)
PATTERNS = {"bayer_rggb8": "rggb", "bayer_bggr8": "bggr", "bayer_gbrg8": "gbrg",
            "bayer_grbg8": "grbg"}


def sensor_msg(rows: np.ndarray, encoding: str, sec: int, pad: int = 6) -> Image:
    """An Image carrying `rows` as the camera sent them, with padded rows."""
    msg = Image()
    msg.header.stamp.sec, msg.header.frame_id = sec, FRAME
    msg.height, msg.width, msg.encoding = H, W, encoding
    padded = np.concatenate([rows, np.full((H, pad), 0x5A, np.uint8)], axis=1)
    msg.step = padded.shape[1]
    msg.data = padded.tobytes()
    return msg


@pytest.fixture(scope="module")
def io(shared_node):
    peer = shared_node[0]
    out = {"points": peer.collect(PointCloud2, "/dpt_node/points"),
           "depth": peer.collect(Image, "/dpt_node/depth/image")}
    yield peer, shared_node[1], {"image": peer.publisher(Image, IMAGE_TOPIC),
                                 "info": peer.publisher(CameraInfo, INFO_TOPIC), "out": out}
    for c in out.values():
        peer.node.destroy_subscription(c.sub)


def roundtrip(io, msg) -> tuple[np.ndarray, np.ndarray]:
    """(decoded RGB seen in ~/points, ~/depth) of one input frame."""
    _, _, ends = io
    stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
    info = camera_info_msg(**K, width=W, height=H, stamp=stamp, frame_id=FRAME)
    cloud, depth = send_until([(ends["image"], msg), (ends["info"], info)],
                              [ends["out"]["points"], ends["out"]["depth"]], stamp)
    return unpack_rgb(cloud_array(cloud)["rgb"]), image_array(depth)


def test_yuv_and_bayer_frames_are_decoded_like_the_references(io):
    base = camera_rgb(H, W, seed=5)
    rng = np.random.default_rng(5)
    cases = {}
    for encoding in ("yuv422", "yuv422_yuy2"):  # macropixels (U, Y0, V, Y1) from the picture
        quads = np.stack([rng.integers(60, 200, (H, W // 2)), base[:, 0::2, 1],
                          rng.integers(60, 200, (H, W // 2)), base[:, 1::2, 1]], -1)
        rows = packed(quads.astype(np.uint8), encoding)
        cases[encoding] = (rows, yuv_reference(rows, encoding), 1)
    for encoding, pattern in PATTERNS.items():
        yy, xx = np.mgrid[0:H, 0:W]
        channel = np.array(["rgb".index(c) for c in pattern])[(yy % 2) * 2 + xx % 2]
        rows = np.take_along_axis(base, channel[..., None], axis=-1)[..., 0]  # a mosaic
        cases[encoding] = (rows, bayer_reference(rows, pattern), 0)
    for sec, (encoding, (rows, reference, tolerance)) in enumerate(cases.items(), start=500):
        decoded, depth = roundtrip(io, sensor_msg(rows, encoding, sec))
        assert decoded.shape == (H, W, 3)
        assert np.abs(decoded.astype(int) - reference).max() <= tolerance, encoding
        # the rest of the pipeline sees exactly that picture: as rgb8 it gives the same depth
        _, depth_rgb = roundtrip(io, image_msg(decoded, "rgb8", (sec + 100, 0), FRAME))
        np.testing.assert_array_equal(depth, depth_rgb, err_msg=encoding)


def test_12bit_mono16_with_input_bits(io):
    peer = io[0]
    twelve = np.random.default_rng(6).integers(0, 4096, (H, W)).astype(np.uint16)
    twelve[0, :3] = (0, 2048, 4095)
    msg = image_msg(twelve, "mono16", (700, 0), FRAME, pad=2, big_endian=True)
    assert all(r.successful for r in peer.set_parameters({"input.bits": 12}))
    try:
        decoded, _ = roundtrip(io, msg)
    finally:
        assert all(r.successful for r in peer.set_parameters({"input.bits": 16}))
    assert tuple(decoded[0, :3, 0]) == (0, 128, 255)  # not (0, 8, 15)
    np.testing.assert_array_equal(decoded[..., 2], np.floor(twelve / 4095 * 255 + 0.5))
    result = peer.set_parameters({"input.bits": 20})[0]
    assert not result.successful  # outside the descriptor range 8..16


# ---------------------------------------------------------- bombs in a batch
def png_bomb(width: int, height: int) -> bytes:
    """A real decompression bomb: a valid grey PNG of zeros, a few hundred kB."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row * 500) for _ in range(height // 500)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def compressed_msg(payload: bytes, sec: int, frame: str) -> CompressedImage:
    msg = CompressedImage()
    msg.header.stamp.sec, msg.header.frame_id = sec, frame
    msg.format = "png"
    msg.data = payload
    return msg


def png_of(rgb: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    out = iolib.BytesIO()
    PILImage.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def two_compressed(checkpoints, tmp_path_factory):
    params = {"device": "cpu", "diagnostics_period": 0.2, "cameras": ["front", "rear"],
              "image_transport": "compressed", "batch_wait_ms": 100.0, "warmup": False,
              "depth_model": checkpoints["metric"]}
    peer = Peer(domain_id("encodings_bomb"))
    proc = NodeProcess(node_command(params), ros_env(peer.domain),
                       tmp_path_factory.mktemp("bomb") / "node.log")
    try:
        for cam in ("front", "rear"):
            wait_ready(peer, proc, f"/{cam}/image/compressed")
        ends = {"diag": peer.collect(DiagnosticArray, "/diagnostics")}
        for cam in ("front", "rear"):
            ends[cam] = {"image": peer.publisher(CompressedImage, f"/{cam}/image/compressed"),
                         "depth": peer.collect(Image, f"/dpt_node/{cam}/depth/image")}
        yield peer, proc, ends
        code = proc.stop()
        assert code == 0, f"dpt_node exited with {code}:\n{proc.log()}"
    finally:
        proc.stop()
        peer.close()


def size_errors(ends, proc, at_least: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = [m for m in ends["diag"].msgs if diagnostics_values(m)]
        if msgs:
            count = int(diagnostics_values(msgs[-1]).get("errors.size", 0))
            if count >= at_least:
                return count
        time.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} size errors counted:\n{proc.log()}")


def test_a_bomb_costs_only_its_own_camera_frame(two_compressed):
    from PIL import Image as PILImage

    _, proc, ends = two_compressed
    bomb = png_bomb(16000, 12000)  # 192 MP: Pillow's DecompressionBombError while opening
    assert 16000 * 12000 > 2 * PILImage.MAX_IMAGE_PIXELS and len(bomb) < 1_000_000
    good = png_of(camera_rgb(H, W, seed=8))
    # discovery and matching first: a good pair until both cameras answer
    send_until([(ends["front"]["image"], compressed_msg(good, 10, "front")),
                (ends["rear"]["image"], compressed_msg(good, 10, "rear"))],
               [ends["front"]["depth"], ends["rear"]["depth"]], (10, 0), timeout=30.0)
    for i, sec in enumerate((20, 21, 22)):
        # both frames arrive within batch_wait_ms, so the worker takes them as one batch
        ends["front"]["image"].publish(compressed_msg(bomb, sec, "front"))
        ends["rear"]["image"].publish(compressed_msg(good, sec, "rear"))
        hit = ends["rear"]["depth"].wait_for(lambda m, s=sec: m.header.stamp.sec == s, 15.0)
        assert hit is not None, f"rear frame {sec} lost with the bomb:\n{proc.log()}"
        size_errors(ends, proc, at_least=i + 1)
    assert not [m for m in ends["front"]["depth"].msgs if m.header.stamp.sec in (20, 21, 22)]
    assert "decompression-bomb" in proc.log() and proc.alive()
    # the bombed camera itself recovers with its next good frame
    send_until([(ends["front"]["image"], compressed_msg(good, 30, "front"))],
               [ends["front"]["depth"]], (30, 0))
