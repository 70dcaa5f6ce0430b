"""ZoeDepth against transformers (the oracle): the model (NYU: softplus bins; KITTI: normed
bins; NYU-KITTI: the router, each domain forced), ZoeDepthImageProcessor (padding, resize,
post-processing with padding removal and flip averaging) and the pipeline's metric depth,
all on tiny random-weight checkpoints saved with save_pretrained; fp32."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from _model_util import (
    assert_close,
    eager,
    image,
    patch_zoedepth_post_processing,
    randomize,
    tiny_zoedepth,
)

T = pytest.importorskip("transformers")

from dpt_ros.core.camera.geometry import Intrinsics  # noqa: E402
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline  # noqa: E402
from dpt_ros.model import (  # noqa: E402
    AutoImageProcessor,
    ConfigError,
    ZoeDepthConfig,
    ZoeDepthForDepthEstimation,
    ZoeDepthImageProcessor,
    load_model,
)

# Hub preprocessor_config.json of Intel/zoedepth-* (ZoeDepthImageProcessor() at conversion).
HUB_PROCESSOR = {
    "image_processor_type": "ZoeDepthImageProcessor", "do_resize": True,
    "size": {"height": 384, "width": 512}, "keep_aspect_ratio": True, "ensure_multiple_of": 32,
    "resample": 2, "do_rescale": True, "rescale_factor": 0.00392156862745098,
    "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "do_pad": True,
}
PROCESSOR_CONFIGS = {
    "hub": HUB_PROCESSOR,
    "bicubic_stretch": {**HUB_PROCESSOR, "resample": 3, "keep_aspect_ratio": False,
                        "size": {"height": 256, "width": 320}},
    "no_pad_imagenet": {**HUB_PROCESSOR, "do_pad": False, "image_mean": [0.485, 0.456, 0.406],
                        "image_std": [0.229, 0.224, 0.225]},
    "class_defaults": {},  # transformers' ensure_multiple_of default is 1/32
}
FRAMES = [(480, 640), (333, 517), (720, 1280)]
# Measured: bit-identical to ZoeDepthImageProcessorPil (same float32 torch resize, same
# rescale and normalise arithmetic), so the test asserts torch.equal.


def _pair(tmp_path, router: bool = False, **kw):
    ref = eager(randomize(T.ZoeDepthForDepthEstimation(
        T.ZoeDepthConfig(**tiny_zoedepth(router, **kw))))).eval()
    ref.save_pretrained(str(tmp_path))
    return ref, load_model(tmp_path)


def _run(model, x, **kw):
    with torch.no_grad():
        return model(x, **kw)


@pytest.mark.parametrize("bins", ["softplus", "normed"])  # NYU and KITTI layouts
def test_single_head_metric_depth(tmp_path, bins):
    ref, ours = _pair(tmp_path, bin_centers_type=bins)
    assert isinstance(ours, ZoeDepthForDepthEstimation) and ours.config.is_metric
    for size in ((64, 64), (32, 96)):
        x = image(*size, batch=2)
        r, o = _run(ref, x), _run(ours, x)
        assert_close(o.predicted_depth, r.predicted_depth)
        assert o.predicted_depth.shape == (2, *size) and o.domain_logits is None
        assert o.predicted_depth.min() > 0
        if bins == "normed":  # bounded by the bins' range
            assert o.predicted_depth.max() <= 10.0


@pytest.mark.parametrize("domain", [0, 1])
def test_router_picks_one_domain_per_batch(tmp_path, domain):
    """NYU-KITTI: the classifier's vote (summed over the batch) selects the head; each
    domain is forced in turn through the classifier bias, in both models alike."""
    ref, ours = _pair(tmp_path, router=True)
    for model in (ref, ours):
        with torch.no_grad():
            model.metric_head.mlp_classifier.linear2.bias.copy_(
                torch.tensor([50.0, -50.0] if domain == 0 else [-50.0, 50.0]))
    x = image(64, 96, batch=2)
    r, o = _run(ref, x), _run(ours, x)
    assert_close(o.domain_logits, r.domain_logits)
    assert int(o.domain_logits.sum(0).argmax()) == domain
    assert_close(o.predicted_depth, r.predicted_depth)
    with torch.no_grad():
        ours.metric_head.mlp_classifier.linear2.bias.neg_()
    other = _run(ours, x)
    assert not torch.allclose(other.predicted_depth, o.predicted_depth), "domains equal?"


def test_hidden_states_attentions_tuple_and_labels(tmp_path):
    ref, ours = _pair(tmp_path, router=True)
    x = image(64, 64)
    kw = dict(output_hidden_states=True, output_attentions=True)
    r, o = _run(ref, x, **kw), _run(ours, x, **kw)
    for got, want in ((o.hidden_states, r.hidden_states), (o.attentions, r.attentions)):
        assert len(got) == len(want) == (5 if got is o.hidden_states else 4)
        for a, b in zip(got, want):
            assert_close(a, b)
    mine, theirs = _run(ours, x, return_dict=False), _run(ref, x, return_dict=False)
    assert len(mine) == len(theirs) == 2  # (predicted_depth, domain_logits)
    assert_close(mine[1], theirs[1])
    for model in (ref, ours):
        with pytest.raises(NotImplementedError):
            model(x, labels=torch.zeros(1, 64, 64))


def test_config_round_trip_and_defaults():
    ref = T.ZoeDepthConfig(**tiny_zoedepth(router=True))
    ours = ZoeDepthConfig.from_dict(ref.to_dict())
    assert ZoeDepthConfig.from_dict(ours.to_dict()).to_dict() == ours.to_dict()
    assert ours.has_router and ours.max_depth == 80.0 and ours.patch_size == 16
    defaults, reference = ZoeDepthConfig(), T.ZoeDepthConfig()
    for name in ("bin_configurations", "num_attractors", "bin_embedding_dim", "min_temp",
                 "max_temp", "bin_centers_type", "fusion_hidden_size", "num_relative_features"):
        want = getattr(reference, name)
        assert getattr(defaults, name) == (list(want) if isinstance(want, tuple) else want)
    assert defaults.backbone_config.num_hidden_layers == reference.backbone_config.num_hidden_layers
    assert defaults.backbone_config.out_features == reference.backbone_config.out_features


@pytest.mark.parametrize(("change", "field"), [
    ({"readout_type": "add"}, "readout_type"),
    ({"num_attractors": [16, 8, 4]}, "num_attractors"),
    ({"bottleneck_features": 16}, "bottleneck_features"),
    ({"bin_centers_type": "hybrid2"}, "bin_centers_type"),
    ({"patch_transformer_hidden_size": 64}, "patch_transformer_hidden_size"),
    ({"bin_configurations": [{"name": "a", "n_bins": 4, "min_depth": 0.1, "max_depth": 1}] * 3},
     "bin_configurations"),
    ({"backbone_config": {"model_type": "dinov2"}}, "backbone_config.model_type"),
    ({"reassemble_factors": [4, 2, 1, 0.3]}, "reassemble_factors"),
    ({"reassemble_factors": [4, 2, 1]}, "reassemble_factors"),
    ({"reassemble_factors": [4, 2, True, 0.5]}, "reassemble_factors"),
    ({"architectures": ["DPTForDepthEstimation"]}, "architectures"),
    ({"architectures": []}, "architectures"),
    ({"backbone": "beitl16_384"}, "backbone"),
    ({"use_timm_backbone": True}, "backbone"),
    ({"batch_norm_eps": 0}, "batch_norm_eps"),
    ({"num_relative_features": 0}, "num_relative_features"),
    ({"attractor_alpha": -1}, "attractor_alpha"),
])
def test_invalid_configs_name_the_field(change, field):
    d = {**T.ZoeDepthConfig(**tiny_zoedepth(router=True)).to_dict(), **change}
    with pytest.raises(ConfigError, match=f"field {field}"):
        ZoeDepthConfig.from_dict(d)


# ---------------------------------------------------------------- the image processor


def _frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([255 * xx / width, 255 * yy / height, 128 + 60 * np.sin(xx / 9.0)], -1)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def _oracle(config: dict):
    from transformers import ZoeDepthImageProcessorPil

    return ZoeDepthImageProcessorPil(
        **{k: v for k, v in config.items() if k != "image_processor_type"})


@pytest.fixture
def oracle_post(monkeypatch):
    patch_zoedepth_post_processing(monkeypatch)


@pytest.mark.parametrize("name", list(PROCESSOR_CONFIGS))
def test_preprocess_matches_reference(name):
    config = PROCESSOR_CONFIGS[name]
    ours, ref = ZoeDepthImageProcessor.from_dict(config), _oracle(config)
    for i, (h, w) in enumerate(FRAMES):
        img = _frame(h, w, seed=i)
        want = ref(img, return_tensors="pt").pixel_values
        got = ours(images=img, return_tensors="pt")["pixel_values"]
        assert got.shape == want.shape, (name, h, w)
        assert torch.equal(got, want), (name, h, w)
        assert ours.output_size(h, w) == tuple(want.shape[2:])
    batch = np.stack([_frame(*FRAMES[0], seed=s) for s in (1, 2)])
    assert torch.equal(ours.preprocess(batch)[1], ours.preprocess(batch[1])[0])


def test_to_dict_round_trips_through_transformers():
    ours = ZoeDepthImageProcessor.from_dict(HUB_PROCESSOR)
    again = _oracle(ours.to_dict()).to_dict()
    assert ZoeDepthImageProcessor.from_dict(again) == ours
    assert ours.to_dict()["image_processor_type"] == "ZoeDepthImageProcessor"


@pytest.mark.parametrize("kw", [
    {"source_sizes": [(480, 640), (333, 517)]},
    {"source_sizes": [(480, 640), (333, 517)], "target_sizes": [(240, 320), (100, 90)]},
    {"source_sizes": [(480, 640), (480, 640)], "flipped": True},
    {"source_sizes": [(480, 640), (333, 517)], "do_remove_padding": False},
    {"target_sizes": [(50, 60), (70, 80)], "do_remove_padding": False},
])
def test_post_process_matches_reference(oracle_post, kw):
    ours, ref = ZoeDepthImageProcessor.from_dict(HUB_PROCESSOR), _oracle(HUB_PROCESSOR)
    g = torch.Generator().manual_seed(3)
    outputs = types.SimpleNamespace(predicted_depth=torch.rand(2, 384, 512, generator=g) * 9)
    flipped = types.SimpleNamespace(predicted_depth=torch.rand(2, 384, 512, generator=g) * 9)
    args = {k: v for k, v in kw.items() if k != "flipped"}
    if kw.get("flipped"):
        args["outputs_flipped"] = flipped
    want = ref.post_process_depth_estimation(outputs, **args)
    got = ours.post_process_depth_estimation(outputs, **args)
    for a, b in zip(got, want):
        assert_close(a["predicted_depth"], b["predicted_depth"], tol=1e-6)
    with pytest.raises(ValueError, match="source_sizes"):
        ours.post_process_depth_estimation(outputs)


def test_pipeline_publishes_reference_metric_depth(tmp_path, oracle_post):
    """The node's pipeline on a ZoeDepth checkpoint: metric depth on the frame's grid equals
    transformers' processor -> model -> post-processing (padding removed); points out."""
    ref, _ = _pair(tmp_path)
    proc = {**HUB_PROCESSOR, "size": {"height": 64, "width": 96}}
    _oracle(proc).save_pretrained(str(tmp_path))
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), ZoeDepthImageProcessor)
    rgb = _frame(120, 160, seed=5)
    pixel_values = _oracle(proc)(rgb, return_tensors="pt").pixel_values
    with torch.no_grad():
        want = _oracle(proc).post_process_depth_estimation(
            ref(pixel_values), source_sizes=[rgb.shape[:2]])[0]["predicted_depth"]
    pipe = Pipeline(depth_model=str(tmp_path), device="cpu")
    assert pipe.model_is_metric and pipe.depth_is_metric
    result = pipe.process([Frame(rgb, Intrinsics.from_hfov(160, 120, 60.0))],
                          {"depth", "points", "depth_colorized"})[0]
    assert result.depth.shape == (120, 160)
    assert_close(torch.from_numpy(result.depth), want)
    assert result.points is not None and result.relative is None
