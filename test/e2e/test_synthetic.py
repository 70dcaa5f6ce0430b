"""End to end over real DDS: synthetic_camera → dpt_node (shipped weights) → outputs checked
against the camera's ground truth: depth AbsRel, segmentation mIoU, and the point cloud
against the exact scene surfaces (figures documented in docs/synthetic.md)."""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from _synthetic_util import (  # noqa: E402
    ROOT,
    WEIGHTS,
    Collector,
    cloud_xyz,
    image_array,
    pose_matrix,
    processes,
    ros_env,
    unique_domain,
)
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from dpt_ros.synthetic import CLASS_NAMES, NUM_CLASSES, make_world  # noqa: E402
from dpt_ros.synthetic.metrics import (  # noqa: E402
    confusion,
    depth_metrics,
    iou_per_class,
    mean_iou,
)

pytestmark = pytest.mark.ros

SEED = 1_000_007  # a held-out world (one of the ten of tools/eval_synthetic.py)
# The floors are the held-out targets (docs/synthetic.md): AbsRel <= 0.08, delta<1.25 >= 0.93,
# mIoU >= 0.80, every class in view >= 0.50. Run to run, which 4 frames (320x240) are scored
# depends on when the node is ready; measured here: AbsRel 0.038, delta<1.25 0.995, mIoU
# 0.980 (lowest class 0.954), point-to-surface medians 0.06-0.09 m: margins of 2x and more.
ABS_REL_MAX = 0.08
DELTA1_MIN = 0.93
MIOU_MIN = 0.80
CLASS_IOU_MIN = 0.50  # for every class with at least CLASS_SHARE_MIN of the pixels
CLASS_SHARE_MIN = 0.005
IN_VIEW_SHARE = 0.001  # a class with fewer ground-truth pixels is out of view (~300 px)
STRAY_MAX = 0.005  # share of pixels labelled as a class that is out of view
SURFACE_MEDIAN_MAX_M = 0.2
W, H, FRAMES = 320, 240, 4
TOPICS = {"/cam/image_raw": Image, "/cam/depth_gt": Image, "/cam/labels_gt": Image,
          "/cam/pose": PoseStamped, "/cam/camera_info": CameraInfo,
          "/dpt_node/depth/image": Image, "/dpt_node/segmentation/image": Image,
          "/dpt_node/points": PointCloud2}


@pytest.fixture(scope="module")
def frames() -> list[dict]:
    domain = unique_domain(23)
    collector = Collector(domain, TOPICS)
    camera = ["-m", "dpt_ros.ros.synthetic_camera", "--ros-args", "-r", "__ns:=/cam",
              "-p", f"seed:={SEED}", "-p", "rate:=4.0", "-p", f"width:={W}",
              "-p", f"height:={H}"]
    node = ["-m", "dpt_ros.ros.node", "--ros-args", "--params-file",
            str(ROOT / "config" / "dpt.yaml"),
            "-p", f"depth_model:={WEIGHTS / 'synthetic-depth'}",
            "-p", f"segmentation_model:={WEIGHTS / 'synthetic-seg'}", "-p", "device:=cpu",
            "-r", "image:=/cam/image_raw", "-r", "camera_info:=/cam/camera_info"]
    try:
        with processes([node, camera], ros_env(domain)) as procs:
            return collector.wait_for(set(TOPICS), FRAMES, 150.0, procs)[:FRAMES]
    finally:
        collector.close()


def test_depth_and_segmentation_match_ground_truth(frames: list[dict]) -> None:
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    depth_scores = []
    for f in frames:
        depth = image_array(f["/dpt_node/depth/image"])
        assert f["/dpt_node/depth/image"].encoding == "32FC1" and depth.shape == (H, W)
        depth_scores.append(depth_metrics(depth, image_array(f["/cam/depth_gt"])))
        labels = image_array(f["/dpt_node/segmentation/image"])
        conf += confusion(labels, image_array(f["/cam/labels_gt"]), NUM_CLASSES)
    abs_rel = float(np.mean([d["abs_rel"] for d in depth_scores]))
    delta1 = float(np.mean([d["delta1"] for d in depth_scores]))
    iou, share = iou_per_class(conf), conf.sum(1) / conf.sum()
    # mIoU over the classes in view. Which frames are scored depends on which ones a busy
    # node drops, and a class out of view in all of them (the box, with both cores loaded)
    # gets IoU 0 from a few dozen stray pixels: that says nothing of the classes in view
    # (mean_iou 0.78 from per-class 0.75-0.995), so stray pixels are bounded on their own.
    in_view = share >= IN_VIEW_SHARE
    miou = float(np.mean(iou[in_view]))
    stray = conf[:, ~in_view].sum() / conf.sum()  # labelled as a class not in view
    print(f"e2e world {SEED}: AbsRel {abs_rel:.4f}, delta1 {delta1:.4f}, mIoU in view "
          f"{miou:.4f} (all: {mean_iou(conf):.4f}), IoU "
          f"{dict(zip(CLASS_NAMES.values(), iou.round(3)))}, pixel share {share.round(4)}, "
          f"stray {stray:.4f}")
    assert abs_rel <= ABS_REL_MAX
    assert delta1 >= DELTA1_MIN
    assert miou >= MIOU_MIN
    assert stray <= STRAY_MAX, stray
    for c in np.flatnonzero(share >= CLASS_SHARE_MIN):
        assert iou[c] >= CLASS_IOU_MIN, (CLASS_NAMES[c], float(iou[c]), float(share[c]))


def test_points_lie_on_the_true_surfaces(frames: list[dict]) -> None:
    world = make_world(SEED)
    for f in frames:
        cloud = f["/dpt_node/points"]
        assert cloud.header.frame_id == "camera_optical_frame"
        xyz = cloud_xyz(cloud).reshape(H, W, 3)
        depth = image_array(f["/dpt_node/depth/image"])
        info = f["/cam/camera_info"]
        fx, cx, fy, cy = info.k[0], info.k[2], info.k[4], info.k[5]
        # The cloud is the published depth back-projected through the camera's pinhole.
        u, v = np.meshgrid(np.arange(W), np.arange(H))
        ok = np.isfinite(xyz).all(-1)
        assert ok.mean() > 0.95
        np.testing.assert_allclose(xyz[..., 2][ok], depth[ok], rtol=1e-5)
        np.testing.assert_allclose(xyz[..., 0][ok], ((u - cx) / fx * depth)[ok], atol=1e-4)
        np.testing.assert_allclose(xyz[..., 1][ok], ((v - cy) / fy * depth)[ok], atol=1e-4)
        rot, pos = pose_matrix(f["/cam/pose"])
        world_pts = xyz[ok] @ rot.T + pos
        err = world.surface_distance(world_pts[::5])
        print(f"e2e world {SEED}: point-to-surface median {float(np.median(err)):.4f} m")
        assert float(np.median(err)) <= SURFACE_MEDIAN_MAX_M
        # Ground-truth depth through the same pose lands on the surfaces to float precision.
        gt = image_array(f["/cam/depth_gt"])
        gt_pts = np.stack([(u - cx) / fx * gt, (v - cy) / fy * gt, gt], -1).reshape(-1, 3)
        assert np.percentile(world.surface_distance((gt_pts @ rot.T + pos)[::7]), 99) < 2e-3

