"""sensor_msgs/CameraInfo fields → the camera model of the image they describe, as
image_geometry's PinholeCameraModel reads them; and the CameraInfo of a rescaled image.

No ROS import: `info` is anything with CameraInfo's field names (an rclpy message, a rosbags
message from a bag), so the node and the bag tool share this one reading.

- A raw image is described by K and D (`distortion_model`); a rectified one by P. An image is
  taken as rectified when all of D is zero (P then describes it, as image_geometry and
  depth_image_proc project with P), or when the caller says so (`rectified=True`, the node's
  `camera.rectified`). K all zero with P set (some drivers) also means P.
- ROI and binning are applied as image_geometry does: the principal point moves by the ROI
  offset, then focal lengths and principal point are divided by the binning, so the model
  describes the published (cropped, binned) image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dpt_ros.core.camera.geometry import Intrinsics, scale_projection, validate_intrinsics
from dpt_ros.core.errors import BadInput


def _binning(info: Any) -> tuple[int, int]:
    return max(1, int(info.binning_x)), max(1, int(info.binning_y))


def _image_size(info: Any) -> tuple[int, int]:
    """(width, height) of the image this camera_info describes (ROI, then binning)."""
    width, height = int(info.width), int(info.height)
    roi = info.roi
    if roi.width > 0 and roi.height > 0:
        width, height = int(roi.width), int(roi.height)
    bx, by = _binning(info)
    return width // bx, height // by


def _adjusted(fx: float, fy: float, cx: float, cy: float, info: Any
              ) -> tuple[float, float, float, float]:
    roi = info.roi
    if roi.width > 0 and roi.height > 0:
        cx, cy = cx - int(roi.x_offset), cy - int(roi.y_offset)
    bx, by = _binning(info)
    return fx / bx, fy / by, cx / bx, cy / by


def uses_projection_matrix(info: Any, rectified: bool = False) -> bool:
    """Whether the image is described by P (rectified) rather than K + D (raw)."""
    k, p = info.k, info.p
    if float(k[0]) == 0.0 and float(k[4]) == 0.0:
        return float(p[0]) != 0.0
    if float(p[0]) == 0.0:
        return False
    return rectified or not any(float(c) != 0.0 for c in info.d)


def camera_model(info: Any, rectified: bool = False) -> Intrinsics:
    """The camera model (projection + lens) of the image `info` comes with."""
    width, height = _image_size(info)
    if uses_projection_matrix(info, rectified):
        p = info.p
        fx, fy, cx, cy = _adjusted(float(p[0]), float(p[5]), float(p[2]), float(p[6]), info)
        return Intrinsics(fx, fy, cx, cy, width, height)
    k = info.k
    fx, fy, cx, cy = _adjusted(float(k[0]), float(k[4]), float(k[2]), float(k[5]), info)
    d = tuple(float(c) for c in info.d)
    model = str(info.distortion_model) if any(c != 0.0 for c in d) else ""
    rect: tuple[float, ...] = ()
    p = info.p
    if model and float(p[0]) != 0.0 and float(p[5]) != 0.0:  # the rectified camera P defines
        rect = _adjusted(float(p[0]), float(p[5]), float(p[2]), float(p[6]), info)
    return Intrinsics(fx, fy, cx, cy, width, height, model, d if model else (), rect)


def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def stamp_text(stamp: int) -> str:
    """Nanoseconds as ROS writes a stamp: sec.nanosec."""
    return f"{stamp // 1_000_000_000}.{stamp % 1_000_000_000:09d}"


def camera_for_image(info: Any, width: int, height: int, rectified: bool = False,
                     topic: str = "the image") -> Intrinsics:
    """The camera model of a `width` x `height` image from its own camera_info, checked;
    BadInput('camera_info') that says what to fix when it describes another image."""
    intr = camera_model(info, rectified)
    if (intr.width, intr.height) not in ((width, height), (0, 0)):
        raise BadInput(
            "camera_info",
            f"the camera_info of {topic} (stamp {stamp_text(stamp_ns(info.header))}) "
            f"describes a {intr.width}x{intr.height} image but the image is {width}x{height}: "
            "the driver must publish the calibration of the resolution it streams; images "
            "of this size are skipped until a matching camera_info arrives",
        )
    return validate_intrinsics(intr, width, height)


def scaled_fields(info: Any, source: tuple[int, int], size: tuple[int, int]
                  ) -> dict[str, Any]:
    """CameraInfo fields for the image `info` describes (`source` = its width, height),
    resampled to `size` (width, height).

    K and P are scaled with the pixel-centre convention of `Intrinsics.scaled`; D, R and the
    distortion model are kept (they act on normalised coordinates). ROI and binning are
    folded into K and P first, so the result describes the new image as it is (no ROI, no
    binning).
    """
    sx, sy = size[0] / source[0], size[1] / source[1]
    bx, by = _binning(info)
    mats = []
    for values, cols in ((info.k, 3), (info.p, 4)):
        mat = np.array(values, dtype=np.float64).reshape(3, cols)
        fx, fy, cx, cy = _adjusted(mat[0, 0], mat[1, 1], mat[0, 2], mat[1, 2], info)
        mat[0, 0], mat[1, 1], mat[0, 2], mat[1, 2] = scale_projection(fx, fy, cx, cy, sx, sy)
        mat[0, 1] *= sx / bx  # skew follows the column scale
        if cols == 4:  # P's translation column (stereo baseline) is in pixels too
            mat[0, 3] *= sx / bx
            mat[1, 3] *= sy / by
        mats.append(mat.reshape(-1).tolist())
    return {
        "width": int(size[0]),
        "height": int(size[1]),
        "distortion_model": str(info.distortion_model),
        "d": [float(c) for c in info.d],
        "k": mats[0],
        "r": [float(c) for c in info.r],
        "p": mats[1],
    }
