"""The rectified image the model sees, and outputs sampled back onto the raw grid, against
the synthetic renderer: a raw lens frame rectified must look like the pinhole frame of the
same camera and pose, and the pinhole frame's exact depth sampled back must be the lens
frame's exact depth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.camera.rectify import rectify_images, unrectify_maps
from dpt_ros.synthetic import Renderer, make_world, path_pose

LENS = ("plumb_bob", (-0.3, 0.1, 0.001, -0.001, -0.015))
W, H = 320, 240


@pytest.fixture(scope="module")
def frames():
    world = make_world(1_000_002)
    pose = path_pose(world, 6.0)
    raw = Renderer.from_hfov(W, H, 70.0, *LENS).render(world, pose)
    pin = Renderer.from_hfov(W, H, 70.0).render(world, pose)
    return raw, pin


def test_the_rectified_raw_frame_is_the_pinhole_frame(frames):
    raw, pin = frames
    rect = rectify_images(torch.from_numpy(raw.rgb)[None], [raw.intrinsics])[0].numpy()
    diff = np.abs(rect.astype(int) - pin.rgb.astype(int)).max(-1)
    assert np.median(diff) <= 2 and np.mean(diff <= 8) > 0.93  # bilinear resampling only
    # measured: mean difference 1.2 grey levels; the raw frame itself is 13.9 off
    unrectified = np.abs(raw.rgb.astype(int) - pin.rgb.astype(int)).max(-1)
    assert unrectified.mean() > 5 * diff.mean()


def test_outputs_on_the_rectified_grid_come_back_on_the_raw_grid(frames):
    raw, pin = frames
    back = unrectify_maps(torch.from_numpy(pin.depth)[None, None], [raw.intrinsics],
                          math.nan)[0, 0].numpy()
    ok = np.isfinite(back)
    # NaN where a raw pixel's ray leaves the rectified (P = K) image: this barrel lens sees
    # ~24 % more than its pinhole part (measured coverage 0.76)
    assert 0.7 < ok.mean() < 0.9
    rel = np.abs(back[ok] - raw.depth[ok]) / raw.depth[ok]
    assert np.median(rel) < 2e-3 and np.mean(rel < 0.02) > 0.95  # edges blur under bilinear


def test_cameras_without_a_lens_pass_through():
    rgb = torch.randint(0, 256, (2, 8, 10, 3), dtype=torch.uint8)
    pinhole = Intrinsics.from_hfov(10, 8, 60.0)
    assert rectify_images(rgb, [pinhole, None]) is rgb
    maps = torch.rand(2, 1, 8, 10)
    assert unrectify_maps(maps, [pinhole, None], math.nan) is maps
