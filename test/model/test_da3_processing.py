"""DA3 preprocessing against the official InputProcessor (cv2 resizes, process_res 504,
upper_bound_resize, ImageNet normalisation), and our cv2 resizes against cv2 itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _da3_oracle import input_processor

from dpt_ros.model import DepthAnything3ImageProcessor
from dpt_ros.model.depth_anything3.resize import resize_area, resize_cubic

# camera sizes: shrink only (area: exact), and ones where a side grows (cubic)
SHRINK = [(480, 640), (720, 1280), (1080, 1920), (1000, 700), (504, 380), (756, 1008)]
GROW = [(240, 320), (120, 160), (377, 504)]
# cv2's cubic sums in float32 in its own order: a value within float32 rounding of a .5
# tie may come out one level apart from ours (measured 0.04% of values at most)
CUBIC_MISMATCH = 1e-3


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    return np.where(rng.random((h, w, 1)) < 0.5, noise, ramp.astype(np.uint8))


@pytest.mark.parametrize("size", SHRINK + GROW)
def test_pixel_values_match_official(size):
    official = input_processor()
    img = _image(*size)
    ref = official([img], num_workers=1)[0]  # (1 view, 3, h, w)
    ours = DepthAnything3ImageProcessor().preprocess(img)
    assert tuple(ours.shape) == tuple(ref.shape), "network input size differs"
    diff = (ours - ref).abs()
    if size in SHRINK:
        assert float(diff.max()) == 0.0
    else:  # one grey level is 1 / 255 / std <= 0.0176 after normalisation
        assert float(diff.max()) <= 0.018
        assert float((diff > 0).float().mean()) <= CUBIC_MISMATCH


@pytest.mark.parametrize(("size", "out"), [((480, 640), (378, 504)), ((284, 504), (280, 504)),
                                           ((756, 1008), (378, 504)), ((3000, 2000), (504, 336))])
def test_area_equals_cv2(size, out):
    input_processor()
    import cv2

    img = _image(*size, seed=1)
    ref = cv2.resize(img, out[::-1], interpolation=cv2.INTER_AREA)
    ours = resize_area(torch.from_numpy(img).permute(2, 0, 1)[None], *out)
    assert np.array_equal(ours[0].permute(1, 2, 0).numpy(), ref)


@pytest.mark.parametrize(("size", "out"), [((240, 320), (378, 504)), ((377, 504), (378, 504))])
def test_cubic_close_to_cv2(size, out):
    input_processor()
    import cv2

    img = _image(*size, seed=2)
    ref = cv2.resize(img, out[::-1], interpolation=cv2.INTER_CUBIC).astype(int)
    ours = resize_cubic(torch.from_numpy(img).permute(2, 0, 1)[None], *out)[0]
    diff = np.abs(ours.permute(1, 2, 0).numpy().astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() <= CUBIC_MISMATCH


def test_sizes_and_overrides():
    p = DepthAnything3ImageProcessor()
    assert p.output_size(480, 640) == (378, 504)
    assert p.output_size(720, 1280) == (280, 504)  # 283.5 -> 284 -> nearest multiple 280
    fixed = DepthAnything3ImageProcessor.from_dict({**p.to_dict(),
                                                    "size": {"height": 280, "width": 364}})
    assert fixed.output_size(480, 640) == (280, 364)
    assert tuple(fixed(images=_image(480, 640), return_tensors="pt").pixel_values.shape) == (
        1, 3, 280, 364)
    with pytest.raises(ValueError):
        DepthAnything3ImageProcessor(size={"height": 100, "width": 140})
