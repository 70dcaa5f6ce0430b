"""The training tools' losses and data (tools/train_losses.py, tools/train_data.py) against
independent truth: the Lovász loss is 1 - IoU for hard predictions (IoU from the metrics'
confusion matrix), gradient matching ignores a global scale but sees a blurred edge, and the
balanced worlds put every kind of object in the room."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from train_data import SyntheticBatches
from train_losses import gradient_matching, lovasz_softmax

from dpt_ros.synthetic import NUM_CLASSES, make_world
from dpt_ros.synthetic.metrics import confusion, iou_per_class
from dpt_ros.synthetic.world import Box, Cylinder, Sphere


def test_lovasz_of_hard_predictions_is_one_minus_iou() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, (2, 24, 32))
    pred = np.where(rng.random(labels.shape) < 0.7, labels, rng.integers(0, 4, labels.shape))
    logits = torch.nn.functional.one_hot(torch.from_numpy(pred), 5).permute(0, 3, 1, 2) * 60.0
    loss = lovasz_softmax(logits.double(), torch.from_numpy(labels))
    iou = iou_per_class(confusion(pred, labels, 5))
    present = np.unique(labels)  # class 4 is never in the labels: left out of the mean
    assert float(loss) == pytest.approx(float(np.mean(1.0 - iou[present])), abs=1e-9)


def test_lovasz_gradient_lowers_the_loss() -> None:
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (1, 16, 16))
    logits = torch.randn(1, 3, 16, 16, requires_grad=True)
    loss = lovasz_softmax(logits, labels)
    loss.backward()
    with torch.no_grad():
        assert float(lovasz_softmax(logits - 0.5 * logits.grad, labels)) < float(loss)


def test_gradient_matching_is_scale_invariant_and_sees_blur() -> None:
    gt = torch.full((1, 32, 32), 2.0)
    gt[:, :, 16:] = 4.0  # a depth edge
    assert float(gradient_matching(gt * 1.7, gt)) == pytest.approx(0.0, abs=1e-6)
    blurred = torch.nn.functional.avg_pool1d(gt.reshape(32, 1, 32), 5, 1, 2,
                                             count_include_pad=False).reshape(1, 32, 32)
    assert float(gradient_matching(blurred, gt)) > 0.01


def test_balanced_worlds_hold_every_kind() -> None:
    kinds = [{type(o) for o in make_world(s, balanced=True).objects} for s in range(40)]
    assert sum(k == {Box, Sphere, Cylinder} for k in kinds) >= 36
    boxes = sum(isinstance(o, Box) for s in range(40) for o in make_world(s).objects)
    balanced_boxes = sum(isinstance(o, Box) for s in range(40)
                         for o in make_world(s, balanced=True).objects)
    assert balanced_boxes > 1.5 * boxes  # default worlds: boxes are the rarest kind


def test_training_frames_are_reproducible_and_show_objects() -> None:
    a, b = SyntheticBatches(5, 4, (60, 80), 70.0), SyntheticBatches(5, 4, (60, 80), 70.0)
    rgb, depth, labels = next(a)
    rgb2, depth2, labels2 = next(b)
    np.testing.assert_array_equal(depth, depth2)
    assert rgb.shape == (4, 60, 80, 3) and depth.shape == labels.shape == (4, 60, 80)
    np.testing.assert_array_equal(rgb, rgb2)
    np.testing.assert_array_equal(labels, labels2)
    present = np.zeros(NUM_CLASSES, bool)
    for _ in range(6):
        present |= np.bincount(next(a)[2].ravel(), minlength=NUM_CLASSES) > 0
    assert present.all()
