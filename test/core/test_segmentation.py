"""Palettes, label colouring and overlays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpt_ros.core.render.segmentation import colorize_labels, label_dtype, overlay, palette

# First classes of the ADE20K palette (RGB) as published with the benchmark:
# wall, building, sky, floor, tree.
ADE20K_FIRST = [(120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3)]


def test_ade20k_palette_for_150_classes() -> None:
    colors = palette(150)
    assert colors.shape == (150, 3) and colors.dtype == torch.uint8
    bgr = [tuple(c) for c in colors[:5].tolist()]
    assert bgr == [rgb[::-1] for rgb in ADE20K_FIRST]
    assert tuple(colors[149].tolist()) == (255, 0, 92)  # flag: RGB (92, 0, 255)


@pytest.mark.parametrize("n", [1, 2, 19, 21, 151, 1000, 65536])
def test_generated_palettes_distinct_stable_not_black(n: int) -> None:
    colors = palette(n)
    assert colors.shape == (n, 3) and colors.dtype == torch.uint8
    as_int = colors.to(torch.int64)
    keys = (as_int[:, 0] << 16) | (as_int[:, 1] << 8) | as_int[:, 2]
    assert keys.unique().numel() == n
    assert int(keys.min()) > 0
    torch.testing.assert_close(palette(n), colors)
    if n >= 21:  # a prefix does not depend on how many classes follow
        torch.testing.assert_close(palette(21), colors[:21])


def test_palette_bounds() -> None:
    with pytest.raises(ValueError):
        palette(0)
    with pytest.raises(ValueError):
        palette(65537)


def test_colorize_labels_and_invalid_labels_black() -> None:
    colors = palette(4)
    labels = torch.tensor([[0, 1, 2, 3], [3, -1, 4, 255]])
    out = colorize_labels(labels, colors)
    assert out.shape == (2, 4, 3) and out.dtype == torch.uint8
    np.testing.assert_array_equal(out[0].numpy(), colors.numpy())
    np.testing.assert_array_equal(out[1, 0].numpy(), colors[3].numpy())
    assert int(out[1, 1:].sum()) == 0


def test_colorize_labels_accepts_narrow_dtypes() -> None:
    colors = palette(150)
    labels = torch.randint(0, 150, (6, 8), dtype=torch.int64)
    expected = colors.numpy()[labels.numpy()]
    for dtype in (torch.uint8, torch.int16, torch.int32, torch.int64):
        np.testing.assert_array_equal(colorize_labels(labels.to(dtype), colors).numpy(), expected)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.8, 0.337, 1.0])
def test_overlay_is_alpha_blend(alpha: float) -> None:
    gen = torch.Generator().manual_seed(3)
    image = torch.randint(0, 256, (9, 11, 3), dtype=torch.uint8, generator=gen)
    color = torch.randint(0, 256, (9, 11, 3), dtype=torch.uint8, generator=gen)
    out = overlay(image, color, alpha)
    assert out.dtype == torch.uint8 and out.shape == image.shape
    expected = (1.0 - alpha) * image.double() + alpha * color.double()
    # alpha is applied in 1/128 steps: at most 255/256 off, plus rounding
    assert float((out.double() - expected).abs().max()) <= 1.5
    if alpha in (0.0, 1.0):
        torch.testing.assert_close(out, color if alpha == 1.0 else image)


def test_overlay_shape_mismatch() -> None:
    image = torch.zeros(4, 4, 3, dtype=torch.uint8)
    with pytest.raises(ValueError):
        overlay(image, torch.zeros(4, 5, 3, dtype=torch.uint8), 0.5)


def test_label_dtype() -> None:
    assert label_dtype(1) is np.uint8
    assert label_dtype(256) is np.uint8
    assert label_dtype(257) is np.uint16
    assert label_dtype(65536) is np.uint16
    with pytest.raises(ValueError):
        label_dtype(65537)
