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

Everything is whole-tensor torch (shifted slices, a count table or one sort, segment sums
with `scatter_add_` / `bincount`); no Python loop over points or pixels. On the CPU the
voxel step's per-point temporaries live in per-thread buffers reused from frame to frame
(`_scratch`: fresh multi-MB tensors cost more in page faults than the arithmetic).
The filters act on what `core.pointcloud.pack_cloud` builds: `edge_keep` / class masks
are AND-ed into its validity mask (the organised cloud keeps its layout, dropped points
NaN); the voxel step
reduces the points, colours and labels with that mask before anything is packed (no gather
of the full cloud), and only the voxels' points are packed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

_INT64_MAX = (1 << 63) - 1
_INT32_MAX = (1 << 31) - 1
_RGB_BITS = 21  # bits per colour channel in the packed colour sums (3 x 21 < 63)
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
    z = z.contiguous()  # the cloud's z is a stride-3 view: one gather, then dense passes
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
        ids = labels.to(device=lut.device, dtype=torch.long)
        # clamped out of place when `to` returned the caller's tensor (never modify it);
        # index_select: 3x faster than lut[ids] on a CPU
        ids = ids.clamp(0, lut.numel() - 1) if ids is labels else ids.clamp_(0, lut.numel() - 1)
        by_class = lut.index_select(0, ids.reshape(-1)).view(ids.shape)
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


_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: torch.dtype,
             device: torch.device) -> torch.Tensor:
    """An uninitialised (shape) tensor for per-point temporaries. On the CPU it is a view of
    a buffer kept per thread and reused from frame to frame: a fresh multi-MB tensor is
    fresh pages from the kernel, and those page faults were most of the voxel step's time
    on a CPU (a 7 MB float64 copy: 2.6 ms into new memory, 0.3 ms into reused memory).
    Never returned to the caller. Elsewhere (CUDA's caching allocator reuses memory)
    `torch.empty`."""
    if device.type != "cpu":
        return torch.empty(shape, dtype=dtype, device=device)
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None:
        buffers = _SCRATCH.buffers = {}
    numel = math.prod(shape)
    buffer = buffers.get((name, dtype))
    if buffer is None or buffer.numel() < numel:
        buffer = buffers[(name, dtype)] = torch.empty(numel, dtype=dtype)
    return buffer[:numel].view(shape)


def _planes(columns: torch.Tensor, dtype: torch.dtype, name: str | None = None
            ) -> torch.Tensor:
    """(N, k) → (k, N) contiguous in `dtype`: one strided copy into a fresh buffer (torch's
    `.t().to(dtype)` and reductions over a k-wide inner dimension ran 3-10x slower on CPU)."""
    shape = (columns.shape[1], columns.shape[0])
    out = (torch.empty(shape, dtype=dtype, device=columns.device) if name is None
           else _scratch(name, shape, dtype, columns.device))
    return out.copy_(columns.t())


def _bounds_fill(p: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor | None:
    """The (3, N) planes with every point that is not `valid` moved onto the first valid
    one (so they change no bound and are finite; their key is overwritten later), in place.
    None when no point is valid. One `where` over the planes: a gather of the valid points
    (nonzero + index_select) cost 3-5x more on a CPU."""
    if valid is None:
        return p
    first = int(valid.to(torch.uint8).argmax())  # the first True (0 when there is none)
    if not bool(valid[first]):
        return None
    return torch.where(valid, p, p[:, first:first + 1].clone(), out=p)


def voxel_keys(p: torch.Tensor, voxel: float, valid: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, int] | None:
    """(N,) voxel key of each point of the (3, N) float64 planes `p`, and the number of
    keys of the grid's extent (the key of points not `valid`), on Open3D's grid. The key
    is int32 when the extent allows it (half the memory traffic of int64), else int64.

    The index is ``floor((p - (min_bound - voxel / 2)) / voxel)`` in float64, operation for
    operation what Open3D does with its double points (our float32 coordinates widen
    exactly; the anchor is a Python double as Open3D's), so a point on a cell border falls
    on Open3D's side of it; the quotient is positive, so the integer conversion's truncation
    is the floor. The key is the index linearised over the valid points' extent (row-major
    x, y, z). None when no point is valid. `p`'s points that are not valid are overwritten
    (moved onto a valid one)."""
    if valid is not None and bool(valid.all()):
        valid = None  # every point: no fill, no invalid bin to mark
    if _bounds_fill(p, valid) is None:
        return None
    bounds = torch.stack([torch.stack(torch.aminmax(p[axis])) for axis in range(3)])
    (lo0, hi0), (lo1, hi1), (lo2, hi2) = bounds.tolist()  # one synchronisation
    if not math.isfinite(lo0 + hi0 + lo1 + hi1 + lo2 + hi2):
        raise ValueError("voxel grid: points must be finite (NaN / inf ones not valid)")
    anchors = [lo0 - voxel * 0.5, lo1 - voxel * 0.5, lo2 - voxel * 0.5]
    # floor is monotonic: the largest index is the max point's (same operations)
    dims = [math.floor((hi - a) / voxel) + 1 for hi, a in zip((hi0, hi1, hi2), anchors)]
    extent = dims[0] * dims[1] * dims[2]
    if extent >= _INT64_MAX:
        raise ValueError(f"voxel_size {voxel} is too small for the cloud's extent")
    dtype = torch.int32 if extent < _INT32_MAX else torch.int64
    key = None
    n = p.shape[1]
    quotient = _scratch("quotient", (n,), torch.float64, p.device)
    for axis in range(3):  # x, y, z planes: whole-cloud passes, row-major key
        torch.sub(p[axis], anchors[axis], out=quotient).div_(voxel)
        index = _scratch("key" if key is None else "index", (n,), dtype, p.device)
        index.copy_(quotient)  # truncation toward zero, as .to(dtype)
        key = index if key is None else key.mul_(dims[axis]).add_(index)
    if valid is not None:
        key.masked_fill_(valid.logical_not(), extent)  # their own bin, dropped
    return key, extent


def _voxel_numbers(key: torch.Tensor, extent: int) -> tuple[torch.Tensor, int]:
    """(N,) int64 voxel number of each point (0..M-1 in ascending key order; M for the
    invalid points' key `extent`) and M. A grid small enough for a table (a room at 5 cm:
    ~10^6 cells) is counted with one `bincount` and numbered by a cumulative sum over its
    occupied cells, O(N + cells) and no sort (5-10x faster on a CPU; `nonzero` over the
    table was 2-3x slower than the cumsum); a larger one (outdoor ranges, fine voxels) goes
    through one sort."""
    if extent <= _DENSE_CELLS + _DENSE_PER_POINT * key.numel():
        number = torch.bincount(key, minlength=extent + 1).clamp_(max=1)  # occupied: 1
        number[extent] = 1  # the invalid points' bin: numbered M, after every voxel
        number.cumsum_(0)  # 1..M+1 on the occupied cells (in place: no bool / int64 copies)
        m = int(number[extent]) - 1
        inverse = _scratch("inverse", (key.numel(),), torch.int64, key.device)
        return torch.index_select(number, 0, key, out=inverse).sub_(1), m
    sorted_key, order = key.sort()
    _, inverse_sorted = torch.unique_consecutive(sorted_key, return_inverse=True)
    inverse = torch.empty_like(inverse_sorted)
    inverse[order] = inverse_sorted
    m = int(inverse_sorted[-1]) + (0 if int(sorted_key[-1]) == extent else 1)
    return inverse, m


def voxel_downsample(xyz: torch.Tensor, voxel: float, rgb: torch.Tensor | None = None,
                     labels: torch.Tensor | None = None, valid: torch.Tensor | None = None
                     ) -> VoxelCloud:
    """One point per occupied voxel of the (N, 3) points (any float dtype and strides) that
    are `valid` (None: all), with their (N, 3) uint8 colours and (N,) class ids.

    x, y, z: the centroid (float64 sums, as Open3D); rgb: each channel's rounded mean;
    labels: the most frequent, the smallest id on ties (Open3D carries no labels). Points
    that are not valid are counted into one extra bin that is dropped, so nothing is
    gathered; sums by `scatter_add_` (1.5x faster than a weighted `bincount` on a CPU), the
    three colour channels packed into one int64 word when no sum can overflow its 21 bits,
    the label vote by a `bincount` over (voxel, label) pairs."""
    if voxel <= 0.0:
        raise ValueError(f"voxel must be > 0, got {voxel}")
    device = xyz.device
    p = _planes(xyz, torch.float64, "planes")
    keyed = voxel_keys(p, voxel, valid) if xyz.shape[0] else None
    if keyed is None:
        return VoxelCloud(torch.empty((0, 3), device=device),
                          None if rgb is None else torch.empty((0, 3), dtype=torch.uint8,
                                                               device=device),
                          None if labels is None else torch.empty(0, dtype=torch.int32,
                                                                  device=device))
    key, extent = keyed
    inverse, m = _voxel_numbers(key, extent)
    del key
    votes = mode = None
    if labels is not None:
        votes, mode = _label_votes(labels, inverse, m)
    if votes is not None:
        counts = votes.sum(1)
    else:
        counts = torch.bincount(inverse, minlength=m + 1)[:m]
    count = counts.to(torch.float64)

    def sums(weights: torch.Tensor) -> torch.Tensor:  # per voxel, invalid bin dropped
        out = torch.zeros(m + 1, dtype=weights.dtype, device=device)
        return out.scatter_add_(0, inverse, weights)[:m]

    centroid = torch.empty((m, 3), dtype=torch.float64, device=device)
    for axis in range(3):
        torch.div(sums(p[axis]), count, out=centroid[:, axis])
    out = VoxelCloud(centroid.to(torch.float32))
    if rgb is not None:
        out.rgb = _mean_colours(rgb, sums, counts, count)
    if votes is not None:
        out.labels = votes.argmax(1).to(torch.int32)  # the first maximum: the smallest id
    elif mode is not None:
        out.labels = mode
    return out


def _mean_colours(rgb: torch.Tensor, sums, counts: torch.Tensor,
                  count: torch.Tensor) -> torch.Tensor:
    """(M, 3) uint8: each channel's mean rounded half up (exact integer sums)."""
    m = counts.numel()
    if m and int(counts.max()) * 255 < (1 << _RGB_BITS):  # no channel sum leaves its field
        word = _scratch("rgb", (rgb.shape[0],), torch.int64, rgb.device).copy_(rgb[:, 0])
        word.add_(rgb[:, 1], alpha=1 << _RGB_BITS).add_(rgb[:, 2], alpha=1 << 2 * _RGB_BITS)
        total = sums(word)
        mask = (1 << _RGB_BITS) - 1
        channel_sums = torch.stack([total & mask, (total >> _RGB_BITS) & mask,
                                    total >> 2 * _RGB_BITS], 1).to(torch.float64)
    else:
        planes = _planes(rgb, torch.float64, "planes_rgb")
        channel_sums = torch.stack([sums(planes[c]) for c in range(3)], 1)
    return channel_sums.div_(count[:, None]).add_(0.5).floor_().to(torch.uint8)


def _label_votes(labels: torch.Tensor, inverse: torch.Tensor, m: int
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Per voxel the number of its points of each label (negative ids count as 0); points
    numbered m (not valid) do not vote: an (m, n_labels) int64 table from one `bincount`
    over the (voxel, label) pairs when it is small (voxels x classes: 20 k x 150 for ADE20K
    at 640x480) — its rows also sum to the voxels' point counts, its row-wise argmax (the
    first maximum: the smallest id on ties) is the most frequent label — else (None, the
    (m,) int32 most frequent labels through sorted pairs and two `scatter_reduce_`)."""
    lab = labels.to(device=inverse.device, dtype=torch.int64)
    lo, hi = torch.stack(torch.aminmax(lab)).tolist() if lab.numel() else (0, 0)
    if lo < 0:
        lab = lab.clamp(min=0)
    n_labels = max(int(hi), 0) + 1
    pair = torch.mul(inverse, n_labels,
                     out=_scratch("pair", (inverse.numel(),), torch.int64, inverse.device))
    pair += lab
    if (m + 1) * n_labels <= _DENSE_CELLS + _DENSE_PER_POINT * pair.numel():
        table = torch.bincount(pair, minlength=(m + 1) * n_labels)
        return table.view(m + 1, n_labels)[:m], None
    pairs, pair_counts = torch.unique(pair, sorted=True, return_counts=True)
    vox = torch.div(pairs, n_labels, rounding_mode="floor")
    lab_of_pair = pairs - vox * n_labels
    best = torch.zeros(m + 1, dtype=pair_counts.dtype, device=labels.device)
    best.scatter_reduce_(0, vox, pair_counts, "amax")
    winner = pair_counts == best[vox]
    mode = torch.full((m + 1,), n_labels, dtype=torch.int64, device=labels.device)
    mode.scatter_reduce_(0, vox[winner], lab_of_pair[winner], "amin")
    return None, mode[:m].to(torch.int32)
