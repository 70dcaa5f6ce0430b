"""grid.png: the first, middle and last scored frames, each as its input, depths, error
map, classes and point cloud (`synthetic.sheet.demo_sheet` lays them out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpt_ros import messages
from dpt_ros.demo.scoring import FrameArrays
from dpt_ros.synthetic import CLASS_NAMES
from dpt_ros.synthetic.metrics import confusion, mean_iou
from dpt_ros.synthetic.sheet import demo_sheet
from dpt_ros.synthetic.views import class_colors, side_view, splat_points


def kept_indices(frames: int) -> list[int]:
    """Which of `frames` scored frames the picture shows."""
    return sorted({0, frames // 2, frames - 1})


def picture_frame(index: int, msgs: dict[str, object], frame: FrameArrays,
                  abs_rel: float) -> dict:
    """One row of the picture: the arrays `demo_sheet` draws and the frame's scores."""
    image = messages.rgb_from_image_msg(msgs["image_raw"])
    n = len(CLASS_NAMES)
    table = np.concatenate([class_colors(n), np.full((1, 3), 200, np.uint8)])  # + unlabelled
    ids = (np.full(len(frame.xyz), n) if frame.cloud_labels is None
           else np.minimum(frame.cloud_labels, n))
    pts = frame.pose.to_world(frame.xyz)
    target = np.nanmedian(pts, axis=0) if np.isfinite(pts).any() else frame.pose.position
    cloud = splat_points(pts, table[ids], side_view(frame.pose, target), *image.shape[1::-1])
    return {"index": index, "image": image, "pred": frame.depth, "gt": frame.depth_gt,
            "labels_gt": frame.labels_gt, "cloud": cloud,
            "overlay": messages.rgb_from_image_msg(msgs["segmentation_overlay/image"]),
            "abs_rel": abs_rel,
            "miou": mean_iou(confusion(frame.labels, frame.labels_gt, n))}


def write_picture(kept: list[dict], summary: dict, path: Path) -> None:
    demo_sheet(kept, summary).save(path)
