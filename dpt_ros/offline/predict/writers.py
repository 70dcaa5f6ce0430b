"""Files written by `dpt-ros predict`: 16-bit depth PNGs, .npy arrays, colour PNGs.

Each file is written under a temporary name and renamed, so an interrupted run leaves only
complete files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

MM_PER_M = 1000.0
MAX_MM = np.iinfo(np.uint16).max


def depth_to_mm(depth: np.ndarray) -> np.ndarray:
    """Metres (NaN invalid) -> uint16 millimetres, REP 118 style: 0 = invalid.

    Depths that do not fit (<= 0, > 65.535 m, NaN/inf) become 0 rather than a wrong value.
    """
    mm = np.round(np.asarray(depth, dtype=np.float64) * MM_PER_M)
    valid = np.isfinite(mm) & (mm > 0) & (mm <= MAX_MM)
    return np.where(valid, mm, 0).astype(np.uint16)


def mm_to_depth(mm: np.ndarray) -> np.ndarray:
    """uint16 millimetres -> float32 metres with NaN where 0 (the inverse of depth_to_mm)."""
    metres = np.asarray(mm, dtype=np.float32) / np.float32(MM_PER_M)
    return np.where(mm > 0, metres, np.float32(np.nan)).astype(np.float32)


def _replace_into(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_png(path: Path, array: np.ndarray) -> None:
    """uint8 (H, W) / (H, W, 3) RGB, or uint16 (H, W) grayscale (PIL mode I;16), as PNG."""
    image = Image.fromarray(np.ascontiguousarray(array))
    _replace_into(path, lambda tmp: image.save(tmp, format="PNG"))


def write_bgr_png(path: Path, bgr: np.ndarray) -> None:
    """The pipeline's BGR colour images (ROS bgr8 order) as an ordinary RGB PNG."""
    write_png(path, bgr[..., ::-1])


def write_npy(path: Path, array: np.ndarray) -> None:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    _replace_into(path, save)
