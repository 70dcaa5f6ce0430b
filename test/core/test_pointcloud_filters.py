"""Costmap filters of the cloud (`core.pointcloud.filters`, `pack_cloud(keep=, voxel_size=)`).

The voxel grid is Open3D's, so Open3D 0.20 (`voxel_down_sample`, and
`voxel_down_sample_and_trace` for which points went into which voxel) is the oracle, on a
frame of the synthetic world (exact depth and classes). The flying-pixel and class filters
are checked against their definitions, written independently in numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpt_ros.core.camera.geometry import backproject
from dpt_ros.core.pointcloud import filters as cloud_filters
from dpt_ros.core.pointcloud.filters import (
    class_lut,
    edge_keep,
    keep_mask,
    resolve_classes,
    voxel_downsample,
)
from dpt_ros.core.pointcloud.pack import POINTFIELD_FLOAT32, POINTFIELD_UINT32, pack_cloud
from dpt_ros.synthetic.classes import BOX, CLASS_NAMES, FLOOR, WALL
from dpt_ros.synthetic.render import render_path_frame

NUMPY_TYPES = {POINTFIELD_FLOAT32: np.float32, POINTFIELD_UINT32: np.uint32}


@pytest.fixture(scope="module")
def scene():
    """A 320x240 frame of held-out world 7: floor, walls, boxes, spheres (known geometry)."""
    return render_path_frame(seed=7, index=3, width=320, height=240)


def _cloud(scene, **kwargs):
    depth = torch.from_numpy(scene.depth)
    xyz = backproject(depth, scene.intrinsics)
    rgb = torch.from_numpy(scene.rgb)
    labels = torch.from_numpy(scene.labels.astype(np.int64))
    return xyz, rgb, labels, pack_cloud(xyz, rgb, labels, **kwargs)


def _parse(cloud) -> np.ndarray:
    dtype = np.dtype({
        "names": [name for name, _, _ in cloud.fields],
        "formats": [NUMPY_TYPES[datatype] for _, _, datatype in cloud.fields],
        "offsets": [offset for _, offset, _ in cloud.fields],
        "itemsize": cloud.point_step,
    })
    return cloud.data.view(dtype).reshape(cloud.height, cloud.width)


def _rgb(word: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(word).view(np.uint32)
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], -1).astype(np.int64)


# ---------------------------------------------------------------- flying pixels
def _edge_keep_reference(z: np.ndarray, t: float) -> np.ndarray:
    """The definition, neighbour by neighbour with padded copies (NaN = no depth)."""
    padded = np.pad(z.astype(np.float64), 1, constant_values=np.nan)
    drop = np.zeros(z.shape, bool)
    for dv, du in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        q = padded[1 + dv:1 + dv + z.shape[0], 1 + du:1 + du + z.shape[1]]
        with np.errstate(invalid="ignore"):
            drop |= np.abs(z - q) > t * z
    return ~drop


def test_edge_keep_matches_the_definition_on_random_depth():
    gen = np.random.default_rng(3)
    z = gen.uniform(0.5, 5.0, (37, 53)).astype(np.float32)
    z[gen.random(z.shape) < 0.1] = np.nan
    for t in (0.01, 0.1, 0.5):
        ours = edge_keep(torch.from_numpy(z), t).numpy()
        np.testing.assert_array_equal(ours, _edge_keep_reference(z, t))


def test_edge_keep_step_edge_and_missing_neighbours():
    z = np.full((4, 6), 2.0, np.float32)
    z[:, 3:] = 4.0  # a step from 2 m to 4 m between columns 2 and 3
    z[0, 0] = np.nan
    keep = edge_keep(torch.from_numpy(z), 0.1).numpy()
    assert not keep[:, 2].any() and not keep[:, 3].any()  # both sides of the step go
    assert keep[:, [0, 1, 4, 5]][1:].all()
    assert keep[0, 1]  # a neighbour without depth removes nothing
    # a relative threshold: the 2 m side sees a jump of 100 %, the 4 m side 50 %
    keep = edge_keep(torch.from_numpy(z), 0.75).numpy()
    assert not keep[1:, 2].any() and keep[1:, 3].all()


def test_scene_cloud_has_no_point_at_an_edge_above_the_threshold(scene):
    t = 0.05
    _, _, _, cloud = _cloud(scene, keep=keep_mask(torch.from_numpy(scene.depth), t))
    pts = _parse(cloud)
    z = scene.depth.astype(np.float64)
    kept = np.isfinite(pts["z"])
    expected = _edge_keep_reference(scene.depth, t) & np.isfinite(z)
    np.testing.assert_array_equal(kept, expected)
    assert 0 < (~expected & np.isfinite(z)).sum() < 0.2 * z.size  # the scene has edges
    # every kept point: all neighbours with depth within t * z_p
    padded = np.pad(np.where(kept, z, np.nan), 1, constant_values=np.nan)
    zz = np.pad(z, 1, constant_values=np.nan)
    for dv, du in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        q = zz[1 + dv:1 + dv + z.shape[0], 1 + du:1 + du + z.shape[1]]
        with np.errstate(invalid="ignore"):
            assert not (np.abs(padded[1:-1, 1:-1] - q) > t * z).any()


# ---------------------------------------------------------------- classes
def test_resolve_classes_names_ids_and_unknown():
    labels = CLASS_NAMES
    assert resolve_classes(["floor", "3", "Wall"], labels) == (FLOOR, BOX, WALL)
    assert resolve_classes(["floor", "0"], labels) == (FLOOR,)
    with pytest.raises(ValueError) as err:
        resolve_classes(["flor"], labels, "pointcloud.exclude_classes")
    message = str(err.value)
    assert "pointcloud.exclude_classes" in message and "'flor'" in message
    assert "0 floor" in message and "5 cylinder" in message
    with pytest.raises(ValueError, match="unknown class '17'"):
        resolve_classes(["17"], labels)


def test_class_lut_include_exclude():
    assert class_lut((), (), 6) is None
    assert class_lut((3, 4), (), 6).tolist() == [False, False, False, True, True, False]
    assert class_lut((), (0,), 6).tolist() == [False, True, True, True, True, True]
    assert class_lut((3, 4), (4,), 6).tolist() == [False, False, False, True, False, False]


def test_scene_cloud_has_no_point_of_an_excluded_class(scene):
    lut = class_lut((), resolve_classes(["floor", "wall"], CLASS_NAMES), 6)
    keep = keep_mask(torch.from_numpy(scene.depth), 0.0,
                     torch.from_numpy(scene.labels.astype(np.int64)), lut)
    for stride in (1, 2):
        _, _, _, cloud = _cloud(scene, keep=keep, stride=stride)
        pts = _parse(cloud)
        valid = np.isfinite(pts["z"])
        assert valid.sum() > 0
        assert not np.isin(pts["label"][valid], [FLOOR, WALL]).any()
        if stride == 1:  # organised: exactly the pixels of the other classes stay
            expected = ~np.isin(scene.labels, [FLOOR, WALL]) & np.isfinite(scene.depth)
            np.testing.assert_array_equal(valid, expected)


def test_keep_mask_without_filters_is_none():
    assert keep_mask(torch.ones(3, 3)) is None
    with pytest.raises(ValueError, match="segmentation labels"):
        keep_mask(torch.ones(3, 3), 0.0, None, torch.ones(2, dtype=torch.bool))


# ---------------------------------------------------------------- voxel grid
def _open3d():
    return pytest.importorskip("open3d", reason="Open3D (test extra) is the voxel oracle")


@pytest.mark.parametrize("path", ["table", "sort"])
@pytest.mark.parametrize("voxel", [0.02, 0.05, 0.1, 0.25])
def test_voxel_grid_equals_open3d_on_the_synthetic_scene(scene, voxel, path, monkeypatch):
    """Both ways of numbering voxels (count table; sort for grids too large for a table)."""
    o3d = _open3d()
    if path == "sort":
        monkeypatch.setattr(cloud_filters, "_DENSE_CELLS", 0)
        monkeypatch.setattr(cloud_filters, "_DENSE_PER_POINT", 0)
    xyz, rgb, labels, cloud = _cloud(scene, voxel_size=voxel, stride=1)
    assert cloud.height == 1 and cloud.is_dense
    ours = _parse(cloud)[0]
    valid = np.isfinite(scene.depth).reshape(-1)
    pts = xyz.reshape(-1, 3).numpy()[valid].astype(np.float64)
    colors = rgb.reshape(-1, 3).numpy()[valid]
    lab = labels.reshape(-1).numpy()[valid]

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    pcd.colors = o3d.utility.Vector3dVector(colors / 255.0)
    down = pcd.voxel_down_sample(voxel)
    # the same grid, with the points of each voxel traced (labels are ours to vote)
    lo, hi = pcd.get_min_bound() - voxel / 2, pcd.get_max_bound() + voxel / 2
    traced, _, members = pcd.voxel_down_sample_and_trace(voxel, lo, hi, False)
    assert len(down.points) == len(traced.points) == len(members) == ours.shape[0]

    def key(p: np.ndarray) -> np.ndarray:  # the voxel each centroid lies in
        return np.floor((p - lo) / voxel).astype(np.int64)

    theirs = np.asarray(down.points)
    ours_xyz = np.stack([ours["x"], ours["y"], ours["z"]], -1).astype(np.float64)
    order_t = np.lexsort(key(theirs).T[::-1])
    order_o = np.lexsort(key(ours_xyz).T[::-1])
    np.testing.assert_array_equal(key(theirs)[order_t], key(ours_xyz)[order_o])  # same voxels
    np.testing.assert_allclose(ours_xyz[order_o], theirs[order_t], rtol=0, atol=1e-4)
    their_rgb = np.asarray(down.colors)[order_t] * 255.0
    assert np.abs(_rgb(ours["rgb"])[order_o] - their_rgb).max() <= 0.5 + 1e-6

    # label: the most frequent of the voxel's points (smallest id on ties)
    traced_xyz = np.asarray(traced.points)
    order_tr = np.lexsort(key(traced_xyz).T[::-1])
    mode = np.array([np.bincount(lab[np.asarray(members[i])], minlength=6).argmax()
                     for i in order_tr])
    np.testing.assert_array_equal(ours["label"][order_o], mode)


def test_voxel_downsample_ties_invalid_empty_and_single_points():
    # two points per voxel with labels 4 and 2: the tie goes to 2; a lone point stays as is;
    # a point that is not valid neither counts nor votes
    xyz = torch.tensor([[0.01, 0.01, 1.0], [0.02, 0.02, 1.01], [5.0, 5.0, 5.0],
                        [0.03, 0.03, 1.02], [math.nan, 0.0, 1.0]])
    rgb = torch.tensor([[10, 20, 30], [11, 21, 32], [1, 2, 3], [200, 200, 200], [0, 0, 0]],
                       dtype=torch.uint8)
    labels = torch.tensor([4, 2, 7, 4, 4])
    valid = torch.tensor([True, True, True, False, False])
    out = voxel_downsample(xyz, 0.1, rgb, labels, valid)
    assert out.labels.tolist() == [2, 7]
    torch.testing.assert_close(out.xyz[0], xyz[:2].mean(0))
    torch.testing.assert_close(out.xyz[1], xyz[2])
    assert out.rgb.tolist() == [[11, 21, 31], [1, 2, 3]]  # 10.5 -> 11, 20.5 -> 21: half up
    empty = voxel_downsample(xyz, 0.1, rgb, labels, torch.zeros(5, dtype=torch.bool))
    assert empty.xyz.shape == (0, 3) and empty.rgb.shape == (0, 3) and empty.labels.shape == (0,)
    with pytest.raises(ValueError):
        voxel_downsample(xyz, 0.0)


def test_voxel_colour_sums_packed_and_per_channel_agree_and_inputs_unchanged():
    """Colour sums packed in one int64 word (21 bits a channel) and, for a voxel of more
    than 2^21 / 255 points, per channel; the reused per-thread buffers give the same result
    for a large then a small cloud; the caller's tensors are left as they were."""
    gen = torch.Generator().manual_seed(3)
    n = 9000  # > 8224 points in the first voxel: the per-channel path
    xyz = torch.cat([torch.rand(n, 3, generator=gen) * 0.01,
                     torch.rand(50, 3, generator=gen) * 2.0 + 1.0])
    rgb = torch.randint(0, 256, (n + 50, 3), generator=gen, dtype=torch.uint8)
    labels = torch.randint(-2, 5, (n + 50,), generator=gen)
    before = [t.clone() for t in (xyz, rgb, labels)]
    wide = voxel_downsample(xyz, 0.1, rgb, labels)
    small = voxel_downsample(xyz[n:], 0.1, rgb[n:], labels[n:])  # the packed path
    again = voxel_downsample(xyz, 0.1, rgb, labels)
    for ref, t in zip(before, (xyz, rgb, labels)):
        assert torch.equal(ref, t)
    assert torch.equal(wide.xyz, again.xyz) and torch.equal(wide.rgb, again.rgb)
    assert torch.equal(wide.labels, again.labels)
    # references: float64 means rounded half up; labels clamped at 0, first maximum
    for out, pts, cols, labs in ((wide, xyz, rgb, labels), (small, xyz[n:], rgb[n:],
                                                             labels[n:])):
        lo = pts.double().amin(0) - 0.05
        index = ((pts.double() - lo) / 0.1).floor().long()
        _, inverse = torch.unique(index, dim=0, return_inverse=True)
        m = int(inverse.max()) + 1
        assert out.xyz.shape == (m, 3)
        for v in range(m):
            sel = inverse == v
            mean = torch.floor(cols[sel].double().mean(0) + 0.5).to(torch.uint8)
            assert torch.equal(out.rgb[v], mean)
            assert int(out.labels[v]) == int(torch.bincount(labs[sel].clamp(min=0)).argmax())
            torch.testing.assert_close(out.xyz[v].double(), pts[sel].double().mean(0),
                                       rtol=0, atol=1e-6)


@pytest.mark.parametrize("path", ["table", "sort"])
def test_voxel_paths_agree_with_invalid_points(scene, path, monkeypatch):
    """Count table and sort number the same voxels, invalid points in their dropped bin."""
    xyz = backproject(torch.from_numpy(scene.depth), scene.intrinsics).reshape(-1, 3)
    labels = torch.from_numpy(scene.labels.astype(np.int64)).reshape(-1)
    valid = torch.isfinite(xyz).all(1) & (labels != FLOOR)
    ref = voxel_downsample(xyz[valid], 0.05, labels=labels[valid])
    if path == "sort":
        monkeypatch.setattr(cloud_filters, "_DENSE_CELLS", 0)
        monkeypatch.setattr(cloud_filters, "_DENSE_PER_POINT", 0)
    out = voxel_downsample(xyz, 0.05, labels=labels, valid=valid)
    torch.testing.assert_close(out.xyz, ref.xyz)
    assert torch.equal(out.labels, ref.labels)


def test_pack_cloud_filters_combine_with_range_and_stride(scene):
    """min/max range, stride, flying pixels, classes and voxels together: the result is the
    voxel grid of exactly the points every filter keeps."""
    o3d = _open3d()
    t, voxel, stride = 0.05, 0.05, 2
    depth = torch.from_numpy(scene.depth)
    lut = class_lut((), (FLOOR,), 6)
    labels = torch.from_numpy(scene.labels.astype(np.int64))
    keep = keep_mask(depth, t, labels, lut)
    xyz, _, _, cloud = _cloud(scene, keep=keep, stride=stride, min_range=0.5,
                              max_range=6.0, voxel_size=voxel)
    ours = _parse(cloud)[0]
    p = xyz.numpy().astype(np.float64)
    dist = np.sqrt((p ** 2).sum(-1))
    expected = (keep.numpy() & np.isfinite(dist) & (dist >= 0.5) & (dist <= 6.0))
    sel = expected[::stride, ::stride]
    pts = p[::stride, ::stride][sel]
    assert not np.isin(ours["label"], [FLOOR]).any()
    down = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts)).voxel_down_sample(voxel)
    assert len(down.points) == ours.shape[0]
    ours_xyz = np.stack([ours["x"], ours["y"], ours["z"]], -1).astype(np.float64)
    lo = pts.min(0) - voxel / 2
    key = lambda q: np.floor((q - lo) / voxel).astype(np.int64)
    theirs = np.asarray(down.points)
    ot, oo = np.lexsort(key(theirs).T[::-1]), np.lexsort(key(ours_xyz).T[::-1])
    np.testing.assert_array_equal(key(theirs)[ot], key(ours_xyz)[oo])
    np.testing.assert_allclose(ours_xyz[oo], theirs[ot], rtol=0, atol=1e-4)


def test_organised_cloud_stays_without_filters(scene):
    _, _, _, cloud = _cloud(scene)
    assert (cloud.height, cloud.width) == scene.depth.shape and not cloud.is_dense
    _, _, _, filtered = _cloud(scene, keep=keep_mask(torch.from_numpy(scene.depth), 0.05))
    assert (filtered.height, filtered.width) == scene.depth.shape  # NaN where dropped
    assert math.isnan(float(_parse(filtered)["z"][~edge_keep(
        torch.from_numpy(scene.depth), 0.05).numpy()][0]))
