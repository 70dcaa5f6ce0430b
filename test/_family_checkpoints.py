"""Small random-weight checkpoints of the Depth Anything 3 and Depth Pro families, written
by our own save_pretrained (official DA3 layout; transformers' Depth Pro layout), tuned so
their outputs exercise the pipeline: a known share of sky for DA3, a field of view near
60 degrees and inverse depth above the clamp for Depth Pro. No oracle needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from _model_util import randomize

DA3_NET = {"name": "vits", "out_layers": [2, 5, 8, 11], "alt_start": -1,
           "qknorm_start": -1, "rope_start": -1, "cat_token": False}
DA3_HEAD = {"dim_in": 384, "output_dim": 1, "features": 64, "out_channels": [48, 96, 192, 384]}
SKY_FRACTION = 0.3  # of gradient_image(480, 640)
FOV_DEG = 60.0


def gradient_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth RGB test image (uint8): horizontal / vertical ramps and a texture."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * y + seed) % 256],
                   -1)
    return rgb.astype(np.uint8)


def da3_checkpoint(directory: Path, name: str = "da3metric-large") -> Path:
    from dpt_ros.model import (
        DepthAnything3Config,
        DepthAnything3ForDepthEstimation,
        DepthAnything3ImageProcessor,
    )

    config = DepthAnything3Config.from_dict({"model_name": name, "net": DA3_NET,
                                             "head": DA3_HEAD})
    model = randomize(DepthAnything3ForDepthEstimation(config).eval(), seed=7)
    z = {}
    hook = model.head.sky_conv3.register_forward_hook(lambda m, i, o: z.setdefault("z", o))
    with torch.no_grad():
        model(DepthAnything3ImageProcessor().preprocess(gradient_image(480, 640)))
        hook.remove()
        # the sky head's bias moved so that SKY_FRACTION of the test image is sky
        model.head.sky_conv3.bias += 0.3 - torch.quantile(z["z"].flatten(), 1 - SKY_FRACTION)
    model.save_pretrained(directory)
    return directory


def _dinov2(hidden: int = 32, layers: int = 3) -> dict:
    return {"model_type": "dinov2", "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": 2, "patch_size": 16, "image_size": 64}


def depth_pro_checkpoint(directory: Path, fov: bool = True) -> Path:
    """Tiles of 64 px, a 256 x 256 network input."""
    from dpt_ros.model import DepthProConfig, DepthProForDepthEstimation

    config = DepthProConfig.from_dict({
        "use_fov_model": fov, "fusion_hidden_size": 16, "patch_size": 64,
        "intermediate_hook_ids": [2, 1], "intermediate_feature_dims": [16, 16],
        "scaled_images_feature_dims": [32, 32, 16], "image_model_config": _dinov2(),
        "patch_model_config": _dinov2(), "fov_model_config": _dinov2(24, 2)})
    model = randomize(DepthProForDepthEstimation(config).eval(), seed=4)
    with torch.no_grad():
        model.head.layers[-2].bias += 1.0  # inverse depth well above the 1e-4 clamp
        if fov:  # a field of view near 60 degrees that still varies from image to image
            model.fov_model.head.layers[-1].weight.mul_(0.05)
            model.fov_model.head.layers[-1].bias.fill_(FOV_DEG)
    model.save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "DepthProImageProcessorFast",
        "size": {"height": 256, "width": 256}}))
    return directory
