"""Sizes the reference rejects: non-square ViT inputs (its neck assumes a square token grid)
and any hybrid input but 384x384. Ours must run, keep the aspect ratio, and agree with the
reference's own modules driven along the equivalent path (patch grid passed explicitly,
position embeddings resampled by the reference's `_resize_pos_embed`)."""

from __future__ import annotations

import pytest
import torch

T = pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")

from _model_util import HYBRID, assert_close, image, randomize, tiny_bit, tiny_dinov2, tiny_vit  # noqa: E402

from dpt_ros.model import load_model  # noqa: E402


def _pair(ref_model, tmp_path):
    ref = randomize(ref_model).eval()
    ref.save_pretrained(str(tmp_path))
    return ref, load_model(tmp_path)


def _reference_neck_inputs(ref, x):
    """What DPTForDepthEstimation / DPTForSemanticSegmentation feed their neck, computed
    with the reference's modules but without its input-size restrictions."""
    cfg = ref.config
    if cfg.is_hybrid:
        emb = ref.dpt.embeddings(x, interpolate_pos_encoding=True)
        states, h = [emb.last_hidden_states], emb.last_hidden_states
        for layer in ref.dpt.encoder.layer:
            h = layer(h)
            states.append(h)
        wanted = cfg.backbone_out_indices[2:]
        maps = list(emb.intermediate_activations)
    else:
        states = ref.dpt(x, output_hidden_states=True).hidden_states
        wanted, maps = cfg.backbone_out_indices, []
    return maps + [s for i, s in enumerate(states[1:]) if i in wanted]


def _reference_path(ref, x):
    p = ref.config.patch_size
    with torch.no_grad():
        fused = ref.neck(_reference_neck_inputs(ref, x), x.shape[2] // p, x.shape[3] // p)
        return ref.head(fused), fused


@pytest.mark.parametrize("readout", ["ignore", "add", "project"])
def test_vit_non_square_matches_reference_modules(tmp_path, readout):
    ref, ours = _pair(T.DPTForDepthEstimation(T.DPTConfig(**tiny_vit(readout_type=readout))),
                      tmp_path)
    for h, w in ((64, 96), (48, 80)):
        x = image(h, w)
        with pytest.raises(RuntimeError):  # the reference's forward assumes a square grid
            ref(x)
        with torch.no_grad():
            o = ours(x).predicted_depth
        # DPT's x0.5 deepest stage rounds an odd patch grid up (as the reference does for
        # square odd grids): output = 32 * ceil(size / 32)
        assert o.shape == (1, 32 * -(-h // 32), 32 * -(-w // 32))
        assert_close(o, _reference_path(ref, x)[0])


def test_vit_480x640_keeps_aspect_ratio(tmp_path):
    ref, ours = _pair(T.DPTForDepthEstimation(T.DPTConfig(**tiny_vit())), tmp_path)
    x = image(480, 640)
    with torch.no_grad():
        o = ours(x).predicted_depth
    assert o.shape == (1, 480, 640)
    assert_close(o, _reference_path(ref, x)[0])


def test_segmentation_non_square(tmp_path):
    cfg = T.DPTConfig(**tiny_vit(num_labels=4, use_batch_norm_in_fusion_residual=True))
    ref, ours = _pair(T.DPTForSemanticSegmentation(cfg), tmp_path)
    x = image(64, 32, batch=2)
    with torch.no_grad():
        o = ours(x)
    logits, fused = _reference_path(ref, x)
    assert o.logits.shape == (2, 4, 64, 32)
    assert_close(o.logits, logits)
    assert_close(o.auxiliary_logits, ref.auxiliary_head(fused[-1]).detach())


@pytest.mark.parametrize(("h", "w"), [(256, 256), (192, 320)])
def test_hybrid_other_sizes(tmp_path, h, w):
    ref, ours = _pair(T.DPTForDepthEstimation(T.DPTConfig(**HYBRID)), tmp_path)
    x = image(h, w)
    with pytest.raises(ValueError, match="doesn't match"):
        ref(x)
    with torch.no_grad():
        o = ours(x).predicted_depth
        maps = _reference_neck_inputs(ref, x)[:2]
    assert o.shape == (1, h, w)
    assert_close(o, _reference_path(ref, x)[0])
    # the fixture really runs BiT: the first two neck inputs are its 1/4 and 1/8 maps
    widths = tiny_bit()["hidden_sizes"]
    assert [tuple(m.shape[1:]) for m in maps] == [(widths[0], h // 4, w // 4),
                                                  (widths[1], h // 8, w // 8)]


def test_dinov2_backbones_keep_aspect_ratio(tmp_path):
    """DINOv2 variants are exact at every size (covered in test_model_parity); here only the
    output geometry at a camera-like 3:4 size."""
    da = T.DepthAnythingConfig(backbone_config=tiny_dinov2(), reassemble_hidden_size=32,
                               neck_hidden_sizes=[8, 8, 8, 8], fusion_hidden_size=8,
                               head_hidden_size=8)
    _, ours = _pair(T.DepthAnythingForDepthEstimation(da), tmp_path / "da")
    x = image(476, 644)  # 34 x 46 patches of 14
    with torch.no_grad():
        assert ours(x).predicted_depth.shape == (1, 476, 644)
    dpt = T.DPTConfig(backbone_config=tiny_dinov2(), backbone_out_indices=None,
                      neck_hidden_sizes=[8, 8, 8, 8], fusion_hidden_size=8)
    _, ours = _pair(T.DPTForDepthEstimation(dpt), tmp_path / "dpt")
    with torch.no_grad():
        d = ours(image(252, 336)).predicted_depth  # 18 x 24 patches, both even
    assert d.shape == (1, 288, 384) and 288 / 384 == 252 / 336
