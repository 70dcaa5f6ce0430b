"""Checkpoint files: reading config.json / preprocessor_config.json and the weights
(model.safetensors | sharded safetensors with model.safetensors.index.json |
pytorch_model.bin, read only by a torch whose weights_only load is safe), matching the
weights to a model strictly, and writing both back in the Hugging Face layout.

Every failure is a ModelLoadError naming the file or key. Nothing here knows the model
classes: callers pass the class (`load_as`, `load_pretrained`) or a parse function
(`read_config`); choosing the class of a checkpoint is `dpt_ros.model.auto`'s job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from dpt_ros.model.errors import ConfigError, ModelLoadError
from dpt_ros.model.hub import CONFIG_NAME, PROCESSOR_NAME, WEIGHT_LAYOUTS, resolve_source

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=nn.Module)
# (as transformers 5 writes it, as the Hub files name it): BEiT's shared relative position
# bias gets a stray 'beit.' when transformers 5 saves a BEiT backbone.
_KEY_ALIASES = (("beit.encoder.relative_position_bias.", "encoder.relative_position_bias."),)
# Tensors the reference derives from the config and never reads from a checkpoint, though
# some Hub files (converted from the original repositories) still carry them.
_DERIVED_KEY = re.compile(r"(^|\.)(relative_position_index|relative_coords_table|k_idx|k_minus_1)$")


# --- files ----------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """A JSON file's contents; a missing or malformed file is a ModelLoadError."""
    if not path.is_file():
        raise ModelLoadError(f"{path.name} not found in {path.parent}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path} is not valid JSON: {e}") from e


def read_config(directory: Path, parse: Callable[[Any], T]) -> T:
    """config.json of a checkpoint directory through `parse` (a config class's from_dict or
    the auto dispatch); its ConfigError becomes a ModelLoadError naming the file."""
    path = directory / CONFIG_NAME
    try:
        return parse(read_json(path))
    except ConfigError as e:
        raise ModelLoadError(f"{path}: {e}") from e


def weight_files(directory: Path) -> list[Path]:
    for single, index in WEIGHT_LAYOUTS:
        if (directory / single).is_file():
            return [directory / single]
        if (directory / index).is_file():
            weight_map = read_json(directory / index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ModelLoadError(f"{directory / index} has no weight_map")
            files = [directory / name for name in sorted(set(weight_map.values()))]
            for f in files:
                if not f.is_file():
                    raise ModelLoadError(f"shard {f.name} (listed in {index}) not found in "
                                         f"{directory}")
            return files
    names = ", ".join(name for layout in WEIGHT_LAYOUTS for name in layout)
    raise ModelLoadError(f"no weights in {directory}: expected one of {names}")


SAFE_PICKLE_TORCH = (2, 6)  # torch.load(weights_only=True) is safe from here on (CVE-2025-32434)


def torch_loads_pickles_safely(version: str | None = None) -> bool:
    """Whether this torch's (or `version`'s) weights_only=True load can be trusted with a
    pickle (pytorch_model.bin) from someone else; older ones can be made to run code."""
    match = re.match(r"(\d+)\.(\d+)", str(torch.__version__ if version is None else version))
    return match is not None and tuple(map(int, match.groups())) >= SAFE_PICKLE_TORCH


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix != ".safetensors" and not torch_loads_pickles_safely():
        raise ModelLoadError(
            f"{path} is a pickle (pytorch_model.bin): reading it safely needs torch >= "
            f"{'.'.join(map(str, SAFE_PICKLE_TORCH))} (found {torch.__version__}). Convert the "
            "checkpoint to safetensors where you trust it (load the state dict, then "
            "safetensors.torch.save_file(state_dict, 'model.safetensors')) or upgrade torch"
        )
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelLoadError(f"cannot read weights file {path}: {type(e).__name__}: {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"weights file {path} does not hold a flat dict of tensors")
    return state


def read_state_dict(directory: Path) -> tuple[dict[str, torch.Tensor], str]:
    files = weight_files(directory)
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(read_weights(f))
    return state, ", ".join(str(f) for f in files)


# --- matching -------------------------------------------------------------------------------


def build_empty(cls: type[M], config: Any) -> M:
    """`cls(config)` on the meta device (no memory, no initialisation: the checkpoint
    overwrites every tensor); modules that compute with tensors while being built (BiT's
    drop-path schedule) are constructed normally instead."""
    try:
        with torch.device("meta"):
            return cls(config)
    except (NotImplementedError, RuntimeError):
        return cls(config)


def align_checkpoint_keys(model: nn.Module, state: dict[str, torch.Tensor]
                          ) -> dict[str, torch.Tensor]:
    """`state` with its keys renamed as the model reads them. transformers adds / strips the
    base-model prefix (the class's `base_model_prefix`, 'dpt' for the DPT classes) when a
    checkpoint of the bare DPTModel meets a task model or the reverse; so do we. And the one
    key transformers 5 writes under another name than the Hub files (see _KEY_ALIASES) is
    read under both. Also for loading a sub-module such as a backbone."""
    expected = model.state_dict()
    base = getattr(model, "base_model_prefix", None)
    prefix = f"{base}." if base else None
    out = {}
    for key, value in state.items():
        if key not in expected:
            if prefix and key.startswith(prefix) and key[len(prefix):] in expected:
                key = key[len(prefix):]
            elif prefix and prefix + key in expected:
                key = prefix + key
            else:
                for written, ours in _KEY_ALIASES:
                    alias = key.replace(written, ours, 1)
                    if alias != key and alias in expected:
                        key = alias
                        break
        out[key] = value
    return out


def check_keys(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    expected = model.state_dict()
    # What transformers tolerates: checkpoint entries for buffers the model does not persist,
    # and BatchNorm step counters (unused in eval) absent from the checkpoint.
    not_persisted = {name for name, _ in model.named_buffers() if name not in expected}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected and k not in not_persisted
                  and not _DERIVED_KEY.search(k)]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                        ("shape mismatch", shapes)):
        if keys:
            more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
            problems.append(f"{label}: {', '.join(keys[:5])}{more}")
    if problems:
        raise ModelLoadError(
            f"{where} does not match {type(model).__name__}: " + "; ".join(problems))


def complete_state(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checked state dict as the model wants it: tolerated extras dropped, tolerated
    missing entries (BatchNorm step counters) at zero as in a fresh module."""
    expected = model.state_dict()
    out = {k: v for k, v in state.items() if k in expected}
    for key, value in expected.items():
        if key not in out:
            out[key] = torch.zeros(value.shape, dtype=value.dtype)
    return out


# --- loading and saving ---------------------------------------------------------------------


def load_pretrained(cls: type[M], config: Any, directory: Path,
                    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> M:
    """`cls(config)` with the weights of `directory`, strictly matched, in eval mode on
    `device` / `dtype`."""
    state, where = read_state_dict(directory)
    try:
        model = build_empty(cls, config)
    except ConfigError as e:
        raise ModelLoadError(f"{directory / CONFIG_NAME}: {e}") from e
    state = align_checkpoint_keys(model, state)
    check_keys(model, state, where)
    # Always copy: safetensors tensors are views of the (memory-mapped) file, which must not
    # back the model (saving over the file later would pull the weights from under it).
    placed = {
        k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype, copy=True)
        for k, v in complete_state(model, state).items()
    }
    del state
    model.load_state_dict(placed, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()


def load_as(
    cls: type[M],
    source: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
) -> M:
    """`cls.from_pretrained(source)`: a checkpoint of `cls` itself loads strictly; one whose
    weights `cls` can share (`cls.shares_weights_with(config)`: DPTModel /
    DPTForDepthEstimation / DPTForSemanticSegmentation on a ViT or hybrid config) gives the
    weights they share, as transformers does, and the rest keeps a fresh initialisation
    (logged). `revision` pins a Hub repo's branch, tag or commit."""
    directory = resolve_source(source, revision=revision)
    config_class = cls.config_class  # type: ignore[attr-defined]

    def parse(d: Any) -> Any:
        if isinstance(d, dict) and d.get("model_type") not in config_class.model_types:
            kind = (d.get("architectures") or [None])[0] or f"model_type {d.get('model_type')!r}"
            raise ModelLoadError(
                f"{directory / CONFIG_NAME} is a {kind} checkpoint; load it with its own "
                f"class's from_pretrained or load_model, not {cls.__name__}")
        return config_class.from_dict(d)

    config = read_config(directory, parse)
    if config.architecture == cls.__name__:
        return load_pretrained(cls, config, directory, device, dtype)
    if not cls.shares_weights_with(config):  # type: ignore[attr-defined]
        raise ModelLoadError(
            f"{directory / CONFIG_NAME} is a {config.architecture} checkpoint; load it with "
            f"{config.architecture}.from_pretrained or load_model, not {cls.__name__}")
    try:
        config = dataclasses.replace(config, architectures=[cls.__name__])
        model = cls(config)
    except ConfigError as e:
        raise ModelLoadError(f"{directory / CONFIG_NAME}: {e}") from e
    state, where = read_state_dict(directory)
    state = align_checkpoint_keys(model, state)
    expected = model.state_dict()
    shapes = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if shapes:
        raise ModelLoadError(f"{where} does not match {cls.__name__}: shape mismatch: "
                             + ", ".join(shapes[:5]))
    used = {k: v for k, v in state.items() if k in expected}
    missing = [k for k in expected if k not in used and not k.endswith("num_batches_tracked")]
    unused = [k for k in state if k not in expected and not _DERIVED_KEY.search(k)]
    if missing or unused:
        log.warning("%s from %s: %d weights newly initialised (%s), %d checkpoint weights "
                    "unused (%s)", cls.__name__, directory, len(missing),
                    ", ".join(missing[:3]), len(unused), ", ".join(unused[:3]))
    model.load_state_dict(used, strict=False)
    return model.to(device=device, dtype=dtype).eval()


def processor_config(source: str | os.PathLike[str],
                     revision: str | None = None) -> tuple[Path, dict[str, Any]]:
    """(path, contents) of preprocessor_config.json of a model directory or Hub repo id."""
    path = resolve_source(source, weights=False, revision=revision) / PROCESSOR_NAME
    config = read_json(path)
    if not isinstance(config, dict):
        raise ModelLoadError(f"{source}: {PROCESSOR_NAME} is not a JSON object")
    return path, config


def load_processor_config(source: str | os.PathLike[str],
                          revision: str | None = None) -> dict[str, Any]:
    """preprocessor_config.json of a model directory or Hub repo id, as a dict."""
    return processor_config(source, revision)[1]


def save_model(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """config.json + model.safetensors in the Hugging Face layout (transformers reads it)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(model.config, architectures=[type(model).__name__])
    (out / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out
