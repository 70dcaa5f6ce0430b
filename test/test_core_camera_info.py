"""CameraInfo fields → camera model, as image_geometry reads them, and rescaled CameraInfos.

Messages here are plain namespaces with CameraInfo's field names: the reading must not need
ROS (the bag tool feeds it rosbags messages)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dpt_ros.core.camera_info import camera_model, scaled_fields, uses_projection_matrix
from dpt_ros.core.geometry import Intrinsics

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


@pytest.mark.parametrize("size", [(320, 240), (1280, 960), (256, 192)])
def test_scaled_fields_describe_the_resampled_image(size: tuple[int, int]) -> None:
    """K and P of the rescaled CameraInfo equal Intrinsics.scaled of the original camera;
    D, R and the model are untouched."""
    src = info()
    fields = scaled_fields(src, (640, 480), size)
    assert (fields["width"], fields["height"]) == size
    assert fields["d"] == D and fields["distortion_model"] == "plumb_bob"
    for key, flag in (("k", False), ("p", True)):
        expect = camera_model(src, rectified=flag).scaled(*size)
        scaled = SimpleNamespace(**{**vars(info()), **fields})
        got = camera_model(scaled, rectified=flag)
        assert got.fx == pytest.approx(expect.fx) and got.cy == pytest.approx(expect.cy), key
        assert (got.width, got.height) == size


def test_scaled_fields_fold_roi_and_binning_in() -> None:
    src = info(width=1280, height=960, binning=(2, 2), roi=(100, 60, 800, 600))
    fields = scaled_fields(src, (400, 300), (200, 150))
    k = np.reshape(fields["k"], (3, 3))
    expect = camera_model(src).scaled(200, 150)
    assert k[0, 0] == pytest.approx(expect.fx) and k[1, 2] == pytest.approx(expect.cy)
