"""dpt_node end to end over real DDS: every input encoding, every output's layout and header,
camera_info consistency, point-cloud geometry, a transformers oracle, parameter updates.

The node (`shared_node`) runs as a subprocess started like the launch file starts it, with a
metric depth model (Depth Anything, DINOv2) and a segmentation model (DPT, 5 classes)."""

from __future__ import annotations

import numpy as np
import pytest
from _node_util import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    backproject,
    camera_info_msg,
    camera_rgb,
    cloud_array,
    diagnostics_values,
    encode_as,
    image_array,
    image_msg,
    labels_json,
    send_until,
    unpack_rgb,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from std_msgs.msg import String  # noqa: E402

H, W = 60, 80
K = dict(fx=70.0, fy=66.0, cx=41.3, cy=28.6)
FRAME = "cam_optical"
IMAGE_OUTPUTS = {  # topic -> (encoding, bytes per pixel)
    "/dpt_node/depth/image": ("32FC1", 4),
    "/dpt_node/depth_colorized/image": ("bgr8", 3),
    "/dpt_node/segmentation/image": ("mono8", 1),
    "/dpt_node/segmentation_colorized/image": ("bgr8", 3),
    "/dpt_node/segmentation_overlay/image": ("bgr8", 3),
}


@pytest.fixture(scope="module")
def peer(shared_node):
    return shared_node[0]


@pytest.fixture(scope="module")
def io(peer):
    """Publishers for image + camera_info, collectors on every output."""
    collectors = {t: peer.collect(Image, t) for t in IMAGE_OUTPUTS}
    collectors["/dpt_node/depth/camera_info"] = peer.collect(
        CameraInfo, "/dpt_node/depth/camera_info")
    collectors["/dpt_node/points"] = peer.collect(PointCloud2, "/dpt_node/points")
    return {
        "image": peer.publisher(Image, IMAGE_TOPIC),
        "info": peer.publisher(CameraInfo, INFO_TOPIC),
        "out": collectors,
    }


def roundtrip(io, msg, info=None, topics=None, timeout=30.0) -> dict:
    """Publish the image, then (as image_transport's CameraPublisher does) its camera_info
    with the image's stamp, until every output topic carries that stamp."""
    topics = topics or list(io["out"])
    stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
    sends = [(io["image"], msg)]
    if info is not None:
        info.header.stamp.sec, info.header.stamp.nanosec = stamp
        sends.append((io["info"], info))
    got = send_until(sends, [io["out"][t] for t in topics], stamp, timeout=timeout)
    return dict(zip(topics, got))


def info_for(width: int, height: int, frame: str = FRAME) -> CameraInfo:
    """The camera_info of a `width` x `height` image (roundtrip gives it the image's stamp)."""
    return camera_info_msg(**K, width=width, height=height, stamp=(0, 0), frame_id=frame)


# ------------------------------------------------------------------------------ tests
FRAMES = [  # name, source, encoding, options
    ("rgb8", "rgb", "rgb8", {}),
    ("bgr8", "rgb", "bgr8", {}),
    ("rgba8", "rgb", "rgba8", {}),
    ("bgra8-padded", "rgb", "bgra8", {"pad": 4}),
    ("rgb8-padded", "rgb", "rgb8", {"pad": 7}),
    ("grey-rgb8", "grey", "rgb8", {}),
    ("mono8", "grey", "mono8", {}),
    ("mono16", "grey", "mono16", {}),
    ("mono16-bigendian", "grey", "mono16", {"big_endian": True}),
    ("mono8-padded", "grey", "mono8", {"pad": 3}),
]


def test_every_encoding_and_every_output(io):
    rgb = camera_rgb(H, W, seed=1)
    grey = np.repeat(rgb[..., :1], 3, axis=-1)
    results = {}
    for i, (name, source, encoding, opts) in enumerate(FRAMES):
        pixels = rgb if source == "rgb" else grey
        stamp = (1000 + i, 123456789)
        msg = image_msg(encode_as(pixels, encoding), encoding, stamp, FRAME, **opts)
        out = roundtrip(io, msg, info=info_for(W, H))
        results[name] = out
        for topic, m in out.items():  # every header is the input's
            assert (m.header.stamp.sec, m.header.stamp.nanosec) == stamp, topic
            assert m.header.frame_id == FRAME, topic
        for topic, (enc, bpp) in IMAGE_OUTPUTS.items():
            m = out[topic]
            assert (m.encoding, m.height, m.width) == (enc, H, W), topic
            assert m.step >= W * bpp and len(m.data) == m.step * H, topic
        info = out["/dpt_node/depth/camera_info"]
        assert (info.width, info.height) == (W, H)
        assert np.allclose(info.k, [K["fx"], 0, K["cx"], 0, K["fy"], K["cy"], 0, 0, 1])
        assert np.allclose(np.reshape(info.p, (3, 4))[:, :3], np.reshape(info.k, (3, 3)))

        cloud = out["/dpt_node/points"]
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb", "label"]
        assert [f.offset for f in cloud.fields[:4]] == [0, 4, 8, 12]
        assert all(f.datatype == 7 and f.count == 1 for f in cloud.fields[:4])  # FLOAT32
        assert cloud.fields[4].datatype in (2, 4, 6) and cloud.fields[4].offset >= 16
        assert (cloud.height, cloud.width) == (H, W) and not cloud.is_dense
        assert cloud.point_step >= 20 and cloud.row_step == cloud.point_step * W
        assert len(cloud.data) == cloud.row_step * H

        # colour and class of each point are the input pixel's and the segmentation's
        fields = cloud_array(cloud)
        assert np.array_equal(unpack_rgb(fields["rgb"]), pixels)
        seg = image_array(out["/dpt_node/segmentation/image"])
        assert np.array_equal(fields["label"], seg)
        # overlay = blend of the input (BGR) and the palette colours
        overlay = image_array(out["/dpt_node/segmentation_overlay/image"]).astype(float)
        colors = image_array(out["/dpt_node/segmentation_colorized/image"]).astype(float)
        blend = 0.5 * pixels[..., ::-1] + 0.5 * colors
        assert np.abs(overlay - blend).max() <= 1.0
        # the palette is a function of the class id
        ids, first = np.unique(seg, return_index=True)
        assert np.array_equal(colors.reshape(-1, 3)[first][np.searchsorted(ids, seg)], colors)

    # The same picture in any encoding gives the same model output.
    for name, source, *_ in FRAMES:
        ref = results["rgb8" if source == "rgb" else "grey-rgb8"]
        for topic in ("/dpt_node/depth/image", "/dpt_node/segmentation/image"):
            assert np.array_equal(image_array(results[name][topic]),
                                  image_array(ref[topic])), (name, topic)
    depth = image_array(results["rgb8"]["/dpt_node/depth/image"])
    assert np.isfinite(depth).all() and (depth > 0).all() and (depth <= 10).all()
    assert not np.array_equal(depth, image_array(results["grey-rgb8"]["/dpt_node/depth/image"]))


def check_geometry(out: dict) -> None:
    depth = image_array(out["/dpt_node/depth/image"])
    info = out["/dpt_node/depth/camera_info"]
    fields = cloud_array(out["/dpt_node/points"])
    assert (info.height, info.width) == depth.shape == fields["x"].shape
    expected = backproject(depth, info.k)
    got = np.stack([fields["x"], fields["y"], fields["z"]], axis=-1).astype(np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.nanmax(np.abs(got - expected)) <= 1e-5


def test_points_are_depth_backprojected_with_the_published_camera_info(io):
    msg = image_msg(camera_rgb(H, W, seed=2), "rgb8", (2000, 1), FRAME)
    check_geometry(roundtrip(io, msg, info=info_for(W, H)))


def test_model_resolution_scales_camera_info(io, peer):
    assert all(r.successful for r in peer.set_parameters({"output_resolution": "model"}))
    try:
        msg = image_msg(camera_rgb(H, W, seed=3), "rgb8", (3000, 1), FRAME)
        out = roundtrip(io, msg, info=info_for(W, H))
    finally:
        assert all(r.successful for r in peer.set_parameters({"output_resolution": "input"}))
    mh, mw = 56, 56  # the Depth Anything checkpoint's input size
    for topic, (_enc, _) in IMAGE_OUTPUTS.items():
        assert (out[topic].height, out[topic].width) == (mh, mw), topic
    info = out["/dpt_node/depth/camera_info"]
    sx, sy = mw / W, mh / H  # pixel centres map onto pixel centres
    expected = [K["fx"] * sx, 0, (K["cx"] + 0.5) * sx - 0.5,
                0, K["fy"] * sy, (K["cy"] + 0.5) * sy - 0.5, 0, 0, 1]
    assert (info.width, info.height) == (mw, mh) and np.allclose(info.k, expected)
    check_geometry(out)


def test_depth_and_classes_match_the_transformers_oracle(io, checkpoints):
    torch = pytest.importorskip("torch")
    from transformers import (
        DepthAnythingForDepthEstimation,
        DPTForSemanticSegmentation,
        DPTImageProcessorPil,
    )

    # 56x56 is the depth model's own size and 64x64 the segmenter's: no resampling.
    rgb = camera_rgb(56, 56, seed=4)
    out = roundtrip(io, image_msg(rgb, "rgb8", (4000, 1), "cam56"), info_for(56, 56, "cam56"),
                    topics=["/dpt_node/depth/image"])
    model = DepthAnythingForDepthEstimation.from_pretrained(checkpoints["metric"]).eval()
    proc = DPTImageProcessorPil.from_pretrained(checkpoints["metric"])
    with torch.no_grad():
        ref = model(**proc(images=rgb, return_tensors="pt")).predicted_depth[0].numpy()
    got = image_array(out["/dpt_node/depth/image"])
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()

    rgb = camera_rgb(64, 64, seed=5)
    out = roundtrip(io, image_msg(rgb, "rgb8", (4001, 1), "cam64"), info_for(64, 64, "cam64"),
                    topics=["/dpt_node/segmentation/image"])
    model = DPTForSemanticSegmentation.from_pretrained(checkpoints["segmentation"]).eval()
    proc = DPTImageProcessorPil.from_pretrained(checkpoints["segmentation"])
    with torch.no_grad():
        logits = model(**proc(images=rgb, return_tensors="pt")).logits
    ref = proc.post_process_semantic_segmentation(
        type("O", (), {"logits": logits})(), target_sizes=[(64, 64)])[0].numpy()
    got = image_array(out["/dpt_node/segmentation/image"])
    assert (got == ref).mean() > 0.99


def test_parameter_updates_apply_and_bad_ones_are_rejected(io, peer):
    rgb = camera_rgb(H, W, seed=6)
    topics = ["/dpt_node/depth/image", "/dpt_node/depth_colorized/image", "/dpt_node/points"]
    before = roundtrip(io, image_msg(rgb, "rgb8", (5000, 1), FRAME), info_for(W, H), topics)

    bad = [
        ({"colormap": "jet"}, "colormap"),
        ({"depth.min": 5.0}, "depth.max"),  # the service sets one at a time
        ({"pointcloud.stride": 0}, "stride"),
        ({"overlay_alpha": 2.0}, "overlay_alpha"),
        ({"depth_model": "/elsewhere"}, "read-only"),
        ({"output_resolution": "half"}, "output_resolution"),
    ]
    for values, fragment in bad:
        results = peer.set_parameters(values)
        assert not all(r.successful for r in results), values
        reasons = " ".join(r.reason for r in results)
        assert fragment in reasons, (values, reasons)

    results = peer.set_parameters({"colormap": "viridis", "pointcloud.stride": 4,
                                   "pointcloud.color": False})
    assert all(r.successful for r in results)
    try:
        after = roundtrip(io, image_msg(rgb, "rgb8", (5001, 1), FRAME), info_for(W, H), topics)
    finally:
        assert all(r.successful for r in peer.set_parameters(
            {"colormap": "turbo", "pointcloud.stride": 1, "pointcloud.color": True}))
    depth = image_array(before["/dpt_node/depth/image"])
    assert np.array_equal(image_array(after["/dpt_node/depth/image"]), depth)  # rejected ones: none
    assert not np.array_equal(image_array(after["/dpt_node/depth_colorized/image"]),
                              image_array(before["/dpt_node/depth_colorized/image"]))
    cloud = after["/dpt_node/points"]
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "label"]
    sub = depth[::4, ::4]
    expected = backproject(depth, [K["fx"], 0, K["cx"], 0, K["fy"], K["cy"]])[::4, ::4]
    expected = expected[np.isfinite(sub)]
    fields = cloud_array(cloud)
    assert cloud.height == 1 and cloud.width == len(expected)
    got = np.stack([fields["x"][0], fields["y"][0], fields["z"][0]], axis=-1)
    assert np.abs(got - expected).max() <= 1e-5


def test_labels_are_latched_and_diagnostics_report(io, peer):
    qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    labels = peer.collect(String, "/dpt_node/segmentation/labels", qos)
    msg = labels.wait_for(lambda m: True, 10.0)
    assert msg is not None
    assert labels_json(msg) == {0: "wall", 1: "floor", 2: "chair", 3: "table", 4: "person"}

    diag = peer.collect(DiagnosticArray, "/diagnostics")
    found = diag.wait_for(lambda m: bool(diagnostics_values(m)), 5.0)
    assert found is not None
    values = diagnostics_values(found)
    assert values["device"] == "cpu" and values["depth_metric"] == "true"
    assert values["compile"] == "none"
    assert values["nonfinite_frames"] == "0"  # the fp32 node's model output was finite
    assert int(values["frames_processed"]) >= len(FRAMES)
    assert values["input_reliability"] == "reliable"
    assert float(values["latency_p95_ms"]) > 0
    peer.node.destroy_subscription(diag.sub)
