"""CameraInfo fields → camera model, as image_geometry reads them, and rescaled CameraInfos.

Messages here are plain namespaces with CameraInfo's field names: the reading must not need
ROS (the bag tool feeds it rosbags messages)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dpt_ros.core.camera.camera_info import camera_model, scaled_fields, uses_projection_matrix
from dpt_ros.core.camera.geometry import Intrinsics

K = [600.0, 0.0, 318.0, 0.0, 605.0, 243.0, 0.0, 0.0, 1.0]
P = [540.0, 0.0, 322.0, 0.0, 0.0, 548.0, 236.0, 0.0, 0.0, 0.0, 1.0, 0.0]
D = [-0.25, 0.07, 0.001, -0.002, 0.0]


def info(d=D, k=K, p=P, model="plumb_bob", width=640, height=480, binning=(0, 0),
         roi=(0, 0, 0, 0)) -> SimpleNamespace:
    x, y, w, h = roi
    return SimpleNamespace(
        width=width, height=height, distortion_model=model, d=list(d), k=list(k),
        r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], p=list(p), binning_x=binning[0],
        binning_y=binning[1],
        roi=SimpleNamespace(x_offset=x, y_offset=y, width=w, height=h, do_rectify=False),
    )


def test_raw_image_is_k_and_d() -> None:
    assert camera_model(info()) == Intrinsics(600.0, 605.0, 318.0, 243.0, 640, 480,
                                              "plumb_bob", tuple(D), (540.0, 548.0, 322.0, 236.0))


def test_all_zero_d_means_rectified_and_uses_p() -> None:
    """image_geometry / depth_image_proc project a rectified image with P."""
    cam = camera_model(info(d=[0.0] * 5))
    assert cam == Intrinsics(540.0, 548.0, 322.0, 236.0, 640, 480)
    assert not cam.is_distorted


def test_rectified_flag_ignores_d() -> None:
    assert camera_model(info(), rectified=True) == Intrinsics(540.0, 548.0, 322.0, 236.0, 640,
                                                              480)
    assert uses_projection_matrix(info(), True) and not uses_projection_matrix(info())


def test_zero_k_falls_back_to_p_and_zero_p_to_k() -> None:
    assert camera_model(info(k=[0.0] * 9)).fx == 540.0
    cam = camera_model(info(d=[0.0] * 5, p=[0.0] * 12))
    assert (cam.fx, cam.cx) == (600.0, 318.0)


def test_roi_then_binning_as_image_geometry() -> None:
    cam = camera_model(info(width=1280, height=960, binning=(2, 2), roi=(100, 60, 800, 600)))
    assert cam == Intrinsics(300.0, 302.5, 109.0, 91.5, 400, 300, "plumb_bob", tuple(D),
                             (270.0, 274.0, 111.0, 88.0))  # P's rectified camera, alike


def test_unknown_model_is_kept_but_unsupported() -> None:
    cam = camera_model(info(model="kannala_brandt8", d=[0.1] * 8))
    assert cam.is_distorted and not cam.supported


def _k(fx: float, fy: float, cx: float, cy: float) -> list[float]:
    return [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]


def _p(fx: float, fy: float, cx: float, cy: float) -> list[float]:
    return [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]


def _resampled(f: float, c: float, s: float) -> tuple[float, float]:
    """Focal length and principal point of an image resampled by s (pixel centres at
    integers: x' + 0.5 = (x + 0.5) s)."""
    return f * s, (c + 0.5) * s - 0.5


@pytest.mark.parametrize("size", [(320, 240), (1280, 960), (256, 192)])
def test_scaled_fields_describe_the_resampled_image(size: tuple[int, int]) -> None:
    """K and P of the rescaled CameraInfo: f * s and (c + 0.5) * s - 0.5 for every focal
    length and principal point; D, R and the model are untouched."""
    src = info()
    fields = scaled_fields(src, (640, 480), size)
    assert (fields["width"], fields["height"]) == size
    assert fields["d"] == D and fields["distortion_model"] == "plumb_bob"
    assert fields["r"] == src.r
    sx, sy = size[0] / 640, size[1] / 480
    # K = 600 / 605 / 318 / 243, P = 540 / 548 / 322 / 236 (fx, fy, cx, cy)
    for key, (fx, fy, cx, cy), layout in (("k", (600.0, 605.0, 318.0, 243.0), _k),
                                          ("p", (540.0, 548.0, 322.0, 236.0), _p)):
        (fx2, cx2), (fy2, cy2) = _resampled(fx, cx, sx), _resampled(fy, cy, sy)
        assert fields[key] == pytest.approx(layout(fx2, fy2, cx2, cy2), abs=1e-9), key
    # and the camera model read back from them is that camera
    scaled = SimpleNamespace(**{**vars(info()), **fields})
    got = camera_model(scaled, rectified=True)
    assert (got.fx, got.fy) == pytest.approx((540.0 * sx, 548.0 * sy))
    assert (got.cx, got.cy) == pytest.approx(((322.0 + 0.5) * sx - 0.5, (236.0 + 0.5) * sy - 0.5))
    assert (got.width, got.height) == size


def test_scaled_fields_fold_roi_and_binning_in() -> None:
    """ROI (100, 60) then binning 2 (image_geometry: K 300 / 302.5 / 109 / 91.5, P 270 / 274 /
    111 / 88 on the 400 x 300 binned image), then resampled to 200 x 150 (s = 0.5)."""
    src = info(width=1280, height=960, binning=(2, 2), roi=(100, 60, 800, 600))
    fields = scaled_fields(src, (400, 300), (200, 150))
    assert (fields["width"], fields["height"]) == (200, 150)
    s = 0.5
    assert fields["k"] == pytest.approx(_k(300.0 * s, 302.5 * s, (109.0 + 0.5) * s - 0.5,
                                           (91.5 + 0.5) * s - 0.5), abs=1e-9)
    assert fields["p"] == pytest.approx(_p(270.0 * s, 274.0 * s, (111.0 + 0.5) * s - 0.5,
                                           (88.0 + 0.5) * s - 0.5), abs=1e-9)
