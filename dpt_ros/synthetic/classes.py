"""Class ids of the synthetic world (the segmentation model's labels)."""

from __future__ import annotations

FLOOR, WALL, CEILING, BOX, SPHERE, CYLINDER = range(6)
CLASS_NAMES: dict[int, str] = {
    FLOOR: "floor",
    WALL: "wall",
    CEILING: "ceiling",
    BOX: "box",
    SPHERE: "sphere",
    CYLINDER: "cylinder",
}
NUM_CLASSES = len(CLASS_NAMES)
