"""Frames that carry sensor bytes (YUV 4:2:2, Bayer): `Pipeline._upload` converts them on the
model's device and every output equals the one of the same picture decoded to RGB on the host;
batches mixing encodings keep each frame's own pixels; `Frame(rgb)` callers are unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _checkpoints import make_checkpoints
from _color_reference import bayer_reference, packed, yuv_reference

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.codecs.color_convert import BAYER, to_rgb
from dpt_ros.core.codecs.image_codec import RawImage, parse_image
from dpt_ros.core.codecs.upload import Uploader
from dpt_ros.core.pipeline.pipeline import OUTPUTS, Frame, Pipeline

H, W = 40, 56
INTR = Intrinsics(fx=50.0, fy=52.0, cx=27.5, cy=19.5, width=W, height=H)
RNG = np.random.default_rng(11)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    pytest.importorskip("transformers")
    ckpt = make_checkpoints(tmp_path_factory.mktemp("enc_ckpt"))
    return Pipeline(depth_model=str(ckpt["metric"]), segmentation_model=str(ckpt["segmentation"]),
                    device="cpu")


def sensor_frames() -> dict[str, tuple[RawImage, np.ndarray]]:
    """Per encoding: a padded camera buffer parsed as the node parses it, and the RGB the
    independent references of test_core_color_convert make of it."""
    out = {}
    for encoding in ("yuv422", "yuv422_yuy2"):
        rows = packed(RNG.integers(0, 256, (H, W // 2, 4), dtype=np.uint8), encoding)
        out[encoding] = (rows, yuv_reference(rows, encoding))
    for encoding, pattern in BAYER.items():
        rows = RNG.integers(0, 256, (H, W), dtype=np.uint8)
        out[encoding] = (rows, bayer_reference(rows, pattern))
    parsed = {}
    for encoding, (rows, rgb) in out.items():
        step = rows.shape[1] + 4  # padded rows, as some drivers send them
        data = np.concatenate([rows, np.full((H, 4), 0xEE, np.uint8)], axis=1).tobytes()
        raw = parse_image(data, encoding, W, H, step, 0)
        assert isinstance(raw, RawImage)
        parsed[encoding] = (raw, rgb)
    return parsed


def test_upload_converts_sensor_frames_on_the_device(pipe):
    frames = sensor_frames()
    for encoding, (raw, rgb) in frames.items():
        got = pipe._upload([Frame(raw=raw)])
        assert got.shape == (1, H, W, 3) and got.dtype == torch.uint8
        if encoding in BAYER:  # the bilinear reference is exact
            np.testing.assert_array_equal(got[0].numpy(), rgb, err_msg=encoding)
        else:  # BT.601 from Kr/Kb vs OpenCV's rounded coefficients: within one grey level
            assert np.abs(got[0].numpy().astype(int) - rgb).max() <= 1, encoding


def test_mixed_batch_keeps_each_frame_and_order(pipe):
    frames = sensor_frames()
    host_rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    padded = np.concatenate([host_rgb, np.zeros((H, 2, 3), np.uint8)], axis=1)[:, :W]
    batch = [Frame(padded), Frame(raw=frames["yuv422"][0]), Frame(raw=frames["bayer_rggb8"][0]),
             Frame(raw=frames["yuv422"][0]), Frame(raw=frames["bayer_grbg8"][0])]
    got = pipe._upload(batch)
    singles = [pipe._upload([f])[0] for f in batch]
    assert got.shape == (5, H, W, 3)
    np.testing.assert_array_equal(got[0].numpy(), host_rgb)  # a non-contiguous view is fine
    for i, single in enumerate(singles):
        assert torch.equal(got[i], single), i


def test_outputs_equal_the_host_decoded_frame(pipe):
    """The same picture as sensor bytes or as host RGB: identical outputs, points included."""
    want = set(OUTPUTS) - {"relative"}
    for encoding, (raw, _) in sensor_frames().items():
        rgb = pipe._upload([Frame(raw=raw)])[0].numpy().copy()
        (on_device,) = pipe.process([Frame(raw=raw, intrinsics=INTR)], want)
        (on_host,) = pipe.process([Frame(rgb, INTR)], want)
        for name in ("depth", "segmentation", "overlay", "depth_colorized", "seg_colorized"):
            np.testing.assert_array_equal(getattr(on_device, name), getattr(on_host, name),
                                          err_msg=f"{encoding} {name}")
        np.testing.assert_array_equal(on_device.points.data, on_host.points.data)
        assert on_device.intrinsics == INTR


def test_mixed_batch_process_matches_single_frames(pipe):
    frames = sensor_frames()
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    batch = [Frame(rgb, INTR), Frame(raw=frames["yuv422_yuy2"][0], intrinsics=INTR),
             Frame(raw=frames["bayer_gbrg8"][0], intrinsics=INTR)]
    results = pipe.process(batch, {"depth", "overlay"})
    for frame, result in zip(batch, results):
        (single,) = pipe.process([frame], {"depth", "overlay"})
        np.testing.assert_allclose(result.depth, single.depth, rtol=1e-5, atol=1e-6)
        assert np.abs(result.overlay.astype(int) - single.overlay).max() <= 1


def test_frame_holds_rgb_or_raw():
    rgb = np.zeros((4, 6, 3), np.uint8)
    assert Frame(rgb).size == (4, 6) and Frame(rgb).encoding == "rgb8"
    raw = RawImage(np.zeros((4, 12), np.uint8), "yuv422")
    assert Frame(raw=raw).size == (4, 6) and Frame(raw=raw).encoding == "yuv422"
    with pytest.raises(ValueError, match="exactly one"):
        Frame()
    with pytest.raises(ValueError, match="exactly one"):
        Frame(rgb, raw=raw)


def _uploader_batch() -> list[tuple[np.ndarray, str]]:
    frames = sensor_frames()
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return [(frames["bayer_bggr8"][0].rows, "bayer_bggr8"), (rgb, "rgb8"),
            (frames["yuv422"][0].rows, "yuv422"), (rgb[:, ::-1], "rgb8")]


def test_uploader_without_a_model_and_fresh_cpu_batches():
    batch = _uploader_batch()
    upload = Uploader(torch.device("cpu"))
    first, second = upload(batch), upload(batch)
    assert torch.equal(first, second) and not np.shares_memory(first.numpy(), second.numpy())
    for i, (pixels, encoding) in enumerate(batch):
        expected = pixels if encoding == "rgb8" else to_rgb(torch.from_numpy(pixels.copy())[None],
                                                            encoding)[0].numpy()
        np.testing.assert_array_equal(first[i].numpy(), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_uploader_on_cuda_equals_cpu_and_reuses_pinned_staging():
    batch = _uploader_batch()
    cpu = Uploader(torch.device("cpu"))(batch)
    upload = Uploader(torch.device("cuda"))
    for _ in range(3):  # the pinned buffer is reused once the previous copy has finished
        got = upload(batch)
        assert got.device.type == "cuda" and torch.equal(got.cpu(), cpu)
    assert upload._pinned is not None and upload._pinned.is_pinned()
