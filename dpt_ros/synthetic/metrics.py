"""Standard depth and segmentation metrics against the renderer's ground truth, shared by
the evaluation script, the demo and the tests so every figure is computed the same way."""

from __future__ import annotations

import numpy as np

from dpt_ros.core.camera.geometry import project, ray_directions


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """AbsRel, RMSE (m) and δ<1.25 over pixels where both are finite and positive."""
    pred = np.asarray(pred, dtype=np.float64).ravel()
    gt = np.asarray(gt, dtype=np.float64).ravel()
    ok = np.isfinite(pred) & np.isfinite(gt) & (gt > 0) & (pred > 0)
    p, g = pred[ok], gt[ok]
    if p.size == 0:
        return {"abs_rel": float("nan"), "rmse": float("nan"), "delta1": 0.0, "valid": 0.0}
    ratio = np.maximum(p / g, g / p)
    return {
        "abs_rel": float(np.mean(np.abs(p - g) / g)),
        "rmse": float(np.sqrt(np.mean((p - g) ** 2))),
        "delta1": float(np.mean(ratio < 1.25)),
        "valid": float(ok.mean()),
    }


def depth_edges(gt: np.ndarray, jump: float = 1.1, radius: int = 2) -> np.ndarray:
    """(H, W) bool: pixels within `radius` (4-neighbour steps) of a depth discontinuity, i.e.
    of two neighbouring ground-truth depths whose ratio exceeds `jump`: where a blurred
    prediction is wrong, and what pooled AbsRel hardly sees (a few % of the pixels)."""
    g = np.asarray(gt, dtype=np.float64)
    g = np.where(np.isfinite(g) & (g > 0), g, np.nan)
    edge = np.zeros(g.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for a, b in ((g[:, 1:], g[:, :-1]), (g[1:, :], g[:-1, :])):
            step = np.maximum(a / b, b / a) > jump
            if a.shape[1] < g.shape[1]:
                edge[:, 1:] |= step
                edge[:, :-1] |= step
            else:
                edge[1:, :] |= step
                edge[:-1, :] |= step
    for _ in range(radius):
        grown = edge.copy()
        grown[1:, :] |= edge[:-1, :]
        grown[:-1, :] |= edge[1:, :]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def edge_abs_rel(pred: np.ndarray, gt: np.ndarray) -> float:
    """AbsRel over the `depth_edges` pixels only (NaN when the frame has no edge)."""
    mask = depth_edges(gt)
    if not mask.any():
        return float("nan")
    return depth_metrics(np.asarray(pred)[mask], np.asarray(gt)[mask])["abs_rel"]


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = ground truth, columns = prediction."""
    g = np.asarray(gt, dtype=np.int64).ravel()
    p = np.asarray(pred, dtype=np.int64).ravel()
    ok = (g < num_classes) & (p < num_classes) & (g >= 0) & (p >= 0)
    idx = g[ok] * num_classes + p[ok]
    return np.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU per class; NaN for classes absent from both prediction and ground truth."""
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def mean_iou(conf: np.ndarray) -> float:
    """mIoU over the classes that occur (in ground truth or prediction)."""
    iou = iou_per_class(conf)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def _bilinear(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """img at sub-pixel (u, v) (pixel centres at integers), and the spread (max - min) of
    the four pixels blended there."""
    u0 = np.clip(np.floor(u).astype(np.int64), 0, img.shape[1] - 2)
    v0 = np.clip(np.floor(v).astype(np.int64), 0, img.shape[0] - 2)
    fu, fv = u - u0, v - v0
    c = np.stack([img[v0, u0], img[v0, u0 + 1], img[v0 + 1, u0], img[v0 + 1, u0 + 1]])
    value = ((c[0] * (1 - fu) + c[1] * fu) * (1 - fv) + (c[2] * (1 - fu) + c[3] * fu) * fv)
    return value, c.max(0) - c.min(0)


def flicker(prev_depth: np.ndarray, depth: np.ndarray, prev_truth: np.ndarray,
            truth: np.ndarray, prev_pose, pose, intrinsics, stride: int = 2
            ) -> dict[str, float]:
    """Frame-to-frame change of predicted depth on the same static surface points, camera
    motion compensated with the known poses.

    Each (strided) pixel of the previous frame is moved with its true depth into the current
    view; where it is visible there (true depth agrees to 1 %, away from depth edges) the
    change is that of the prediction's relative error at the point:
    |D_k(p') / G_k(p') - D_k-1(p) / G_k-1(p)| ("rel", mean), and the same in metres at the
    current depth ("abs_m", mean). A prediction that is wrong by a constant factor does not
    flicker; one whose scale wobbles from frame to frame does.
    """
    k = intrinsics
    v, u = np.mgrid[0:prev_truth.shape[0]:stride, 0:prev_truth.shape[1]:stride]
    v, u = v.ravel(), u.ravel()
    g0, d0 = prev_truth[v, u].astype(np.float64), prev_depth[v, u].astype(np.float64)
    ok = np.isfinite(g0) & (g0 > 0) & np.isfinite(d0) & (d0 > 0)
    v, u, g0, d0 = v[ok], u[ok], g0[ok], d0[ok]
    rx, ry = np.broadcast_arrays(*ray_directions(k))  # the camera's own rays, lens included
    cam = np.stack([rx[v, u] * g0, ry[v, u] * g0, g0], 1)
    moved = (prev_pose.to_world(cam) - pose.position) @ pose.rotation  # current camera frame
    z = moved[:, 2]
    front = z > 1e-3
    uv = project(np.where(front[:, None], moved, np.nan), k)
    u1, v1 = np.nan_to_num(uv[:, 0], nan=-1.0), np.nan_to_num(uv[:, 1], nan=-1.0)
    inside = front & (u1 >= 0) & (u1 <= truth.shape[1] - 1) & (v1 >= 0) & (v1 <= truth.shape[0] - 1)
    g1, spread = _bilinear(truth.astype(np.float64), u1[inside], v1[inside])
    d1, _ = _bilinear(depth.astype(np.float64), u1[inside], v1[inside])
    z, g0, d0 = z[inside], g0[inside], d0[inside]
    seen = (np.abs(g1 - z) <= 0.01 * z) & (spread <= 0.05 * z) & np.isfinite(d1) & (d1 > 0)
    change = np.abs(d1[seen] / g1[seen] - d0[seen] / g0[seen])
    if change.size == 0:
        return {"rel": float("nan"), "abs_m": float("nan"), "pixels": 0.0}
    return {"rel": float(change.mean()), "abs_m": float((change * g1[seen]).mean()),
            "pixels": float(change.size)}


class Scores:
    """The figures of a run, accumulated frame by frame with bounded memory: depth metrics
    per frame (then the mean over frames) and one confusion matrix pooled over all frames
    (then per-class IoU and mIoU). The demo and tools/eval_synthetic.py both report through
    this class, so their figures are measured the same way."""

    def __init__(self, class_names: dict[int, str]):
        self.class_names = dict(class_names)
        n = len(self.class_names)
        self.conf = np.zeros((n, n), dtype=np.int64)
        self.depth: list[dict[str, float]] = []

    def add_depth(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        d = depth_metrics(pred, gt) | {"abs_rel_edges": edge_abs_rel(pred, gt)}
        self.depth.append(d)
        return d

    def add_labels(self, pred: np.ndarray, gt: np.ndarray) -> None:
        self.conf += confusion(pred, gt, len(self.class_names))

    def summary(self) -> dict:
        """{"depth": {abs_rel, rmse, delta1, abs_rel_edges} (means over frames), "miou",
        "iou": {name: IoU or None when the class is neither in the ground truth nor
        predicted}}."""
        iou = iou_per_class(self.conf)
        keys = ("abs_rel", "rmse", "delta1", "abs_rel_edges")
        return {
            "depth": {k: round(float(np.nanmean([d[k] for d in self.depth])), 4) for k in keys}
            if self.depth else None,
            "miou": round(mean_iou(self.conf), 4),
            "iou": {self.class_names[c]: (None if np.isnan(v) else round(float(v), 4))
                    for c, v in enumerate(iou)},
        }
