"""Training frames for tools/train_synthetic.py, rendered on the fly from training worlds.

The evaluation (and the demo) see frames from the camera path of default worlds. Trained on
those alone, a model sees a box in one frame in five and a thin cylinder mostly as a few
pixels, so half of the worlds are drawn `balanced` (every kind in turn) and part of the
frames are aimed at an object from a point of the path; the rest are plain path frames (with
extra yaw), so the evaluation's distribution stays well covered. Everything is drawn from one
seeded generator: the stream of batches is a function of the seed.
"""

from __future__ import annotations

import math

import numpy as np

from dpt_ros.synthetic import Renderer, make_world, path_pose
from dpt_ros.synthetic.camera_path import LOOP_SECONDS, Pose
from dpt_ros.synthetic.world import HELD_OUT_SEED, World


def aimed_pose(world: World, rng: np.random.Generator) -> Pose:
    """A point of the camera path (clear of every object by construction), looking at a
    random object with up to ±0.45 rad yaw and ±0.15 rad pitch off its centre."""
    base = path_pose(world, float(rng.uniform(0, LOOP_SECONDS)))
    obj = world.objects[int(rng.integers(len(world.objects)))]
    target = np.array([obj.x, obj.y, obj.top * float(rng.uniform(0.2, 0.8))])
    d = target - base.position
    yaw = math.atan2(d[1], d[0]) + float(rng.uniform(-0.45, 0.45))
    pitch = math.atan2(-d[2], math.hypot(d[0], d[1])) + float(rng.uniform(-0.15, 0.15))
    pitch = min(max(pitch, math.radians(-12.0)), math.radians(40.0))
    return Pose.look(tuple(base.position), yaw, pitch)


class SyntheticBatches:
    """Batches of (rgb uint8, depth float32 m, labels uint8), each (B, H, W[, 3])."""

    def __init__(self, seed: int, batch: int, size: tuple[int, int], hfov_deg: float,
                 balanced: float = 0.5, aimed: float = 0.4):
        self.rng = np.random.default_rng(seed)
        self.batch = batch
        self.balanced = balanced
        self.aimed = aimed
        self.renderer = Renderer.from_hfov(size[1], size[0], hfov_deg)

    def frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self.rng
        world = make_world(int(rng.integers(0, HELD_OUT_SEED)),
                           balanced=bool(rng.random() < self.balanced))
        if world.objects and rng.random() < self.aimed:
            pose = aimed_pose(world, rng)
        else:
            pose = path_pose(world, float(rng.uniform(0, LOOP_SECONDS)),
                             yaw_offset=float(rng.uniform(-0.5, 0.5)))
        f = self.renderer.render(world, pose)
        if rng.random() < 0.5:  # mirror: a valid frame of the mirrored room
            return f.rgb[:, ::-1], f.depth[:, ::-1], f.labels[:, ::-1]
        return f.rgb, f.depth, f.labels

    def __next__(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        frames = [self.frame() for _ in range(self.batch)]
        return tuple(np.stack([f[i] for f in frames]) for i in range(3))

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state
