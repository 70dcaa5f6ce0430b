"""Tiny random-weight Hugging Face checkpoints for the pipeline, node and offline tests,
built with `transformers` (the test oracle; the package never imports it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

NODE_LABELS = ("wall", "floor", "chair", "table", "person")


def _save_processor(directory: Path, size: int) -> None:
    from transformers import DPTImageProcessorPil

    DPTImageProcessorPil(
        size={"height": size, "width": size}, keep_aspect_ratio=False, do_pad=False
    ).save_pretrained(directory)


def make_checkpoints(
    root: Path, vit_size: int = 64, dinov2_size: int = 56, labels: Sequence[str] = NODE_LABELS,
) -> dict[str, Path]:
    """{'relative': DPT (ViT, patch 16, vit_size²), 'metric': Depth Anything (DINOv2,
    patch 14, dinov2_size², max 10 m), 'segmentation': DPT with `labels` (vit_size²)}.
    Skips the calling test when transformers is absent (a distro's `colcon test`)."""
    import pytest
    import torch

    pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTConfig,
        DPTForDepthEstimation,
        DPTForSemanticSegmentation,
    )

    torch.manual_seed(0)
    common = dict(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=48,
        initializer_range=0.1,  # transformers' 0.02 leaves only ~1e-9 at the output
    )
    vit = dict(
        common,
        patch_size=16,
        image_size=vit_size,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 24, 32],
        fusion_hidden_size=16,
        head_hidden_size=16,
    )
    paths = {name: root / name for name in ("relative", "metric", "segmentation")}

    relative = DPTForDepthEstimation(DPTConfig(**vit)).eval()
    with torch.no_grad():  # lift the last conv above its ReLU: ~98% of pixels positive
        relative.head.head[4].bias.fill_(0.05)
    relative.save_pretrained(paths["relative"])
    _save_processor(paths["relative"], vit_size)

    id2label = dict(enumerate(labels))
    seg_cfg = DPTConfig(**vit, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    DPTForSemanticSegmentation(seg_cfg).eval().save_pretrained(paths["segmentation"])
    _save_processor(paths["segmentation"], vit_size)

    backbone = Dinov2Config(
        **common,
        patch_size=14,
        image_size=dinov2_size,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    da_cfg = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        patch_size=14,
        neck_hidden_sizes=[8, 16, 24, 32],
        fusion_hidden_size=16,
        head_hidden_size=16,
        depth_estimation_type="metric",
        max_depth=10,
        initializer_range=0.1,
    )
    DepthAnythingForDepthEstimation(da_cfg).eval().save_pretrained(paths["metric"])
    _save_processor(paths["metric"], dinov2_size)
    return paths
