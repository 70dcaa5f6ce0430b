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
  `test/core/filters/test_cloud_filters.py`, against Open3D 0.20). Open3D rather than PCL's
  origin-anchored ``floor(p / voxel)``: it is the library a Python user has (pip), so the
  equality is tested rather than claimed; the grid moving with the min bound from frame to
  frame does not matter to a costmap, which bins the points into its own voxels again.

Everything is whole-tensor torch (shifted slices, one sort, segment sums with
`index_add_` / `scatter_reduce_`); no Python loop over points or pixels. The filters act on
what `core.pointcloud.pack_cloud` builds: `edge_keep` / class masks are AND-ed into its
validity mask (the organised cloud keeps its layout, dropped points NaN), the voxel step
reduces its packed (N, fields) buffer (x, y, z float32; rgb bytes; label int32).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence

import torch

_INT64_MAX = (1 << 63) - 1
# cells of a count table (int64) below which a table beats a sort: 8 MB, plus 4 per point
_DENSE_CELLS = 1 << 20
_DENSE_PER_POINT = 4
# bytes of the native-endian word 0x00RRGGBB (core.pointcloud's rgb field)
_ZERO_BYTE = 3 if sys.byteorder == "little" else 0
_RGB_BYTES = tuple(b for b in range(4) if b != _ZERO_BYTE)


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
def _planes(columns: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(N, k) → (k, N) contiguous in `dtype`: one strided copy into a fresh buffer (torch's
    `.t().to(dtype)` and reductions over a k-wide inner dimension ran 3-10x slower on CPU)."""
    out = torch.empty((columns.shape[1], columns.shape[0]), dtype=dtype, device=columns.device)
    return out.copy_(columns.t())


def voxel_keys(xyz: torch.Tensor, voxel: float) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(N,) int64 voxel key of each point, the points as (3, N) float64 planes, and the
    number of keys of the grid's extent, on Open3D's grid.

    The index is ``floor((p - (min_bound - voxel / 2)) / voxel)`` in float64, operation for
    operation what Open3D does with its double points (our float32 coordinates widen
    exactly; the anchor is a Python double as Open3D's), so a point on a cell border falls
    on Open3D's side of it. The key is the index linearised over the cloud's extent
    (row-major x, y, z)."""
    p = _planes(xyz, torch.float64)
    bounds = torch.stack([torch.stack(torch.aminmax(p[axis])) for axis in range(3)])
    (lo0, hi0), (lo1, hi1), (lo2, hi2) = bounds.tolist()  # one synchronisation
    anchors = [lo0 - voxel * 0.5, lo1 - voxel * 0.5, lo2 - voxel * 0.5]
    # floor is monotonic: the largest index is the max point's (same operations)
    dims = [math.floor((hi - a) / voxel) + 1 for hi, a in zip((hi0, hi1, hi2), anchors)]
    extent = dims[0] * dims[1] * dims[2]
    if extent > _INT64_MAX:
        raise ValueError(f"voxel_size {voxel} is too small for the cloud's extent")
    key = None
    for axis in range(3):  # x, y, z planes: three whole-cloud passes, row-major key
        index = p[axis].sub(anchors[axis]).div_(voxel).floor_().to(torch.int64)
        key = index if key is None else key.mul_(dims[axis]).add_(index)
    return key, p, extent


def _voxel_numbers(key: torch.Tensor, extent: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) voxel number of each point (0..M-1, in ascending key order) and (M,) points per
    voxel. A grid small enough for a table (a room at 5 cm: ~10^6 cells) is counted with
    one `bincount` and numbered with a `cumsum`, O(N + cells) and no sort (5-10x faster on
    a CPU); a larger one (outdoor ranges, fine voxels) goes through one sort."""
    if extent <= _DENSE_CELLS + _DENSE_PER_POINT * key.numel():
        per_cell = torch.bincount(key, minlength=extent)
        cells = per_cell.nonzero().squeeze(1)  # occupied keys, ascending
        number = torch.empty(extent, dtype=torch.int64, device=key.device)
        number[cells] = torch.arange(cells.numel(), device=key.device)
        return number[key], per_cell[cells]
    sorted_key, order = key.sort()
    _, inverse_sorted, counts = torch.unique_consecutive(sorted_key, return_inverse=True,
                                                         return_counts=True)
    inverse = torch.empty_like(inverse_sorted)
    inverse[order] = inverse_sorted
    return inverse, counts


def voxel_downsample(points: torch.Tensor, voxel: float, with_rgb: bool,
                     with_label: bool) -> torch.Tensor:
    """(M, F) float32 packed points, one per occupied voxel, from (N, F) packed points
    (columns: x, y, z; then the rgb word's 4 bytes when `with_rgb`; then the int32 label when
    `with_label`), ordered by voxel key.

    x, y, z: the centroid (float64 sums, as Open3D); rgb: each colour byte's rounded mean;
    label: the most frequent, the smallest id on ties (Open3D carries no labels). Voxel
    numbers from `_voxel_numbers`; sums by weighted `bincount`; the label vote by a
    `bincount` over (voxel, label) pairs."""
    if voxel <= 0.0:
        raise ValueError(f"voxel must be > 0, got {voxel}")
    n, n_fields = points.shape
    if n == 0:
        return points
    key, p, extent = voxel_keys(points[:, :3], voxel)
    inverse, counts = _voxel_numbers(key, extent)
    m = counts.numel()
    out = torch.empty((m, n_fields), dtype=torch.float32, device=points.device)
    count = counts.to(torch.float64)
    for axis in range(3):  # bincount with weights: float64 segment sums, one pass each
        out[:, axis] = torch.bincount(inverse, weights=p[axis], minlength=m).div_(count)
    if with_rgb:
        planes = _planes(points[:, 3].contiguous().view(torch.uint8).view(n, 4), torch.float64)
        word = out.view(torch.uint8).view(m, n_fields, 4)[:, 3]
        word[:, _ZERO_BYTE] = 0  # 0x00RRGGBB: the top byte is 0 in every point
        for byte in _RGB_BYTES:  # rounded half up; integer sums are exact in float64
            mean = torch.bincount(inverse, weights=planes[byte], minlength=m).div_(count)
            word[:, byte] = mean.add_(0.5).floor_()
    if with_label:
        out[:, -1] = _mode_labels(points[:, -1].contiguous().view(torch.int32), inverse,
                                  m).view(torch.float32)
    return out


def _mode_labels(labels: torch.Tensor, inverse: torch.Tensor, m: int) -> torch.Tensor:
    """(m,) int32: per voxel the most frequent label of its points (smallest id on ties).

    A (voxel, label) count table when it is small (voxels x classes: 20 k x 150 for ADE20K at
    640x480), its row-wise argmax (the first maximum: the smallest id); else sorted pairs and
    two `scatter_reduce_` calls."""
    lab = labels.to(torch.int64)
    n_labels = int(lab.max()) + 1
    pair = inverse * n_labels + lab
    if m * n_labels <= _DENSE_CELLS:
        table = torch.bincount(pair, minlength=m * n_labels).view(m, n_labels)
        return table.argmax(1).to(torch.int32)
    pairs, pair_counts = torch.unique(pair, sorted=True, return_counts=True)
    vox = torch.div(pairs, n_labels, rounding_mode="floor")
    lab_of_pair = pairs - vox * n_labels
    best = torch.zeros(m, dtype=pair_counts.dtype, device=labels.device)
    best.scatter_reduce_(0, vox, pair_counts, "amax")
    winner = pair_counts == best[vox]
    mode = torch.full((m,), n_labels, dtype=torch.int64, device=labels.device)
    mode.scatter_reduce_(0, vox[winner], lab_of_pair[winner], "amin")
    return mode.to(torch.int32)
