"""dpt_node against cameras that behave like real drivers (real subprocess, real DDS).

The camera here publishes each image first and its camera_info a few milliseconds later
(image_transport's CameraPublisher order), with lenses that have distortion and rectified
streams whose P differs from K. The truth is the camera model itself: every published point
is projected back through the published camera_info with the textbook formulas written out
below (not the package's code) and must land on its own pixel.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from _lens_textbook import rectified_view_footprint, textbook_pixels
from _node_util import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    SHARED_PARAMS,
    Peer,
    camera_rgb,
    cloud_array,
    diagnostics_values,
    domain_id,
    image_array,
    image_msg,
    stamp_of,
    start_nodes,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

H, W = 72, 96
K = [80.0, 0.0, 47.3, 0.0, 82.0, 35.9, 0.0, 0.0, 1.0]
LENSES = {
    "plumb_bob": [-0.27, 0.08, 0.0011, -0.0007, -0.01],
    "rational_polynomial": [2.1, 0.9, 0.0008, -0.0005, 0.05, 2.45, 1.6, 0.2],
    "equidistant": [-0.013, 0.021, -0.011, 0.0021],
}
P_RECT = [70.0, 0.0, 45.0, 0.0, 0.0, 71.0, 37.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # P != K
INFO_DELAY = 0.005  # seconds between an image and its camera_info


def camera_info(model: str, d: list[float], stamp: tuple[int, int], width: int = W,
                height: int = H, k: list[float] = K, p: list[float] | None = None
                ) -> CameraInfo:
    msg = CameraInfo()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = "lens_optical"
    msg.width, msg.height = width, height
    msg.distortion_model, msg.d = model, list(d)
    msg.k, msg.r = list(k), [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    msg.p = p or [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class Camera:
    """A driver-like peer: image first, its camera_info INFO_DELAY later."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.image = peer.publisher(Image, IMAGE_TOPIC)
        self.info = peer.publisher(CameraInfo, INFO_TOPIC)
        self.out = {
            "depth": peer.collect(Image, "/dpt_node/depth/image"),
            "points": peer.collect(PointCloud2, "/dpt_node/points"),
            "info": peer.collect(CameraInfo, "/dpt_node/depth/camera_info"),
        }
        self.diag = peer.collect(DiagnosticArray, "/diagnostics")

    def send(self, image: Image, info: CameraInfo | None, timeout: float = 30.0) -> dict:
        """Publish until every output carries the image's stamp."""
        stamp = stamp_of(image)
        found: dict[str, object] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(self.out):
            if time.monotonic() > deadline:
                raise TimeoutError(f"outputs {sorted(set(self.out) - set(found))} missing")
            self.image.publish(image)
            if info is not None:
                time.sleep(INFO_DELAY)
                self.info.publish(info)
            for name, c in self.out.items():
                if name not in found:
                    hit = c.wait_for(lambda m: stamp_of(m) == stamp, 0.3)
                    if hit is not None:
                        found[name] = hit
        return found

    def diagnostics(self) -> dict[str, str]:
        msgs = [m for m in self.diag.msgs if diagnostics_values(m)]
        return diagnostics_values(msgs[-1]) if msgs else {}

    def wait_counted(self, kind: str, before: int, image: Image, info: CameraInfo | None,
                     timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.image.publish(image)
            if info is not None:
                time.sleep(INFO_DELAY)
                self.info.publish(info)
            time.sleep(0.3)
            count = int(self.diagnostics().get(f"errors.{kind}", 0))
            if count > before:
                return count
        raise TimeoutError(f"no {kind} error counted")


@pytest.fixture(scope="module")
def node(checkpoints, tmp_path_factory):
    peer = Peer(domain_id(__name__))
    cam = Camera(peer)
    params = {**SHARED_PARAMS, "depth_model": checkpoints["metric"], "warmup": False}
    (proc,) = start_nodes([(params, {})], [peer], tmp_path_factory.mktemp("lens"))
    yield cam, proc
    code = proc.stop()
    peer.close()
    assert code == 0, proc.log()


def frame(sec: int, width: int = W, height: int = H) -> Image:
    return image_msg(camera_rgb(height, width, seed=sec), "rgb8", (sec, 0), "lens_optical")


def eroded(mask: np.ndarray) -> np.ndarray:
    """`mask` less its one-pixel rim (and the image border)."""
    inner = np.zeros_like(mask)
    inner[1:-1, 1:-1] = (mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1]
                         & mask[1:-1, :-2] & mask[1:-1, 2:])
    return inner


def assert_points_reproject(out: dict, info_in: CameraInfo) -> None:
    """Published camera_info is the input's; every finite point lands on its own pixel
    through it, and its z is ~/depth at that pixel."""
    info = out["info"]
    for name in ("width", "height", "distortion_model", "binning_x", "binning_y"):
        assert getattr(info, name) == getattr(info_in, name), name
    for name in ("d", "k", "r", "p"):
        assert list(getattr(info, name)) == list(getattr(info_in, name)), name
    fields = cloud_array(out["points"])
    points = np.stack([fields["x"], fields["y"], fields["z"]], -1).astype(np.float64)
    finite = np.isfinite(points).all(-1)
    # a raw image: the model sees it rectified with P (camera.rectify_for_model), so the
    # pixels with depth are those that rectified view holds, up to its one-pixel rim
    if any(info.d):
        seen = rectified_view_footprint(info)
        assert not (finite & ~seen).any() and not (eroded(seen) & ~finite).any()
        assert finite.mean() > 0.7
    else:
        assert finite.all()
    uv = textbook_pixels(points[finite], info)
    v, u = np.nonzero(finite)
    assert np.abs(uv[:, 0] - u).max() < 0.01 and np.abs(uv[:, 1] - v).max() < 0.01
    depth = image_array(out["depth"]).astype(np.float64)
    np.testing.assert_allclose(points[finite][:, 2], depth[finite], rtol=1e-5)


@pytest.mark.parametrize("lens", [*LENSES, "rectified"])
def test_points_reproject_through_the_camera_info_to_their_pixels(node, lens: str) -> None:
    cam, _ = node
    sec = 100 + [*LENSES, "rectified"].index(lens)
    if lens == "rectified":
        info = camera_info("plumb_bob", [0.0] * 5, (sec, 0), p=P_RECT)
    else:
        info = camera_info(lens, LENSES[lens], (sec, 0))
    out = cam.send(frame(sec), info)
    assert_points_reproject(out, info)
    if lens == "plumb_bob":  # the straight pinhole rays would be off by pixels here
        fields = cloud_array(out["points"])
        x, z = fields["x"].astype(np.float64), fields["z"].astype(np.float64)
        row, col = H // 2, int(np.flatnonzero(np.isfinite(x[H // 2]))[0])  # leftmost point
        u_pin = K[0] * x[row, col] / z[row, col] + K[2]
        assert abs(u_pin - col) > 1.0


def test_depth_camera_info_is_scaled_with_the_output_resolution(node) -> None:
    cam, _ = node
    results = cam.peer.set_parameters({"output_resolution": "model"})
    assert results[0].successful
    try:
        info = camera_info("plumb_bob", LENSES["plumb_bob"], (150, 0))
        out = cam.send(frame(150), info)
    finally:
        cam.peer.set_parameters({"output_resolution": "input"})
    got = out["info"]
    assert (got.width, got.height) != (W, H) and got.width == out["depth"].width
    sx, sy = got.width / W, got.height / H
    # K and P (P = K here) resampled: f * s, (c + 0.5) * s - 0.5; fx 80, fy 82, cx 47.3, cy 35.9
    assert got.k[0] == pytest.approx(80.0 * sx) and got.k[4] == pytest.approx(82.0 * sy)
    assert got.k[2] == pytest.approx((47.3 + 0.5) * sx - 0.5)
    assert got.k[5] == pytest.approx((35.9 + 0.5) * sy - 0.5)
    assert got.p[0] == pytest.approx(80.0 * sx) and got.p[5] == pytest.approx(82.0 * sy)
    assert got.p[2] == pytest.approx((47.3 + 0.5) * sx - 0.5)
    assert got.p[6] == pytest.approx((35.9 + 0.5) * sy - 0.5)
    assert list(got.d) == list(info.d) and got.distortion_model == "plumb_bob"
    fields = cloud_array(out["points"])
    points = np.stack([fields["x"], fields["y"], fields["z"]], -1).astype(np.float64)
    finite = np.isfinite(points).all(-1)
    uv = textbook_pixels(points[finite], got)
    v, u = np.nonzero(finite)
    assert np.abs(uv[:, 0] - u).max() < 0.01 and np.abs(uv[:, 1] - v).max() < 0.01


def test_resolution_switch_and_back_and_recovery(node) -> None:
    cam, proc = node
    d = LENSES["plumb_bob"]
    small_k = [k * (0.5 if i in (0, 2, 4, 5) else 1.0) for i, k in enumerate(K)]
    for sec, (width, height, k) in enumerate([(W, H, K), (W // 2, H // 2, small_k), (W, H, K)],
                                             start=200):
        info = camera_info("plumb_bob", d, (sec, 0), width, height, k)
        out = cam.send(frame(sec, width, height), info)
        assert (out["depth"].width, out["depth"].height) == (width, height)
        assert_points_reproject(out, info)
    # a size that its camera_info does not describe: rejected with a reason, then recovered
    before = int(cam.diagnostics().get("errors.camera_info", 0))
    wrong = camera_info("plumb_bob", d, (210, 0), W, H, K)
    cam.wait_counted("camera_info", before, frame(210, W // 2, H // 2), wrong)
    assert "must publish the calibration of the resolution it streams" in proc.log()
    info = camera_info("plumb_bob", d, (211, 0), W // 2, H // 2, small_k)
    assert_points_reproject(cam.send(frame(211, W // 2, H // 2), info), info)


def test_image_without_its_camera_info_is_dropped_and_counted(node) -> None:
    cam, proc = node
    before = int(cam.diagnostics().get("errors.no_camera_info", 0))
    other_stamp = camera_info("plumb_bob", LENSES["plumb_bob"], (299, 0))
    cam.wait_counted("no_camera_info", before, frame(300), other_stamp)
    # the warning is throttled (5 s per camera), and an earlier test may have just used it:
    # it names this frame within one throttle period of images that keep coming unpaired
    deadline = time.monotonic() + 15.0
    while not (f"no camera_info on {INFO_TOPIC}" in (log := proc.log())
               and "300.000000000" in log):
        assert time.monotonic() < deadline, log
        cam.image.publish(frame(300))
        time.sleep(INFO_DELAY)
        cam.info.publish(other_stamp)
        time.sleep(0.3)
    assert cam.diagnostics()["intrinsics"].startswith("camera_info")
    assert not any(stamp_of(m) == (300, 0) for m in cam.out["depth"].msgs)


def test_unknown_distortion_model_gives_depth_but_no_points(node) -> None:
    cam, proc = node
    info = camera_info("kannala_brandt8", [0.1] * 8, (400, 0))
    cam.image.publish(frame(400))
    deadline = time.monotonic() + 20
    depth = None
    while depth is None and time.monotonic() < deadline:
        cam.image.publish(frame(400))
        time.sleep(INFO_DELAY)
        cam.info.publish(info)
        depth = cam.out["depth"].wait_for(lambda m: stamp_of(m) == (400, 0), 0.3)
    assert depth is not None
    info_out = cam.out["info"].wait_for(lambda m: stamp_of(m) == (400, 0), 2.0)
    assert info_out is not None and info_out.distortion_model == "kannala_brandt8"
    assert not any(stamp_of(m) == (400, 0) for m in cam.out["points"].msgs)
    cam.peer.wait_until(lambda: int(cam.diagnostics().get("errors.distortion", 0)) >= 1, 5.0,
                        "errors.distortion in /diagnostics")
    assert "cannot be inverted" in proc.log()


def test_first_frame_of_a_fresh_node_uses_the_real_intrinsics(checkpoints, tmp_path):
    """The camera runs before the node starts; the node's first output already comes from
    the camera's own camera_info, never from camera.hfov."""
    peer = Peer(domain_id(__name__ + "fresh"))
    try:
        cam = Camera(peer)
        params = {**SHARED_PARAMS, "depth_model": checkpoints["metric"], "warmup": False,
                  "camera.hfov": 150.0}  # a fallback far from the real camera
        (proc,) = start_nodes([(params, {})], [peer], tmp_path)
        info = camera_info("plumb_bob", LENSES["plumb_bob"], (1, 0))
        out = cam.send(frame(1), info)
        assert_points_reproject(out, info)
        # every output so far, the very first included, is of this camera: its camera_info,
        # and clouds whose points land on their own pixels through it (a cloud made with
        # camera.hfov = 150 would not)
        infos, clouds = list(cam.out["info"].msgs), list(cam.out["points"].msgs)
        assert infos and clouds
        for msg in infos:
            assert stamp_of(msg) == (1, 0)
            assert list(msg.k) == list(info.k) and list(msg.p) == list(info.p)
        for cloud in clouds:
            assert stamp_of(cloud) == (1, 0)
            fields = cloud_array(cloud)
            points = np.stack([fields["x"], fields["y"], fields["z"]], -1).astype(np.float64)
            finite = np.isfinite(points).all(-1)
            assert finite.mean() > 0.7
            uv = textbook_pixels(points[finite], info)
            v, u = np.nonzero(finite)
            assert np.abs(uv[:, 0] - u).max() < 0.01 and np.abs(uv[:, 1] - v).max() < 0.01
        assert proc.stop() == 0
    finally:
        peer.close()
