"""transformers' forward flags on every model class (ViT / hybrid / DINOv2 DPT, Depth
Anything, segmentation, the bare DPTModel): output_hidden_states and output_attentions equal
the reference's (its eager attention, the one that returns weights), return_dict=False gives
its tuple, labels behave as in the reference; and from_pretrained / save_pretrained round-trip
through transformers for each class."""

from __future__ import annotations

import pytest
import torch
from _model_util import (
    assert_close,
    eager,
    image,
    randomize,
    tiny_beit,
    tiny_bit,
    tiny_dinov2,
    tiny_swinv2,
    tiny_vit,
    tiny_zoedepth,
)

T = pytest.importorskip("transformers")

import dpt_ros.model as ours_api  # noqa: E402

HYBRID = tiny_vit(is_hybrid=True, backbone_config=tiny_bit(),
                  backbone_featmap_shape=[1, 64, 24, 24], neck_hidden_sizes=[16, 32, 32, 32],
                  reassemble_factors=[1, 1, 1, 0.5], image_size=384)
DINO = {"backbone_config": tiny_dinov2(), "backbone_out_indices": None, "add_projection": True,
        "neck_hidden_sizes": [8, 16, 24, 32], "fusion_hidden_size": 256}
DEPTH_ANYTHING = {"backbone_config": tiny_dinov2(num_hidden_layers=6),
                  "reassemble_hidden_size": 32, "neck_hidden_sizes": [8, 16, 24, 32],
                  "fusion_hidden_size": 16, "head_hidden_size": 8}
# (class name, transformers config, input size, main output)
CASES = {
    "vit-depth": ("DPTForDepthEstimation", lambda: T.DPTConfig(**tiny_vit()), (64, 64),
                  "predicted_depth"),
    "hybrid-depth": ("DPTForDepthEstimation", lambda: T.DPTConfig(**HYBRID), (384, 384),
                     "predicted_depth"),
    "dinov2-depth": ("DPTForDepthEstimation", lambda: T.DPTConfig(**DINO), (56, 56),
                     "predicted_depth"),
    "vit-seg": ("DPTForSemanticSegmentation", lambda: T.DPTConfig(**tiny_vit(num_labels=3)),
                (64, 64), "logits"),
    "bare": ("DPTModel", lambda: T.DPTConfig(**tiny_vit()), (64, 64), "last_hidden_state"),
    "depth-anything": ("DepthAnythingForDepthEstimation",
                       lambda: T.DepthAnythingConfig(**DEPTH_ANYTHING), (56, 42),
                       "predicted_depth"),
}


def _pair(tmp_path, name: str):
    cls_name, config, size, main = CASES[name]
    ref = eager(randomize(getattr(T, cls_name)(config()))).eval()
    ref.save_pretrained(str(tmp_path))
    ours = getattr(ours_api, cls_name).from_pretrained(tmp_path)
    assert type(ours) is getattr(ours_api, cls_name) and not ours.training
    return ref, ours, image(*size), main


@pytest.mark.parametrize("name", list(CASES))
def test_hidden_states_attentions_and_tuples(tmp_path, name):
    ref, ours, x, main = _pair(tmp_path, name)
    kw = dict(output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        r, o = ref(x, **kw), ours(x, **kw)
        r_plain, o_plain = ref(x, return_dict=False), ours(x, return_dict=False)
    assert_close(getattr(o, main), getattr(r, main))
    for field in ("hidden_states", "attentions"):
        got, want = getattr(o, field), getattr(r, field)
        assert len(got) == len(want) > 0, field
        for a, b in zip(got, want):
            assert_close(a, b)
    assert isinstance(o_plain, tuple) and len(o_plain) == len(r_plain)
    for a, b in zip(o_plain, r_plain):
        assert_close(a, b, tol=1e-5)  # SDPA (plain) vs eager (flags) softmax: ~1e-7 apart
    assert o[main] is getattr(o, main) and o[0] is getattr(o, main)


@pytest.mark.parametrize("name", ["vit-depth", "dinov2-depth", "depth-anything"])
def test_depth_models_reject_labels_like_reference(tmp_path, name):
    ref, ours, x, _ = _pair(tmp_path, name)
    for model in (ref, ours):
        with pytest.raises(NotImplementedError, match="Training is not implemented"):
            model(x, labels=torch.zeros(1, *x.shape[2:]))


def _zoe():
    return T.ZoeDepthConfig(**tiny_zoedepth())


@pytest.mark.parametrize(("cls_name", "config"), [
    ("DPTForDepthEstimation", lambda: T.DPTConfig(**tiny_vit())),
    ("DPTForSemanticSegmentation", lambda: T.DPTConfig(**tiny_vit(num_labels=4))),
    ("DPTModel", lambda: T.DPTConfig(**tiny_vit(pooler_output_size=24))),
    ("DepthAnythingForDepthEstimation", lambda: T.DepthAnythingConfig(**DEPTH_ANYTHING)),
    ("DPTForDepthEstimation", lambda: T.DPTConfig(backbone_config=tiny_beit(),
                                                  neck_hidden_sizes=[8, 16, 24, 32])),
    ("DPTForDepthEstimation", lambda: T.DPTConfig(backbone_config=tiny_swinv2(),
                                                  neck_hidden_sizes=[8, 16, 32, 64])),
    ("ZoeDepthForDepthEstimation", _zoe),
])
def test_save_pretrained_round_trips_through_transformers(tmp_path, cls_name, config):
    """ours.from_pretrained(transformers' dir) -> ours.save_pretrained -> transformers'
    from_pretrained: the same model (outputs equal)."""
    ref = randomize(getattr(T, cls_name)(config())).eval()
    ref.save_pretrained(str(tmp_path / "ref"))
    ours = getattr(ours_api, cls_name).from_pretrained(tmp_path / "ref")
    ours.save_pretrained(tmp_path / "ours")
    back = getattr(T, cls_name).from_pretrained(str(tmp_path / "ours")).eval()
    x = image(64, 64) if "DepthAnything" not in cls_name else image(56, 56)
    with torch.no_grad():
        want, got = ref(x).to_tuple()[0], back(x).to_tuple()[0]
    assert torch.equal(got, want)


def test_bare_model_from_a_depth_checkpoint_like_the_seed(tmp_path, caplog):
    """DPTModel.from_pretrained on a DPTForDepthEstimation checkpoint (what the seed's
    feature-extraction example does with Intel/dpt-large): the encoder weights load, the
    pooler the checkpoint lacks is initialised fresh and named in a warning."""
    ref = randomize(T.DPTForDepthEstimation(T.DPTConfig(**tiny_vit()))).eval()
    ref.save_pretrained(str(tmp_path))
    ours = ours_api.DPTModel.from_pretrained(tmp_path)
    assert "pooler" in caplog.text and "newly initialised" in caplog.text
    x = image(64, 64)
    with torch.no_grad():
        want = ref.dpt(x).last_hidden_state
        got = ours(x).last_hidden_state
    assert_close(got, want)
    with pytest.raises(ours_api.ModelLoadError, match="DPTForDepthEstimation"):
        ours_api.ZoeDepthForDepthEstimation.from_pretrained(tmp_path)
