"""Parity with transformers on every variant at sizes the reference accepts: a tiny random
reference model is saved with save_pretrained, loaded with our load_model, and both run on the
same input (max|Δ| <= 1e-4 * max|reference|)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

T = pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")

from _model_util import HYBRID, assert_close, image, randomize, tiny_dinov2, tiny_vit  # noqa: E402

from dpt_ros.model import (  # noqa: E402
    DepthAnythingForDepthEstimation,
    DPTForDepthEstimation,
    DPTForSemanticSegmentation,
    DPTModel,
    load_model,
)

DPT_DINOV2 = {  # facebook/dpt-dinov2-*-kitti layout, tiny
    "backbone_config": tiny_dinov2(),
    "backbone_out_indices": None,
    "add_projection": True,
    "use_bias_in_fusion_residual": False,
    "neck_hidden_sizes": [8, 16, 24, 32],
    "fusion_hidden_size": 256,
}


def _depth_anything(version: int, kind: str) -> T.DepthAnythingConfig:
    """V1 reads the last four DINOv2 blocks, V2 evenly spaced ones."""
    out = [1, 2, 3, 4] if version == 2 else [3, 4, 5, 6]
    return T.DepthAnythingConfig(
        backbone_config=tiny_dinov2(num_hidden_layers=6, out_indices=out),
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 24, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        depth_estimation_type=kind,
        max_depth=20 if kind == "metric" else 1,
    )


def _pair(ref_model, tmp_path, seed: int = 0):
    ref = randomize(ref_model, seed).eval()
    ref.save_pretrained(str(tmp_path))
    return ref, load_model(tmp_path)


def _depth(model, x):
    with torch.no_grad():
        return model(x).predicted_depth


def _check_depth(ref, ours, x):
    r, o = _depth(ref, x), _depth(ours, x)
    assert (r > 0).float().mean() > 0.05, "depth almost all clipped: weak test"
    assert_close(o, r)
    return o


@pytest.mark.parametrize("readout", ["ignore", "add", "project"])
def test_vit_depth(tmp_path, readout):
    ref, ours = _pair(T.DPTForDepthEstimation(T.DPTConfig(**tiny_vit(readout_type=readout))),
                      tmp_path)
    assert isinstance(ours, DPTForDepthEstimation) and not ours.training
    for size in (32, 64):
        o = _check_depth(ref, ours, image(size, size, batch=2))
        assert o.shape == (2, size, size)


def test_vit_hidden_states_and_unsorted_out_indices(tmp_path):
    """The reference selects layers in layer order, whatever the list order says."""
    cfg = T.DPTConfig(**tiny_vit(backbone_out_indices=[3, 0, 2, 1], num_hidden_layers=5))
    ref, ours = _pair(T.DPTForDepthEstimation(cfg), tmp_path)
    x = image(64, 64)
    _check_depth(ref, ours, x)
    with torch.no_grad():
        r = ref(x, output_hidden_states=True).hidden_states
        o = ours(x, output_hidden_states=True).hidden_states
    assert len(o) == len(r) == 6
    for a, b in zip(o, r):
        assert_close(a, b)


@pytest.mark.parametrize("hybrid", [False, True])
def test_bare_model_outputs(tmp_path, hybrid):
    cfg = T.DPTConfig(**(HYBRID if hybrid else tiny_vit(pooler_output_size=24)))
    ref, ours = _pair(T.DPTModel(cfg), tmp_path)
    assert isinstance(ours, DPTModel) and ours.config.task == "features"
    size = 384 if hybrid else 64
    x = image(size, size)
    with torch.no_grad():
        r = ref(x, output_hidden_states=True)
        o = ours(x, output_hidden_states=True)
    assert_close(o.last_hidden_state, r.last_hidden_state)
    assert_close(o.pooler_output, r.pooler_output)
    assert len(o.hidden_states) == len(r.hidden_states)
    for a, b in zip(o.hidden_states, r.hidden_states):
        assert_close(a, b)
    if hybrid:
        assert len(o.intermediate_activations) == 2
        for a, b in zip(o.intermediate_activations, r.intermediate_activations):
            assert_close(a, b)
    else:
        assert o.intermediate_activations is r.intermediate_activations is None


def test_hybrid_depth_at_384(tmp_path):
    ref, ours = _pair(T.DPTForDepthEstimation(T.DPTConfig(**HYBRID)), tmp_path)
    o = _check_depth(ref, ours, image(384, 384))
    assert o.shape == (1, 384, 384)


def test_dpt_dinov2_metric_non_square(tmp_path):
    ref, ours = _pair(T.DPTForDepthEstimation(T.DPTConfig(**DPT_DINOV2)), tmp_path)
    assert ours.config.is_metric
    for h, w in ((28, 42), (42, 28)):
        _check_depth(ref, ours, image(h, w))


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("kind", ["relative", "metric"])
def test_depth_anything(tmp_path, version, kind):
    ref, ours = _pair(T.DepthAnythingForDepthEstimation(_depth_anything(version, kind)),
                      tmp_path)
    assert isinstance(ours, DepthAnythingForDepthEstimation)
    assert ours.config.is_metric is (kind == "metric")
    for h, w in ((42, 56), (56, 28)):
        o = _check_depth(ref, ours, image(h, w, batch=2))
        assert o.shape == (2, h, w)
    if kind == "metric":
        assert 0 < o.min() and o.max() < 20


def _reference_aux(ref, x):
    """transformers computes auxiliary logits but no longer returns them: capture them."""
    seen = []
    handle = ref.auxiliary_head.register_forward_hook(lambda m, i, out: seen.append(out))
    with torch.no_grad():
        out = ref(x)
    handle.remove()
    return out, seen[0]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_segmentation_logits_auxiliary_and_loss(tmp_path, batch_norm):
    cfg = T.DPTConfig(**tiny_vit(num_labels=5, use_batch_norm_in_fusion_residual=batch_norm,
                                 semantic_loss_ignore_index=4, auxiliary_loss_weight=0.7))
    ref, ours = _pair(T.DPTForSemanticSegmentation(cfg), tmp_path)
    assert isinstance(ours, DPTForSemanticSegmentation) and ours.config.task == "segmentation"
    x = image(64, 64, batch=2)
    r, r_aux = _reference_aux(ref, x)
    with torch.no_grad():
        o = ours(x)
    assert_close(o.logits, r.logits)
    assert_close(o.auxiliary_logits, r_aux)
    assert o.loss is None
    labels = torch.randint(0, 5, (2, 50, 70), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_close(ours(x, labels=labels).loss, ref(x, labels=labels).loss)


def test_segmentation_without_auxiliary_head(tmp_path):
    """The reference cannot compute a loss here (it uses the missing auxiliary logits);
    ours is the plain cross-entropy of the upsampled reference logits."""
    cfg = T.DPTConfig(**tiny_vit(num_labels=3, use_auxiliary_head=False))
    ref, ours = _pair(T.DPTForSemanticSegmentation(cfg), tmp_path)
    x = image(64, 64)
    labels = torch.randint(0, 3, (1, 64, 64), generator=torch.Generator().manual_seed(2))
    labels[:, :8] = 255
    with torch.no_grad():
        o = ours(x, labels=labels)
        r = ref(x).logits
    assert o.auxiliary_logits is None
    up = F.interpolate(r, size=(64, 64), mode="bilinear", align_corners=False)
    assert_close(o.loss, F.cross_entropy(up, labels, ignore_index=255))


def test_segmentation_single_label_loss_rejected_like_reference(tmp_path):
    cfg = T.DPTConfig(**tiny_vit(num_labels=1))
    ref, ours = _pair(T.DPTForSemanticSegmentation(cfg), tmp_path)
    x, labels = image(64, 64), torch.zeros(1, 64, 64, dtype=torch.long)
    for model in (ref, ours):
        with pytest.raises(ValueError, match="greater than one"):
            model(x, labels=labels)
