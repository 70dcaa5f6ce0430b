"""Prompt Depth Anything against transformers' PromptDepthAnythingForDepthEstimation and its
image processor (the oracle), on random weights saved with save_pretrained: tiny configs at
many sizes, the real vits config end to end, the real vitl config's keys and shapes (meta
device: no 1.3 GB of weights written on a 2-core machine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

T = pytest.importorskip("transformers")

from _model_util import assert_close, image, randomize, tiny_dinov2  # noqa: E402

from dpt_ros.model import PromptDepthAnythingForDepthEstimation, load_model  # noqa: E402
from dpt_ros.model.auto import load_processor  # noqa: E402
from dpt_ros.model.depth_anything.image_processing_prompt import (  # noqa: E402
    PromptDepthAnythingImageProcessor,
)
from dpt_ros.model.dpt.configuration import DPTConfig  # noqa: E402

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _tiny(**overrides) -> T.PromptDepthAnythingConfig:
    d = dict(backbone_config=tiny_dinov2(), reassemble_hidden_size=32,
             neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16, head_hidden_size=8,
             depth_estimation_type="metric", max_depth=None)
    d.update(overrides)
    return T.PromptDepthAnythingConfig(**d)


def _real(size: str) -> T.PromptDepthAnythingConfig:
    """The configs of depth-anything/prompt-depth-anything-{vits,vitl}-hf, as transformers'
    conversion script builds them (facebook/dinov2-{small,large} backbones)."""
    if size == "vits":
        backbone = T.Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                  out_indices=[3, 6, 9, 12])
        fusion, neck = 64, [48, 96, 192, 384]
    else:
        backbone = T.Dinov2Config(hidden_size=1024, num_hidden_layers=24,
                                  num_attention_heads=16, out_indices=[5, 12, 18, 24])
        fusion, neck = 256, [256, 512, 1024, 1024]
    backbone.image_size, backbone.patch_size = 518, 14
    backbone.apply_layernorm, backbone.reshape_hidden_states = True, False
    return T.PromptDepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=backbone.hidden_size, patch_size=14,
        fusion_hidden_size=fusion, neck_hidden_sizes=neck, depth_estimation_type="metric",
        max_depth=None)


def _pair(config, tmp_path, seed: int = 0):
    ref = randomize(T.PromptDepthAnythingForDepthEstimation(config), seed).eval()
    ref.save_pretrained(str(tmp_path))
    return ref, load_model(tmp_path)


def _prompt(batch: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    """Metric prompts with a different range per image (so per-image normalisation shows)."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.arange(batch, dtype=torch.float32).view(-1, 1, 1, 1) + 0.5
    return lo + (1.0 + lo) * torch.rand(batch, 1, h, w, generator=g)


def _depth(model, x, prompt=None):
    with torch.no_grad():
        return model(x, prompt_depth=prompt).predicted_depth


def _check(ref, ours, x, prompt):
    r, o = _depth(ref, x, prompt), _depth(ours, x, prompt)
    assert r.std() > 1e-3 * r.abs().max(), "flat reference output: the comparison is weak"
    return assert_close(o, r)


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    return _pair(_tiny(), tmp_path_factory.mktemp("tiny_prompt_da"))


@pytest.mark.parametrize("size", [(56, 56), (70, 98), (98, 42), (71, 99)])
def test_tiny_parity_with_and_without_prompt(tiny_pair, size):
    """Any size the reference accepts: square, landscape, portrait, not a patch multiple."""
    ref, ours = tiny_pair
    assert isinstance(ours, PromptDepthAnythingForDepthEstimation)
    assert ours.config.takes_prompt and ours.config.is_metric
    x = image(*size, batch=2)
    for prompt in (_prompt(2, 9, 13), _prompt(2, *size)):
        _check(ref, ours, x, prompt)
    o = _depth(ours, x)
    assert_close(o, _depth(ref, x))
    assert ((o > 0) & (o < 1)).all(), "without a prompt: relative depth in (0, 1)"


def test_output_spans_the_prompt_range(tiny_pair):
    """The head's sigmoid is mapped onto each image's prompt [min, max]: metric output."""
    _, ours = tiny_pair
    prompt = _prompt(2, 12, 16)
    d = _depth(ours, image(56, 70, batch=2), prompt)
    for i in range(2):
        lo, hi = prompt[i].min(), prompt[i].max()
        assert (d[i] > lo).all() and (d[i] < hi).all()


def test_relative_head_and_other_indices(tmp_path):
    """A relative head (ReLU) and V1-style out indices; the reference's head reads the last
    fused map and ignores max_depth whatever the config says."""
    cfg = _tiny(backbone_config=tiny_dinov2(num_hidden_layers=6, out_indices=[3, 4, 5, 6]),
                depth_estimation_type="relative", max_depth=7, head_in_index=0)
    ref, ours = _pair(cfg, tmp_path, seed=3)
    x = image(42, 56)
    _check(ref, ours, x, _prompt(1, 6, 8))
    assert not ours.config.is_metric


def test_processor_matches_reference(tmp_path):
    """The conversion script's processor (756, multiple of 14, ImageNet stats): pixel values
    and prompt (uint16 mm, float metres with a scale override, a constant map) as the
    reference's Pillow processor makes them, read back from its saved preprocessor_config."""
    ref = T.PromptDepthAnythingImageProcessorPil(
        do_resize=True, size=756, ensure_multiple_of=14, keep_aspect_ratio=True,
        image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
    ref.save_pretrained(str(tmp_path))
    ours = load_processor(tmp_path)
    assert isinstance(ours, PromptDepthAnythingImageProcessor)
    assert ours.prompt_scale_to_meter == pytest.approx(0.001)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    cases = [
        (rng.integers(200, 8000, (48, 64)).astype(np.uint16), None),
        (rng.uniform(0.3, 6.0, (48, 64)).astype(np.float32), 1.0),
        (np.full((48, 64), 1500, np.uint16), None),
    ]
    for prompt, scale in cases:
        kwargs = {} if scale is None else {"prompt_scale_to_meter": scale}
        expected = ref(rgb, prompt_depth=prompt, return_tensors="pt", **kwargs)
        got = ours.preprocess_prompt(prompt, scale_to_meter=scale)
        assert got.dtype == torch.float32 and got.shape == expected["prompt_depth"].shape
        assert torch.equal(got, expected["prompt_depth"])
    pixels = ours.preprocess(rgb)
    assert pixels.shape == expected["pixel_values"].shape == (1, 3, 560, 756)
    assert torch.allclose(pixels, expected["pixel_values"], atol=1e-6, rtol=0)
    assert PromptDepthAnythingImageProcessor.from_dict(ours.to_dict()) == ours


def test_real_vits_config(tmp_path):
    """prompt-depth-anything-vits-hf: random weights, strict load, parity with a prompt."""
    ref, ours = _pair(_real("vits"), tmp_path)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    _check(ref, ours, image(70, 98), _prompt(1, 12, 16))


def test_real_vitl_config_keys_and_shapes(tmp_path):
    """prompt-depth-anything-vitl-hf: our model built from the reference's config.json has
    exactly the reference's tensor names and shapes (both on the meta device)."""
    cfg = _real("vitl")
    cfg.architectures = ["PromptDepthAnythingForDepthEstimation"]
    with torch.device("meta"):
        ref = T.PromptDepthAnythingForDepthEstimation(cfg)
        ours = PromptDepthAnythingForDepthEstimation(DPTConfig.from_dict(cfg.to_dict()))
    state = ref.state_dict()
    try:  # transformers 5 renames some tensors in memory; save_pretrained writes these
        from transformers.core_model_loading import revert_weight_conversion

        state = revert_weight_conversion(ref, state)
    except ImportError:
        pass
    expected = {k: tuple(v.shape) for k, v in state.items()}
    got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert got == expected
    assert sum(p.numel() for p in ours.parameters()) > 3e8
