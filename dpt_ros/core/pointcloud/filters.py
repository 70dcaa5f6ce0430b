"""Costmap-ready point clouds: the filters a navigation stack would otherwise run on the host
(PCL / Open3D after depth_image_proc), done on the model's device before the one host copy.

- **Flying pixels** (`edge_keep`): a monocular depth map is smooth across object borders, so
  the pixels there land between the foreground and the background ("flying pixels"), which a
  costmap marks as obstacles in free space. Pixel p goes when for any 4-neighbour q that has
  a depth, ``|z_p - z_q| > threshold * z_p`` (a relative jump: the same threshold works at
  1 m and 10 m).
- **Classes** (`resolve_classes`, `class_lut`): with a segmentation model, keep only what
  should be an obstacle (drop `floor`, `sky`, `road`) through a boolean table indexed by the
  class id: one gather per pixel, whatever the number of classes.
- **Voxel grid** (`voxel_downsample`): one point per occupied voxel at the centroid of its
  points, colour averaged, label = the most frequent one (ties: the smallest id). The grid is
  **Open3D's** `PointCloud.voxel_down_sample`: cells of `voxel` metres anchored at the
  cloud's min bound − voxel / 2, voxel index ``floor((p - anchor) / voxel)`` computed in
  float64 as Open3D does, so the occupied voxels are exactly Open3D's (test:
  `test/core/test_pointcloud_filters.py`, against Open3D 0.20). Open3D rather than PCL's
  origin-anchored ``floor(p / voxel)``: it is the library a Python user has (pip), so the
  equality is tested rather than claimed; the grid moving with the min bound from frame to
  frame does not matter to a costmap, which bins the points into its own voxels again.

Everything is whole-tensor torch (shifted slices, one sort, segment sums with
`index_add_` / `scatter_reduce_`); no Python loop over points or pixels. The filters act on
what `core.pointcloud.pack_cloud` builds: `edge_keep` / class masks are AND-ed into its
validity mask (the organised cloud keeps its layout, dropped points NaN); the voxel step
reduces the points, colours and labels with that mask before anything is packed (no gather
of the full cloud), and only the voxels' points are packed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

_INT64_MAX = (1 << 63) - 1
# cells of a count table (int64) below which a table beats a sort: 8 MB, plus 4 per point
_DENSE_CELLS = 1 << 20
_DENSE_PER_POINT = 4


# ---------------------------------------------------------------- flying pixels
def edge_keep(z: torch.Tensor, threshold: float) -> torch.Tensor:
    """(H, W) bool: True where pixel p has no 4-neighbour q with a depth such that
    ``|z_p - z_q| > threshold * z_p``.

    A neighbour without depth (NaN) never removes p: NaN fails every comparison. Four
    shifted-slice comparisons, one per neighbour direction; each difference serves the two
    pixels of its pair (with each one's own z_p)."""
    if z.dim() != 2:
        raise ValueError(f"z must be (H, W), got {tuple(z.shape)}")
    limit = z * threshold
    drop = torch.zeros(z.shape, dtype=torch.bool, device=z.device)
    dx = (z[:, 1:] - z[:, :-1]).abs_()
    drop[:, 1:] |= dx > limit[:, 1:]  # p right of q
    drop[:, :-1] |= dx > limit[:, :-1]  # p left of q
    dy = (z[1:, :] - z[:-1, :]).abs_()
    drop[1:, :] |= dy > limit[1:, :]  # p below q
    drop[:-1, :] |= dy > limit[:-1, :]  # p above q
    return drop.logical_not_()


# ---------------------------------------------------------------- classes
def _known(labels: Mapping[int, str]) -> str:
    return ", ".join(f"{i} {name}" for i, name in sorted(labels.items()))


def resolve_classes(entries: Iterable[str], labels: Mapping[int, str],
                    parameter: str = "classes") -> tuple[int, ...]:
    """Class ids of `entries`: names of the segmentation model's labels (exact, else the one
    label equal ignoring case) or decimal ids written as strings ("3").

    ValueError naming the entry and listing the known labels when one is unknown: a typo in
    an obstacle list must not silently keep the floor in the costmap."""
    by_name = {name: i for i, name in labels.items()}
    by_lower: dict[str, list[int]] = {}
    for i, name in labels.items():
        by_lower.setdefault(name.lower(), []).append(i)
    ids = []
    for entry in entries:
        text = str(entry).strip()
        if text in by_name:
            ids.append(by_name[text])
        elif text.isdecimal() and int(text) in labels:
            ids.append(int(text))
        elif len(by_lower.get(text.lower(), [])) == 1:
            ids.append(by_lower[text.lower()][0])
        else:
            if not labels:
                raise ValueError(f"{parameter}: '{entry}' given but the segmentation model "
                                 "has no labels (class filters need a segmentation_model)")
            raise ValueError(f"{parameter}: unknown class '{entry}'; known labels (id name): "
                             f"{_known(labels)}")
    return tuple(dict.fromkeys(ids))


def class_lut(include: Sequence[int], exclude: Sequence[int], n_classes: int,
              device: torch.device | str = "cpu") -> torch.Tensor | None:
    """(n_classes,) bool: which class ids a point may have (None: every class, no filter).
    With both lists a class must be included and not excluded."""
    if not include and not exclude:
        return None
    lut = torch.zeros(n_classes, dtype=torch.bool) if include else torch.ones(
        n_classes, dtype=torch.bool)
    if include:
        lut[list(include)] = True
    if exclude:
        lut[list(exclude)] = False
    return lut.to(device)


def keep_mask(z: torch.Tensor, edge_threshold: float = 0.0, labels: torch.Tensor | None = None,
              lut: torch.Tensor | None = None) -> torch.Tensor | None:
    """(H, W) bool of the pixels the filters keep (None: no filter set).

    `z` is the depth along the optical axis (the cloud's z), `labels` the class id per pixel
    (needed when `lut` is given)."""
    keep = edge_keep(z, edge_threshold) if edge_threshold > 0.0 else None
    if lut is not None:
        if labels is None:
            raise ValueError("class filters need the segmentation labels")
        by_class = lut[labels.to(device=lut.device, dtype=torch.long).clamp_(0, lut.numel() - 1)]
        keep = by_class if keep is None else keep.logical_and_(by_class.to(keep.device))
    return keep


# ---------------------------------------------------------------- voxel grid
@dataclass
class VoxelCloud:
    """One point per occupied voxel: (M, 3) float32 centroids, (M, 3) uint8 mean colours and
    (M,) int32 most frequent labels (None when not asked for), ordered by voxel key."""

    xyz: torch.Tensor
    rgb: torch.Tensor | None = None
    labels: torch.Tensor | None = None


def _planes(columns: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(N, k) → (k, N) contiguous in `dtype`: one strided copy into a fresh buffer (torch's
    `.t().to(dtype)` and reductions over a k-wide inner dimension ran 3-10x slower on CPU)."""
    out = torch.empty((columns.shape[1], columns.shape[0]), dtype=dtype, device=columns.device)
    return out.copy_(columns.t())


def voxel_keys(p: torch.Tensor, voxel: float, valid: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, int] | None:
    """(N,) int64 voxel key of each point of the (3, N) float64 planes `p`, and the number
    of keys of the grid's extent (the key of points not `valid`), on Open3D's grid.

    The index is ``floor((p - (min_bound - voxel / 2)) / voxel)`` in float64, operation for
    operation what Open3D does with its double points (our float32 coordinates widen
    exactly; the anchor is a Python double as Open3D's), so a point on a cell border falls
    on Open3D's side of it; the quotient is positive, so the integer conversion's truncation
    is the floor. The key is the index linearised over the valid points' extent (row-major
    x, y, z). None when no point is valid."""
    # bounds of the valid points: their planes gathered once (masked fills and reductions
    # over every point ran 3x slower on a CPU); 1-D min / max per plane
    everything = valid is None or bool(valid.all())
    inside = p if everything else p.index_select(1, valid.nonzero().squeeze(1))
    if inside.shape[1] == 0:
        return None
    bounds = torch.stack([torch.stack(torch.aminmax(inside[axis])) for axis in range(3)])
    (lo0, hi0), (lo1, hi1), (lo2, hi2) = bounds.tolist()  # one synchronisation
    if not math.isfinite(lo0 + hi0 + lo1 + hi1 + lo2 + hi2):
        raise ValueError("voxel grid: points must be finite (NaN / inf ones not valid)")
    anchors = [lo0 - voxel * 0.5, lo1 - voxel * 0.5, lo2 - voxel * 0.5]
    # floor is monotonic: the largest index is the max point's (same operations)
    dims = [math.floor((hi - a) / voxel) + 1 for hi, a in zip((hi0, hi1, hi2), anchors)]
    extent = dims[0] * dims[1] * dims[2]
    if extent >= _INT64_MAX:
        raise ValueError(f"voxel_size {voxel} is too small for the cloud's extent")
    key = None
    for axis in range(3):  # x, y, z planes: whole-cloud passes, row-major key
        index = p[axis].sub(anchors[axis]).div_(voxel).to(torch.int64)
        key = index if key is None else key.mul_(dims[axis]).add_(index)
    if not everything:
        key.masked_fill_(valid.logical_not(), extent)  # their own bin, dropped (NaN made any index)
    return key, extent


def _voxel_numbers(key: torch.Tensor, extent: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) voxel number of each point (0..M-1 in ascending key order; M for the invalid
    points' key `extent`) and (M,) points per voxel. A grid small enough for a table (a
    room at 5 cm: ~10^6 cells) is counted with one `bincount` and numbered through its
    occupied cells, O(N + cells) and no sort (5-10x faster on a CPU); a larger one (outdoor
    ranges, fine voxels) goes through one sort."""
    if extent <= _DENSE_CELLS + _DENSE_PER_POINT * key.numel():
        per_cell = torch.bincount(key, minlength=extent + 1)[:extent]
        cells = per_cell.nonzero().squeeze(1)  # occupied keys, ascending
        number = torch.empty(extent + 1, dtype=torch.int64, device=key.device)
        number[cells] = torch.arange(cells.numel(), device=key.device)
        number[extent] = cells.numel()
        return number.index_select(0, key), per_cell.index_select(0, cells)
    sorted_key, order = key.sort()
    _, inverse_sorted, counts = torch.unique_consecutive(sorted_key, return_inverse=True,
                                                         return_counts=True)
    inverse = torch.empty_like(inverse_sorted)
    inverse[order] = inverse_sorted
    if int(sorted_key[-1]) == extent:  # the invalid points' bin is the last one: not a voxel
        counts = counts[:-1]
    return inverse, counts


def voxel_downsample(xyz: torch.Tensor, voxel: float, rgb: torch.Tensor | None = None,
                     labels: torch.Tensor | None = None, valid: torch.Tensor | None = None
                     ) -> VoxelCloud:
    """One point per occupied voxel of the (N, 3) points (any float dtype and strides) that
    are `valid` (None: all), with their (N, 3) uint8 colours and (N,) class ids.

    x, y, z: the centroid (float64 sums, as Open3D); rgb: each channel's rounded mean;
    labels: the most frequent, the smallest id on ties (Open3D carries no labels). Points
    that are not valid are counted into one extra bin that is dropped, so nothing is
    gathered; sums by weighted `bincount`, the label vote by a `bincount` over (voxel,
    label) pairs."""
    if voxel <= 0.0:
        raise ValueError(f"voxel must be > 0, got {voxel}")
    device = xyz.device
    p = _planes(xyz, torch.float64)
    keyed = voxel_keys(p, voxel, valid) if xyz.shape[0] else None
    if keyed is None:
        return VoxelCloud(torch.empty((0, 3), device=device),
                          None if rgb is None else torch.empty((0, 3), dtype=torch.uint8,
                                                               device=device),
                          None if labels is None else torch.empty(0, dtype=torch.int32,
                                                                  device=device))
    key, extent = keyed
    inverse, counts = _voxel_numbers(key, extent)
    m = counts.numel()
    count = counts.to(torch.float64)

    def mean(weights: torch.Tensor) -> torch.Tensor:  # per voxel, invalid bin dropped
        return torch.bincount(inverse, weights=weights, minlength=m + 1)[:m].div_(count)

    out = VoxelCloud(torch.stack([mean(p[axis]) for axis in range(3)], 1).to(torch.float32))
    if rgb is not None:
        planes = _planes(rgb, torch.float64)
        out.rgb = torch.stack([mean(planes[c]).add_(0.5).floor_() for c in range(3)],
                              1).to(torch.uint8)  # rounded half up (exact integer sums)
    if labels is not None:
        out.labels = _mode_labels(labels, inverse, m)
    return out


def _mode_labels(labels: torch.Tensor, inverse: torch.Tensor, m: int) -> torch.Tensor:
    """(m,) int32: per voxel the most frequent label of its points (smallest id on ties);
    points numbered m (not valid) do not vote.

    A (voxel, label) count table when it is small (voxels x classes: 20 k x 150 for ADE20K at
    640x480), its row-wise argmax (the first maximum: the smallest id); else sorted pairs and
    two `scatter_reduce_` calls."""
    lab = labels.to(torch.int64).clamp_(min=0)
    n_labels = int(lab.max()) + 1
    pair = inverse * n_labels + lab
    if (m + 1) * n_labels <= _DENSE_CELLS:
        table = torch.bincount(pair, minlength=(m + 1) * n_labels).view(m + 1, n_labels)
        return table[:m].argmax(1).to(torch.int32)
    pairs, pair_counts = torch.unique(pair, sorted=True, return_counts=True)
    vox = torch.div(pairs, n_labels, rounding_mode="floor")
    lab_of_pair = pairs - vox * n_labels
    best = torch.zeros(m + 1, dtype=pair_counts.dtype, device=labels.device)
    best.scatter_reduce_(0, vox, pair_counts, "amax")
    winner = pair_counts == best[vox]
    mode = torch.full((m + 1,), n_labels, dtype=torch.int64, device=labels.device)
    mode.scatter_reduce_(0, vox[winner], lab_of_pair[winner], "amin")
    return mode[:m].to(torch.int32)
