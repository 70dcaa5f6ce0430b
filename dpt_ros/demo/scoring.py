"""The demo's figures: each frame's messages read back as arrays (`dpt_ros.messages`, the
same readers the package tests its outputs with), scored against the ground truth frame by
frame (bounded memory), summed up for summary.json; and each model's rate alone."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

from dpt_ros import messages
from dpt_ros.core.alignment import Extrinsic
from dpt_ros.synthetic import CLASS_NAMES, make_world
from dpt_ros.synthetic.camera_path import Pose
from dpt_ros.synthetic.evaluation import model_fps
from dpt_ros.synthetic.metrics import Scores


@dataclass
class FrameArrays:
    """One complete frame as arrays: the node's outputs and the camera's ground truth."""

    depth: np.ndarray  # (H, W) float32 metres, NaN = none
    depth_gt: np.ndarray
    labels: np.ndarray  # (H, W) class ids
    labels_gt: np.ndarray
    xyz: np.ndarray  # (N, 3) float32 published points, camera optical frame, NaN kept
    cloud_labels: np.ndarray | None  # (N,) class id of each point (None: no label field)
    pose: Pose  # camera -> world when the frame was taken


def pose_from_msg(msg) -> Pose:
    """geometry_msgs/PoseStamped → Pose, the quaternion turned into a rotation by the
    package's one rule (`core.alignment.Extrinsic`)."""
    p, q = msg.pose.position, msg.pose.orientation
    transform = Extrinsic.from_list([p.x, p.y, p.z, q.x, q.y, q.z, q.w])
    return Pose(np.array(transform.translation), transform.rotation())


def frame_arrays(msgs: dict[str, object]) -> FrameArrays:
    cloud = messages.cloud_fields(msgs["points"], ("x", "y", "z", "label"))
    return FrameArrays(
        depth=messages.image_array(msgs["depth/image"]),
        depth_gt=messages.image_array(msgs["depth_gt"]),
        labels=messages.image_array(msgs["segmentation/image"]),
        labels_gt=messages.image_array(msgs["labels_gt"]),
        xyz=np.stack([cloud[c] for c in "xyz"], 1),
        cloud_labels=cloud.get("label"),
        pose=pose_from_msg(msgs["pose"]),
    )


class Scorer:
    """Accumulates the summary figures frame by frame (bounded memory)."""

    def __init__(self, seed: int):
        self.world = make_world(seed)
        self.scores = Scores(CLASS_NAMES)
        self.latency: list[float] = []
        self.arrivals: list[float] = []
        self.surface: list[np.ndarray] = []

    @property
    def count(self) -> int:
        return len(self.latency)

    def add(self, stamp: tuple[int, int], frame: FrameArrays, arrival: float) -> dict:
        """Scores one frame; returns its depth figures (abs_rel, ...)."""
        d = self.scores.add_depth(frame.depth, frame.depth_gt)
        self.scores.add_labels(frame.labels, frame.labels_gt)
        self.latency.append(arrival - (stamp[0] + stamp[1] * 1e-9))
        self.arrivals.append(arrival)
        sample = frame.xyz[::7]
        world_pts = frame.pose.to_world(sample[np.isfinite(sample).all(1)])
        self.surface.append(self.world.surface_distance(world_pts).astype(np.float32))
        return d

    def summary(self) -> dict:
        n = self.count
        span = self.arrivals[-1] - self.arrivals[0] if n > 1 else 0.0
        lat = np.asarray(self.latency) * 1000.0
        surface = np.concatenate(self.surface) if self.surface else np.zeros(0)
        return {
            "frames": n,
            "fps": round((n - 1) / span, 3) if span > 0 else None,
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1),
                           "p95": round(float(np.percentile(lat, 95)), 1)},
            **self.scores.summary(),
            "point_to_surface_median_m": round(float(np.median(surface)), 4)
            if surface.size else None,
            "points_scored": int(surface.size),
        }


def model_rates(args: argparse.Namespace, images: list[np.ndarray]) -> dict:
    """Frames per second of each model alone through the core pipeline (after the DDS run,
    so nothing else of the demo competes), with the outputs the node computes for it here."""
    if args.node_threads:
        torch.set_num_threads(args.node_threads)  # as the node ran
    rates = {task: round(model_fps(model, task, images, device=args.device), 2)
             for task, model in (("depth", args.depth_model),
                                 ("segmentation", args.segmentation_model)) if model}
    return {**rates, "torch_threads": torch.get_num_threads(),
            "measured": "in-process Pipeline.process per frame, median, camera resolution"}
