"""`dpt-ros info`: what a checkpoint is, from its JSON files (and weight headers) only.

No model is built and no weights are read: config.json says the architecture, task and
whether depth is metric, preprocessor_config.json the input size, and the safetensors
header (a few KB) the parameter count.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from safetensors import safe_open

from dpt_ros.model import ConfigError, ModelLoadError, load_config, load_processor, locate_source
from dpt_ros.offline.exitcodes import CliError, ExitCode

MAX_LABELS_SHOWN = 40


def checkpoint_info(source: str, revision: str | None = None) -> dict[str, Any]:
    """Facts about a checkpoint directory or Hub repo id (at `revision`), as a JSON-ready
    dict."""
    try:
        origin = locate_source(source, weights=False, revision=revision)
        directory = origin.directory
        config = load_config(directory)
    except (ModelLoadError, ConfigError, OSError) as err:
        raise CliError(ExitCode.INPUT, f"cannot read checkpoint {source}: {err}") from None
    info: dict[str, Any] = {
        "source": str(source),
        "origin": origin.describe(),
        "commit": origin.commit,
        "directory": str(directory),
        "architecture": config.architecture,
        "model_type": config.model_type,
        "backbone": _backbone(config),
        "task": config.task,
        "patch_size": _patch_size(config),
    }
    if config.task == "depth":
        info["depth"] = _depth_kind(config)
        if config.has_sky:
            info["sky"] = True  # a sky head: ~/sky/image, sky is NaN in ~/depth/image
        if config.has_fov:
            info["field_of_view"] = True  # estimates its FOV: calibration when none is given
        if config.model_type == "depth_anything" and config.is_metric:
            info["max_depth_m"] = config.max_depth
        if config.model_type == "zoedepth":
            info.update(_zoedepth(config))
    info["input"] = _input(directory)
    if config.task == "segmentation":
        info["num_labels"] = config.num_labels
        info["labels"] = {str(k): v for k, v in sorted(config.labels.items())}
    info["parameters"] = _parameter_count(directory)
    return info


def _depth_kind(config: Any) -> str:
    """What the depth output means, and what it needs to be metres."""
    if config.metric_focal:
        return (f"metric (metres = focal length (px, at the network input) x output / "
                f"{config.metric_focal:g}: needs the camera's intrinsics)")
    if config.model_type == "depth_pro":
        return ("metric (metres from the focal length: camera_info or parameters, else its "
                "own field-of-view estimate)" if config.has_fov else
                "metric (metres from the focal length: needs the camera's intrinsics)")
    if config.is_metric:
        return "metric (metres)"
    if config.predicts_depth:
        return "relative (depth up to scale)"
    return "relative (inverse depth)"


def _patch_size(config: Any) -> int:
    """The patch of the network that tokenises the image: the backbone's when it has its
    own (DINOv2 14, BEiT 16, Swinv2 4), else the DPT ViT's."""
    hybrid = getattr(config, "is_hybrid", False)
    patch = getattr(config.backbone_config, "patch_size", None) if not hybrid else None
    if isinstance(patch, (list, tuple)):
        patch = patch[0]
    return int(patch or config.patch_size)


def _zoedepth(config: Any) -> dict[str, Any]:
    """The metric heads: each domain's bin range; 'normed' bins clip depth to it, 'softplus'
    bins only start there; with two heads a router picks one per batch."""
    out: dict[str, Any] = {
        "metric_heads": [
            {"name": b.get("name", "nyu"), "min_depth_m": b["min_depth"],
             "max_depth_m": b["max_depth"], "bins": b["n_bins"]}
            for b in config.bin_configurations],
        "bin_centers": config.bin_centers_type,
        "router": config.has_router,
    }
    if config.bounded:
        out["max_depth_m"] = config.max_depth
    return out


def _backbone(config: Any) -> str:
    if config.model_type == "depth_anything":
        return "dinov2"
    if getattr(config, "is_hybrid", False):
        return "bit + vit (DPT-Hybrid)"
    return config.backbone_type or "vit"


def _input(directory: Path) -> dict[str, Any] | str:
    try:
        p = load_processor(directory)
    except (ModelLoadError, OSError, ValueError) as err:
        return f"unknown ({err})"
    if type(p).__name__ == "DepthAnything3ImageProcessor" and p.size is None:
        return {"longest_side": p.process_res, "keep_aspect_ratio": True,
                "ensure_multiple_of": 14, "resize": "cv2 area / cubic (official)"}
    if not p.do_resize:
        return {"resize": False}
    multiple = getattr(p, "ensure_multiple_of", 1)
    out = {
        "height": p.size["height"],
        "width": p.size["width"],
        "keep_aspect_ratio": bool(getattr(p, "keep_aspect_ratio", False)),
        "ensure_multiple_of": int(multiple) if float(multiple).is_integer() else multiple,
    }
    if type(p).__name__ == "ZoeDepthImageProcessor":
        out["reflect_padding"] = bool(p.do_pad)  # removed again after the model
    return out


def _parameter_count(directory: Path) -> int | None:
    """Sum of tensor sizes from safetensors headers (no tensor data is read); None if unknown."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                total += math.prod(f.get_slice(key).get_shape())
    return total


def format_info(info: dict[str, Any]) -> str:
    """Human-readable lines for the terminal."""
    lines = [
        f"source:        {info['source']} ({info['origin']})",
        f"architecture:  {info['architecture']} (model_type {info['model_type']}, "
        f"backbone {info['backbone']}, patch {info['patch_size']})",
        f"task:          {info['task']}",
    ]
    if "depth" in info:
        extra = f", max_depth {info['max_depth_m']} m" if "max_depth_m" in info else ""
        lines.append(f"depth:         {info['depth']}{extra}")
    if info.get("sky"):
        lines.append("sky:           sky head (sky pixels: NaN depth, no points; ~/sky/image)")
    if info.get("field_of_view"):
        lines.append("field of view: estimated by the model (focal length when no "
                     "camera_info)")
    if "metric_heads" in info:
        heads = ", ".join(f"{h['name']} {h['min_depth_m']:g}-{h['max_depth_m']:g} m"
                          for h in info["metric_heads"])
        routed = " (a router picks one per batch)" if info["router"] else ""
        lines.append(f"metric heads:  {heads}, {info['bin_centers']} bins{routed}")
    inp = info["input"]
    if isinstance(inp, dict) and "longest_side" in inp:
        lines.append(f"input size:    longest side {inp['longest_side']}, keeps aspect ratio, "
                     f"multiple of {inp['ensure_multiple_of']} ({inp['resize']})")
    elif isinstance(inp, dict) and "height" in inp:
        aspect = ", keeps aspect ratio" if inp["keep_aspect_ratio"] else ""
        multiple = (
            f", multiple of {inp['ensure_multiple_of']}" if inp["ensure_multiple_of"] > 1 else ""
        )
        pad = ", reflect-padded" if inp.get("reflect_padding") else ""
        lines.append(f"input size:    {inp['height']} x {inp['width']}{aspect}{multiple}{pad}")
    elif isinstance(inp, dict):
        lines.append("input size:    native (no resize)")
    else:
        lines.append(f"input size:    {inp}")
    if "labels" in info:
        labels = list(info["labels"].items())
        shown = ", ".join(f"{k}: {v}" for k, v in labels[:MAX_LABELS_SHOWN])
        hidden = len(labels) - MAX_LABELS_SHOWN
        more = f", ... ({hidden} more)" if hidden > 0 else ""
        lines.append(f"labels ({info['num_labels']}): {shown}{more}")
    if info["parameters"] is not None:
        lines.append(f"parameters:    {info['parameters'] / 1e6:.2f} M")
    return "\n".join(lines)


def info_json(info: dict[str, Any]) -> str:
    return json.dumps(info, indent=2)
