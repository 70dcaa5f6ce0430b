"""Helpers for the model tests: tiny transformers reference models with every parameter
randomised (so no zero-initialised bias or unit norm hides a mistake), saved the Hugging Face
way and compared with ours."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

TOL = 1e-4  # max|ours - reference| <= TOL * max|reference|


def tiny_bit(**overrides) -> dict:
    """A small BiT (DPT-Hybrid layout: 3 stages, SAME padding, bottleneck)."""
    d = {
        "model_type": "bit",
        "global_padding": "same",
        "layer_type": "bottleneck",
        "depths": [1, 1, 1],
        "hidden_sizes": [16, 32, 64, 128],  # 4 widths for 3 stages, as DPT-Hybrid stores
        "embedding_size": 8,
        "num_groups": 4,
        "out_features": ["stage1", "stage2", "stage3"],
        "embedding_dynamic_padding": True,
    }
    d.update(overrides)
    return d


def tiny_dinov2(**overrides) -> dict:
    d = {
        "model_type": "dinov2",
        "hidden_size": 32,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "image_size": 56,
        "patch_size": 14,
        "out_indices": [1, 2, 3, 4],
        "reshape_hidden_states": False,
    }
    d.update(overrides)
    return d


def tiny_beit(**overrides) -> dict:
    """A 4-block BEiT, patch 16, trained grid 4x4 (64x64), per-layer relative position bias,
    the four blocks' tokens for DPT's neck (the DPT-BEiT layout)."""
    d = {
        "model_type": "beit",
        "hidden_size": 32,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "intermediate_size": 48,
        "image_size": 64,
        "patch_size": 16,
        "use_relative_position_bias": True,
        "reshape_hidden_states": False,
        "out_features": ["stage1", "stage2", "stage3", "stage4"],
    }
    d.update(overrides)
    return d


def tiny_swinv2(**overrides) -> dict:
    """A 4-stage Swin V2 (widths 8..64), patch 4, window 4 on a 64x64 grid (16, 8, 4, 2
    tokens per side: stages 1-2 shift their odd blocks, 3-4 fit in one window)."""
    d = {
        "model_type": "swinv2",
        "image_size": 64,
        "patch_size": 4,
        "embed_dim": 8,
        "depths": [2, 2, 2, 1],
        "num_heads": [1, 2, 2, 4],
        "window_size": 4,
        "out_features": ["stage1", "stage2", "stage3", "stage4"],
    }
    d.update(overrides)
    return d


def tiny_zoedepth(router: bool = False, **overrides) -> dict:
    """Keyword arguments for transformers.ZoeDepthConfig on tiny_beit(): one NYU head, or
    with `router` the NYU + KITTI heads and the patch-transformer router."""
    bins = [{"name": "nyu", "n_bins": 8, "min_depth": 1e-3, "max_depth": 10.0}]
    d = {
        "backbone_config": tiny_beit(),
        "neck_hidden_sizes": [8, 16, 24, 32],
        "fusion_hidden_size": 32,
        "bottleneck_features": 32,
        "bin_embedding_dim": 16,
        "num_relative_features": 8,
        "bin_configurations": bins,
    }
    if router:
        d.update(
            bin_configurations=[*bins, {"name": "kitti", "n_bins": 8, "min_depth": 1e-3,
                                        "max_depth": 80.0}],
            num_patch_transformer_layers=4,
            patch_transformer_hidden_size=128,  # the reference's router is built for 128
            patch_transformer_intermediate_size=32,
            patch_transformer_num_attention_heads=4,
        )
    d.update(overrides)
    return d


def eager(model: nn.Module) -> nn.Module:
    """The reference with eager attention, so `output_attentions` returns the weights (its
    default SDPA path returns none); models that only have eager attention stay as they are."""
    try:
        model.set_attn_implementation("eager")
    except (ValueError, AttributeError):
        pass
    return model


def tiny_vit(**overrides) -> dict:
    """Keyword arguments for transformers.DPTConfig: a 4-block ViT, patch 16, 64x64."""
    d = {
        "hidden_size": 32,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "intermediate_size": 48,
        "image_size": 64,
        "patch_size": 16,
        "backbone_out_indices": [0, 1, 2, 3],
        "neck_hidden_sizes": [8, 16, 24, 32],
        "fusion_hidden_size": 16,
    }
    d.update(overrides)
    return d


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and BatchNorm statistic random; scale ~1/sqrt(fan_in) keeps deep
    stacks finite. Norm weights around 1, biases around 0 but never zero. Works on a model
    made with `to_empty` (nothing is read before it is written)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if p.ndim == 1 and leaf in ("weight", "lambda1", "lambda2"):
                p.normal_(1.0, 0.1, generator=g)
            elif p.ndim == 1:
                p.normal_(0.0, 0.1, generator=g)
            elif p.ndim == 3 or "token" in name:
                p.normal_(0.0, 0.2, generator=g)
            else:
                p.normal_(0.0, min(0.2, 1.0 / math.sqrt(p[0].numel())), generator=g)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0.0, 0.1, generator=g)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5, generator=g)
            elif name.endswith("num_batches_tracked"):
                b.zero_()
    return model


def save_reference(model: nn.Module, path: Path) -> Path:
    model.save_pretrained(str(path))
    return path


def assert_close(ours: torch.Tensor, ref: torch.Tensor, tol: float = TOL) -> float:
    """Same shape and max|Δ| <= tol * max|ref|; returns the relative error."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    scale = ref.abs().max().item()
    assert scale > 0, "reference output is all zero: the comparison would prove nothing"
    err = (ours.double() - ref.double()).abs().max().item() / scale
    assert err <= tol, f"max|Δ| = {err:.3g} x max|ref|"
    return err


def image(h: int, w: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))


def patch_zoedepth_post_processing(monkeypatch) -> None:
    """transformers' ZoeDepth post-processing resizes with torchvision, which is not a
    dependency here; where it is missing, torchvision's tensor path for float images
    (`resize(..., antialias=False)` = F.interpolate(align_corners=False), no clamping)
    stands in, so the rest of the reference (padding arithmetic, crop, flip average) runs."""
    import types

    import torch.nn.functional as F
    from transformers.models.zoedepth import image_processing_pil_zoedepth as module

    if hasattr(module, "tvF"):
        return

    def resize(x, size, interpolation, antialias):
        return F.interpolate(x[None], size=list(size), mode=interpolation,
                             align_corners=False, antialias=antialias)[0]

    shim = types.SimpleNamespace(
        resize=resize, InterpolationMode=types.SimpleNamespace(BICUBIC="bicubic"))
    monkeypatch.setattr(module, "tvF", shim, raising=False)


# DPT-Hybrid at the one size the reference accepts (parity and size tests share it)
HYBRID = tiny_vit(
    is_hybrid=True,
    backbone_config=tiny_bit(),
    backbone_featmap_shape=[1, 64, 24, 24],
    neck_hidden_sizes=[16, 32, 32, 32],
    reassemble_factors=[1, 1, 1, 0.5],
    image_size=384,
)
