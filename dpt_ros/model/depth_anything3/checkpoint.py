"""The official DA3 checkpoint layout <-> this package's module names.

The Hub files hold `DepthAnything3.state_dict()` of the official package: `model.backbone.
pretrained.*` (the original DINOv2 ViT: fused `attn.qkv`, `ls1.gamma`, ...) and
`model.head.*` (DPT head: `projects`, `resize_layers`, `scratch.refinenet*`, sky head).
Our network reuses the package's DINOv2 backbone and Depth Anything neck, whose names are
transformers'. The file is read unchanged and renamed on the way in (qkv split into query /
key / value, views only); `save_model` renames back, so what we write loads in the official
code. One table drives both directions.
"""

from __future__ import annotations

import re

import torch

_B = "model.backbone.pretrained."
_H = "model.head."
_OURS_BLOCK = "backbone.encoder.layer.{i}."
_OURS_REFINE = "neck.fusion_stage.layers.{L}."
# (official, ours): `{x}` is one dotted name part, copied across; `{k}` (refinenet /
# layerN_rn index, 1-based, refinenet4 = the deepest, run first) maps to `{L}` (our 0-based
# fusion layer, 4 - k) or `{c}` (our conv index, k - 1).
_TABLE: tuple[tuple[str, str], ...] = (
    (_B + "cls_token", "backbone.embeddings.cls_token"),
    (_B + "pos_embed", "backbone.embeddings.position_embeddings"),
    (_B + "patch_embed.proj.{p}", "backbone.embeddings.patch_embeddings.projection.{p}"),
    (_B + "blocks.{i}.norm1.{p}", _OURS_BLOCK + "norm1.{p}"),
    (_B + "blocks.{i}.norm2.{p}", _OURS_BLOCK + "norm2.{p}"),
    (_B + "blocks.{i}.attn.proj.{p}", _OURS_BLOCK + "attention.output.dense.{p}"),
    (_B + "blocks.{i}.ls1.gamma", _OURS_BLOCK + "layer_scale1.lambda1"),
    (_B + "blocks.{i}.ls2.gamma", _OURS_BLOCK + "layer_scale2.lambda1"),
    (_B + "blocks.{i}.mlp.{f}.{p}", _OURS_BLOCK + "mlp.{f}.{p}"),
    (_B + "norm.{p}", "backbone.layernorm.{p}"),
    (_H + "projects.{i}.{p}", "neck.reassemble_stage.layers.{i}.projection.{p}"),
    (_H + "resize_layers.{i}.{p}", "neck.reassemble_stage.layers.{i}.resize.{p}"),
    (_H + "scratch.layer{k}_rn.weight", "neck.convs.{c}.weight"),
    (_H + "scratch.refinenet{k}.resConfUnit1.conv{n}.{p}",
     _OURS_REFINE + "residual_layer1.convolution{n}.{p}"),
    (_H + "scratch.refinenet{k}.resConfUnit2.conv{n}.{p}",
     _OURS_REFINE + "residual_layer2.convolution{n}.{p}"),
    (_H + "scratch.refinenet{k}.out_conv.{p}", _OURS_REFINE + "projection.{p}"),
    (_H + "scratch.output_conv1.{p}", "head.conv1.{p}"),
    (_H + "scratch.output_conv2.0.{p}", "head.conv2.{p}"),
    (_H + "scratch.output_conv2.2.{p}", "head.conv3.{p}"),
    (_H + "scratch.sky_output_conv2.0.{p}", "head.sky_conv2.{p}"),
    (_H + "scratch.sky_output_conv2.2.{p}", "head.sky_conv3.{p}"),
)
_QKV_OFFICIAL = _B + "blocks.{i}.attn.qkv.{p}"
_QKV_OURS = _OURS_BLOCK + "attention.attention.{part}.{p}"
_QKV_PARTS = ("query", "key", "value")


def _regex(template: str) -> re.Pattern[str]:
    """A key template as a regex; each `{name}` matches one dotted part."""
    parts = re.split(r"\{(\w+)\}", template)
    body = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^.]+)"
                   for i, p in enumerate(parts))
    return re.compile(body)


def _fields(match: re.Match[str]) -> dict[str, str]:
    """Matched fields plus the index translations between the two numberings."""
    f = dict(match.groupdict())
    if "k" in f:
        f["L"], f["c"] = str(4 - int(f["k"])), str(int(f["k"]) - 1)
    elif "L" in f:
        f["k"] = str(4 - int(f["L"]))
    elif "c" in f:
        f["k"] = str(int(f["c"]) + 1)
    return f


_TO_MODEL = [(_regex(official), ours) for official, ours in _TABLE]
_TO_CHECKPOINT = [(_regex(ours), official) for official, ours in _TABLE]
_QKV_IN, _QKV_OUT = _regex(_QKV_OFFICIAL), _regex(_QKV_OURS)


def _translate(key: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, template in rules:
        m = pattern.fullmatch(key)
        if m:
            return template.format(**_fields(m))
    return key  # neither layout: left for the strict key check to name


def to_model(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official keys -> ours; qkv split into query / key / value (views)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _QKV_IN.fullmatch(key)
        if m:
            for part, chunk in zip(_QKV_PARTS, value.chunk(3, dim=0)):
                out[_QKV_OURS.format(part=part, **m.groupdict())] = chunk
        else:
            out[_translate(key, _TO_MODEL)] = value
    return out


def to_checkpoint(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Ours -> official keys (qkv fused again), what save_model writes."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _QKV_OUT.fullmatch(key)
        if m:
            if m["part"] == "query":  # key and value go with it
                i, p = m["i"], m["p"]
                parts = [state[_QKV_OURS.format(i=i, p=p, part=n)] for n in _QKV_PARTS]
                out[_QKV_OFFICIAL.format(i=i, p=p)] = torch.cat(parts, dim=0)
            continue
        out[_translate(key, _TO_CHECKPOINT)] = value
    return out
