"""Independent RGB references for the sensor encodings (see core/test_color_convert.py for
what each one is and the tolerance it is held to): written from the standards, not from the
package's code."""

from __future__ import annotations

import numpy as np


def yuv_reference(rows: np.ndarray, encoding: str) -> np.ndarray:
    """Per pixel: Y at its own byte, U/V at its macropixel's; BT.601 from Kr, Kb."""
    height, width = rows.shape[0], rows.shape[1] // 2
    x = np.arange(width)
    base = 4 * (x // 2)
    if encoding == "yuv422":  # U0 Y0 V0 Y1
        y_at, u_at, v_at = base + 1 + 2 * (x % 2), base, base + 2
    else:  # Y0 U0 Y1 V0
        y_at, u_at, v_at = base + 2 * (x % 2), base + 1, base + 3
    y, u, v = (rows[:, i].astype(np.float64) for i in (y_at, u_at, v_at))
    kr, kb = 0.299, 0.114
    kg = 1.0 - kr - kb
    luma = np.maximum(y - 16.0, 0.0) * 255.0 / 219.0
    cb, cr = (u - 128.0) * 255.0 / 224.0, (v - 128.0) * 255.0 / 224.0
    r = luma + 2 * (1 - kr) * cr
    g = luma - 2 * (1 - kb) * kb / kg * cb - 2 * (1 - kr) * kr / kg * cr
    b = luma + 2 * (1 - kb) * cb
    rgb = np.stack([r, g, b], axis=-1)
    assert rgb.shape == (height, width, 3)
    return np.clip(np.floor(rgb + 0.5), 0, 255).astype(np.uint8)


def bayer_reference(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """Normalised-convolution bilinear demosaic of the interior, border = nearest interior."""
    height, width = mosaic.shape
    yy, xx = np.mgrid[0:height, 0:width]
    site = np.array(list(pattern))[(yy % 2) * 2 + (xx % 2)]  # colour letter of each pixel
    kernels = {
        "r": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]),
        "g": np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]),
        "b": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]),
    }
    planes = []
    for colour in "rgb":
        mask = (site == colour).astype(np.int64)
        samples = mosaic.astype(np.int64) * mask
        num = np.zeros((height - 2, width - 2), np.int64)
        den = np.zeros_like(num)
        for dy in range(3):
            for dx in range(3):
                k = kernels[colour][dy, dx]
                num += k * samples[dy : dy + height - 2, dx : dx + width - 2]
                den += k * mask[dy : dy + height - 2, dx : dx + width - 2]
        planes.append((2 * num + den) // (2 * den))  # round half up, exact
    inner = np.stack(planes, axis=-1).astype(np.uint8)
    return np.pad(inner, ((1, 1), (1, 1), (0, 0)), mode="edge")


def packed(quads: np.ndarray, encoding: str) -> np.ndarray:
    """Sensor rows of (U, Y0, V, Y1) macropixels: UYVY as is, YUYV as Y0 U Y1 V."""
    order = [0, 1, 2, 3] if encoding == "yuv422" else [1, 0, 3, 2]
    return np.ascontiguousarray(quads[..., order]).reshape(quads.shape[0], -1)
