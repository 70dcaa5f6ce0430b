"""Depth Pro (DepthProForDepthEstimation + FOV model, DepthProImageProcessor) against
transformers on the same random weights, loaded from the file transformers writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

T = pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")

from _model_util import assert_close, eager, image, randomize  # noqa: E402

from dpt_ros.model import load_model, load_processor  # noqa: E402
from dpt_ros.model.depth_pro.modeling import DepthProForDepthEstimation  # noqa: E402


def _dinov2(hidden: int = 32, layers: int = 3, heads: int = 2) -> dict:
    return {"model_type": "dinov2", "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "patch_size": 16, "image_size": 64}


def small_config(fov: bool = True) -> dict:
    """Tiles of 64 px (4 x 4 tokens): the smallest input is 256 (ratio 0.25 x 256 = 64)."""
    return T.DepthProConfig(
        use_fov_model=fov, fusion_hidden_size=16, patch_size=64,
        intermediate_hook_ids=[2, 1], intermediate_feature_dims=[16, 16],
        scaled_images_feature_dims=[32, 32, 16],
        image_model_config=_dinov2(), patch_model_config=_dinov2(),
        fov_model_config=_dinov2(24, 2, 2)).to_dict()


PROCESSOR = {"image_processor_type": "DepthProImageProcessorFast", "do_resize": True,
             "size": {"height": 256, "width": 256}, "resample": 2, "antialias": False,
             "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
             "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    directory = tmp_path_factory.mktemp("depth_pro")
    config = T.DepthProConfig.from_dict(small_config())
    ref = eager(randomize(T.DepthProForDepthEstimation(config).eval(), seed=11))
    ref.save_pretrained(str(directory))
    (directory / "preprocessor_config.json").write_text(json.dumps(PROCESSOR))
    return ref, load_model(directory), directory


@pytest.mark.parametrize("size", [256, 384, 512])
def test_depth_and_fov_match_transformers(pair, size):
    ref, ours, _ = pair
    assert isinstance(ours, DepthProForDepthEstimation)
    x = image(size, size, batch=2)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert got.predicted_depth.shape == expected.predicted_depth.shape
    assert_close(got.predicted_depth, expected.predicted_depth)
    assert_close(got.field_of_view, expected.field_of_view)


def _reference_processor(directory):
    """transformers' DepthProImageProcessor when it can be built (it needs torchvision);
    else its two steps written out from its source (transformers 5: rescale and normalise
    fused as (x - mean*255) / (std*255) in float32, then torchvision's resize of the float
    tensor = F.interpolate(bilinear, align_corners=False, antialias=False); post-processing
    as `post_process_depth_estimation`)."""
    try:
        return T.AutoImageProcessor.from_pretrained(str(directory))
    except ImportError:
        pass

    class Reference:
        def __call__(self, images, return_tensors):
            x = torch.from_numpy(images).permute(2, 0, 1)[None].float()
            x = (x - 127.5) / 127.5
            x = torch.nn.functional.interpolate(x, size=(256, 256), mode="bilinear",
                                                align_corners=False, antialias=False)
            return {"pixel_values": x}

        def post_process_depth_estimation(self, outputs, target_sizes):
            out = []
            for depth, fov, size in zip(outputs.predicted_depth, outputs.field_of_view,
                                        target_sizes):
                width = size[1]
                focal = 0.5 * width / torch.tan(0.5 * torch.deg2rad(fov))
                depth = depth * width / focal
                depth = torch.nn.functional.interpolate(depth[None, None], size=size,
                                                        mode="bilinear").squeeze()
                out.append({"predicted_depth": 1.0 / torch.clamp(depth, min=1e-4, max=1e4),
                            "field_of_view": fov, "focal_length": focal})
            return out

    return Reference()


@pytest.mark.parametrize("frame", [(240, 320), (300, 300), (480, 270)])
def test_processor_and_post_processing_match_transformers(pair, frame):
    ref, ours, directory = pair
    theirs = _reference_processor(directory)
    proc = load_processor(directory)
    rgb = np.random.default_rng(frame[0]).integers(0, 256, (*frame, 3), dtype=np.uint8)
    a = theirs(images=rgb, return_tensors="pt")["pixel_values"]
    b = proc(images=rgb, return_tensors="pt").pixel_values
    assert tuple(b.shape) == tuple(a.shape) == (1, 3, 256, 256)
    assert float((a - b).abs().max()) <= 1e-5
    with torch.no_grad():
        out_ref, out = ref(pixel_values=a), ours(b)
    post_ref = theirs.post_process_depth_estimation(out_ref, target_sizes=[frame])[0]
    post = proc.post_process_depth_estimation(out, target_sizes=[frame])[0]
    assert_close(post["predicted_depth"], post_ref["predicted_depth"])
    assert_close(post["focal_length"], post_ref["focal_length"])


def test_without_fov_model(tmp_path):
    config = T.DepthProConfig.from_dict(small_config(fov=False))
    ref = eager(randomize(T.DepthProForDepthEstimation(config).eval(), seed=2))
    ref.save_pretrained(str(tmp_path))
    ours = DepthProForDepthEstimation.from_pretrained(tmp_path)
    assert ours.fov_model is None and not ours.config.has_fov
    x = image(256, 256)
    with torch.no_grad():
        assert_close(ours(x).predicted_depth, ref(x).predicted_depth)
        assert ours(x).field_of_view is None
