"""Camera poses: a pinhole camera gliding on a smooth closed loop inside the room.

The camera frame is the REP 103 optical frame (x right, y down, z forward); `rotation`
maps camera-frame vectors to world vectors, `position` is the optical centre in the world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dpt_ros.synthetic.world import World

LOOP_SECONDS = 40.0  # one lap of the path


@dataclass(frozen=True)
class Pose:
    """Camera-to-world transform: p_world = rotation @ p_cam + position."""

    position: np.ndarray  # (3,)
    rotation: np.ndarray  # (3, 3), columns = camera x, y, z axes in the world

    @classmethod
    def look(cls, position: tuple[float, float, float], yaw: float, pitch: float) -> Pose:
        """Heading `yaw` about world z (0 = +x), `pitch` > 0 looks down (radians)."""
        cp, sp = math.cos(pitch), math.sin(pitch)
        forward = np.array([math.cos(yaw) * cp, math.sin(yaw) * cp, -sp])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.cross(forward, right)
        return cls(np.asarray(position, dtype=np.float64), np.stack([right, down, forward], 1))

    def to_world(self, points_cam: np.ndarray) -> np.ndarray:
        """(N, 3) camera-frame points → world points."""
        return np.asarray(points_cam, dtype=np.float64) @ self.rotation.T + self.position

    def quaternion(self) -> tuple[float, float, float, float]:
        """Rotation as (x, y, z, w), for geometry_msgs / tf."""
        m = self.rotation
        w = math.sqrt(max(0.0, 1.0 + m[0, 0] + m[1, 1] + m[2, 2])) / 2.0
        x = math.copysign(math.sqrt(max(0.0, 1.0 + m[0, 0] - m[1, 1] - m[2, 2])) / 2.0,
                          m[2, 1] - m[1, 2])
        y = math.copysign(math.sqrt(max(0.0, 1.0 - m[0, 0] + m[1, 1] - m[2, 2])) / 2.0,
                          m[0, 2] - m[2, 0])
        z = math.copysign(math.sqrt(max(0.0, 1.0 - m[0, 0] - m[1, 1] + m[2, 2])) / 2.0,
                          m[1, 0] - m[0, 1])
        return x, y, z, w


def path_pose(world: World, t: float, yaw_offset: float = 0.0) -> Pose:
    """Pose at time `t` seconds: an ellipse around the room centre, head bobbing gently,
    looking ahead along the path and swaying left/right so walls, corners and objects all
    come into view."""
    r = world.room
    ax, ay = world.path_radii
    phase = 2.0 * math.pi * t / LOOP_SECONDS + (world.seed % 97) * 0.37
    x = r.size_x / 2 + ax * math.cos(phase)
    y = r.size_y / 2 + ay * math.sin(phase)
    z = 1.35 + 0.12 * math.sin(0.9 * phase * 3)
    heading = math.atan2(ay * math.cos(phase), -ax * math.sin(phase))
    yaw = heading + 0.6 * math.sin(2.0 * phase) + yaw_offset
    pitch = math.radians(6.0 + 9.0 * math.sin(1.7 * phase))
    return Pose.look((x, y, z), yaw, pitch)
