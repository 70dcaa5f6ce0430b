"""A procedural indoor world with exact metric depth and class ids (no ROS imports).

Class ids: 0 floor, 1 wall, 2 ceiling, 3 box, 4 sphere, 5 cylinder. Depth is Z-depth along
the optical axis in metres (REP 118).
"""

from dpt_ros.synthetic.camera_path import Pose, path_pose
from dpt_ros.synthetic.classes import CLASS_NAMES, NUM_CLASSES
from dpt_ros.synthetic.render import Renderer, SyntheticFrame, render_path_frame
from dpt_ros.synthetic.world import (
    HELD_OUT_SEED,
    Box,
    Cylinder,
    Room,
    Sphere,
    World,
    make_world,
)

__all__ = [
    "CLASS_NAMES",
    "HELD_OUT_SEED",
    "NUM_CLASSES",
    "Box",
    "Cylinder",
    "Pose",
    "Renderer",
    "Room",
    "Sphere",
    "SyntheticFrame",
    "World",
    "make_world",
    "path_pose",
    "render_path_frame",
]
