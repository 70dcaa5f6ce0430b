"""PointCloud2 packing: the bytes are parsed back with a numpy structured dtype."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpt_ros.core.pointcloud import pack as pointcloud
from dpt_ros.core.pointcloud.pack import (
    POINTFIELD_FLOAT32,
    POINTFIELD_UINT32,
    pack_cloud,
)

H, W = 12, 16
NUMPY_TYPES = {POINTFIELD_FLOAT32: np.float32, POINTFIELD_UINT32: np.uint32}


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    xyz = (torch.rand((H, W, 3), generator=gen) - 0.5) * 8.0
    xyz[..., 2] = xyz[..., 2].abs() + 0.1
    xyz[2, 3] = math.nan
    xyz[4, 5, 0] = math.inf  # one bad coordinate is enough to make a point invalid
    xyz[6, 6, 1] = -math.inf
    rgb = torch.randint(0, 256, (H, W, 3), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 70000, (H, W), generator=gen)  # beyond uint16 on purpose
    return xyz, rgb, labels


def _parse(cloud) -> np.ndarray:
    """Structured array (height, width) from the packed bytes and field table."""
    dtype = np.dtype({
        "names": [name for name, _, _ in cloud.fields],
        "formats": [NUMPY_TYPES[datatype] for _, _, datatype in cloud.fields],
        "offsets": [offset for _, offset, _ in cloud.fields],
        "itemsize": cloud.point_step,
    })
    assert cloud.data.dtype == np.uint8 and cloud.data.ndim == 1
    assert cloud.data.size == cloud.row_step * cloud.height
    return cloud.data.view(dtype).reshape(cloud.height, cloud.width)


def _unpack_rgb(rgb_float: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(rgb_float).view(np.uint32)
    assert int((bits >> 24).max(initial=0)) == 0
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=-1).astype(np.uint8)


def _valid(xyz: np.ndarray, lo: float, hi: float) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        dist = np.sqrt((xyz.astype(np.float64) ** 2).sum(-1))
        ok = np.isfinite(xyz).all(-1) & (dist >= lo)
        return ok & (dist <= hi) if hi > 0 else ok


@pytest.fixture(params=[None, 5 * W * 20, 1], ids=["one-block", "5-row-blocks", "1-row-blocks"])
def blocks(request, monkeypatch) -> None:
    """Default CPU block size, 5-row blocks at full width (last one partial), 1-row blocks."""
    if request.param is not None:
        monkeypatch.setattr(pointcloud, "_CPU_BLOCK_BYTES", request.param)


@pytest.mark.usefixtures("blocks")
def test_organised_layout_and_values() -> None:
    xyz, rgb, labels = _inputs()
    cloud = pack_cloud(xyz, rgb, labels)
    assert cloud.fields == [
        ("x", 0, POINTFIELD_FLOAT32), ("y", 4, POINTFIELD_FLOAT32), ("z", 8, POINTFIELD_FLOAT32),
        ("rgb", 12, POINTFIELD_FLOAT32), ("label", 16, POINTFIELD_UINT32),
    ]
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (H, W, 20, 20 * W)
    assert cloud.is_dense is False
    parsed = _parse(cloud)
    points = np.stack([parsed["x"], parsed["y"], parsed["z"]], -1)
    expected = xyz.numpy()
    valid = _valid(expected, 0.0, 0.0)
    assert int((~valid).sum()) == 3
    np.testing.assert_array_equal(points[valid], expected[valid])
    assert np.isnan(points[~valid]).all()
    np.testing.assert_array_equal(_unpack_rgb(parsed["rgb"]), rgb.numpy())
    np.testing.assert_array_equal(parsed["label"], labels.numpy().astype(np.uint32))


@pytest.mark.parametrize(
    ("with_rgb", "with_label", "names", "step"),
    [
        (False, False, ["x", "y", "z"], 12),
        (True, False, ["x", "y", "z", "rgb"], 16),
        (False, True, ["x", "y", "z", "label"], 16),
    ],
)
def test_optional_fields(with_rgb: bool, with_label: bool, names: list[str], step: int) -> None:
    xyz, rgb, labels = _inputs()
    cloud = pack_cloud(xyz, rgb if with_rgb else None, labels if with_label else None)
    assert [name for name, _, _ in cloud.fields] == names
    assert [offset for _, offset, _ in cloud.fields] == list(range(0, step, 4))
    assert cloud.point_step == step and cloud.row_step == step * W
    parsed = _parse(cloud)
    if with_label:
        np.testing.assert_array_equal(parsed["label"], labels.numpy().astype(np.uint32))
    if with_rgb:
        np.testing.assert_array_equal(_unpack_rgb(parsed["rgb"]), rgb.numpy())


def test_range_is_euclidean_and_organised_keeps_shape() -> None:
    xyz = torch.zeros(1, 4, 3)
    xyz[0, :, 2] = 1.0
    xyz[0, 1, 0] = 3.0  # z = 1 but range sqrt(10) ≈ 3.16
    xyz[0, 2, 2] = 0.2  # too close
    xyz[0, 3, :] = torch.tensor([2.0, 2.0, 1.0])  # range exactly 3
    parsed = _parse(pack_cloud(xyz, min_range=0.5, max_range=3.0))
    assert parsed.shape == (1, 4)
    kept = ~np.isnan(parsed["x"])
    assert kept[0].tolist() == [True, False, False, True]
    unlimited = _parse(pack_cloud(xyz, min_range=0.0, max_range=0.0))
    assert not np.isnan(unlimited["z"]).any()


@pytest.mark.usefixtures("blocks")
@pytest.mark.parametrize(("stride", "lo", "hi"), [(2, 0.0, 0.0), (3, 1.0, 3.5), (5, 0.0, 2.5)])
def test_strided_cloud_drops_invalid(stride: int, lo: float, hi: float) -> None:
    xyz, rgb, labels = _inputs()
    cloud = pack_cloud(xyz, rgb, labels, stride=stride, min_range=lo, max_range=hi)
    sub = xyz.numpy()[::stride, ::stride]
    keep = _valid(sub, lo, hi)
    assert cloud.height == 1 and cloud.width == int(keep.sum()) > 0
    assert cloud.is_dense is True and cloud.row_step == cloud.point_step * cloud.width
    parsed = _parse(cloud)[0]
    np.testing.assert_array_equal(np.stack([parsed["x"], parsed["y"], parsed["z"]], -1), sub[keep])
    np.testing.assert_array_equal(_unpack_rgb(parsed["rgb"]), rgb.numpy()[::stride, ::stride][keep])
    np.testing.assert_array_equal(parsed["label"], labels.numpy()[::stride, ::stride][keep])


def test_strided_cloud_can_be_empty() -> None:
    xyz = torch.full((4, 4, 3), math.nan)
    cloud = pack_cloud(xyz, stride=2)
    assert (cloud.height, cloud.width, cloud.row_step, cloud.data.size) == (1, 0, 0, 0)


def test_input_shape_checks() -> None:
    xyz, rgb, labels = _inputs()
    with pytest.raises(ValueError):
        pack_cloud(xyz[..., :2])
    with pytest.raises(ValueError):
        pack_cloud(xyz, rgb[:-1])
    with pytest.raises(ValueError):
        pack_cloud(xyz, labels=labels[:, :-1])
    with pytest.raises(ValueError):
        pack_cloud(xyz, stride=0)


def test_non_contiguous_inputs() -> None:
    xyz, rgb, labels = _inputs()
    xyz_t = xyz.permute(1, 0, 2).contiguous().permute(1, 0, 2)  # same values, other strides
    rgb_t = rgb.permute(2, 0, 1).contiguous().permute(1, 2, 0)
    a, b = pack_cloud(xyz, rgb, labels), pack_cloud(xyz_t, rgb_t, labels.t().contiguous().t())
    np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    xyz, rgb, labels = _inputs()
    for stride in (1, 2):
        gpu = pack_cloud(xyz.cuda(), rgb.cuda(), labels.cuda(), stride=stride, max_range=4.0)
        cpu = pack_cloud(xyz, rgb, labels, stride=stride, max_range=4.0)
        assert isinstance(gpu.data, np.ndarray)
        np.testing.assert_array_equal(gpu.data, cpu.data)
