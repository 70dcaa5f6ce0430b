"""Standard depth and segmentation metrics against the renderer's ground truth, shared by
the evaluation script, the demo and the tests so every figure is computed the same way."""

from __future__ import annotations

import numpy as np


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
