"""Load and save Hugging Face DPT / Depth Anything checkpoints without transformers.

A source is a local directory that exists (config.json + model.safetensors | sharded
safetensors with model.safetensors.index.json | pytorch_model.bin, read only by a torch
whose weights_only load is safe) or a Hub repo id at an optional revision, read through
huggingface_hub's cache; a missing directory written as a path is an error, never a Hub
lookup. Every failure is a ModelLoadError naming the file or key, because the
usual caller is a ROS node whose parameter points at the wrong place.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpt_ros.model.config import ARCHITECTURE_TASKS, ConfigError, DPTConfig, config_from_dict
from dpt_ros.model.depth_anything import DepthAnythingForDepthEstimation
from dpt_ros.model.depth_anything3.configuration import DepthAnything3Config, is_da3_config
from dpt_ros.model.depth_anything3.modeling import DepthAnything3ForDepthEstimation
from dpt_ros.model.depth_pro.configuration import DepthProConfig
from dpt_ros.model.depth_pro.modeling import DepthProForDepthEstimation
from dpt_ros.model.dpt import DPTForDepthEstimation, DPTForSemanticSegmentation, DPTModel
from dpt_ros.model.prompt_depth_anything import PromptDepthAnythingForDepthEstimation
from dpt_ros.model.zoedepth import ZoeDepthForDepthEstimation

log = logging.getLogger(__name__)

MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "DPTForDepthEstimation": DPTForDepthEstimation,
    "DPTForSemanticSegmentation": DPTForSemanticSegmentation,
    "DPTModel": DPTModel,
    "DepthAnythingForDepthEstimation": DepthAnythingForDepthEstimation,
    "ZoeDepthForDepthEstimation": ZoeDepthForDepthEstimation,
    "PromptDepthAnythingForDepthEstimation": PromptDepthAnythingForDepthEstimation,
    "DepthAnything3ForDepthEstimation": DepthAnything3ForDepthEstimation,
    "DepthProForDepthEstimation": DepthProForDepthEstimation,
}
# Classes that share the `dpt.`-prefixed ViT, so one's checkpoint seeds another (transformers'
# base-model-prefix rule); from_pretrained across them loads what they share.
_DPT_FAMILY = ("DPTModel", "DPTForDepthEstimation", "DPTForSemanticSegmentation")
# (as transformers 5 writes it, as the Hub files name it): BEiT's shared relative position
# bias gets a stray 'beit.' when transformers 5 saves a BEiT backbone.
_KEY_ALIASES = (("beit.encoder.relative_position_bias.", "encoder.relative_position_bias."),)
# Tensors the reference derives from the config and never reads from a checkpoint, though
# some Hub files (converted from the original repositories) still carry them.
_DERIVED_KEY = re.compile(r"(^|\.)(relative_position_index|relative_coords_table|k_idx|k_minus_1)$")
TASKS = tuple(sorted(set(ARCHITECTURE_TASKS.values())))
CONFIG_NAME = "config.json"
PROCESSOR_NAME = "preprocessor_config.json"
# (single file, shard index) in order of preference.
WEIGHT_LAYOUTS = (
    ("model.safetensors", "model.safetensors.index.json"),
    ("pytorch_model.bin", "pytorch_model.bin.index.json"),
)
_HUB_PATTERNS = {
    "config": [CONFIG_NAME, PROCESSOR_NAME],
    "safetensors": ["model.safetensors", "model.safetensors.index.json", "model-*.safetensors"],
    "torch": ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin"],
}
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
_DPT_PREFIX = "dpt."


class ModelLoadError(RuntimeError):
    """A checkpoint that cannot be found, read or matched to the model; names file / key."""


# --- source resolution ----------------------------------------------------------------------


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hub_cache_dir() -> Path:
    """HF_HUB_CACHE, else HF_HOME/hub, else huggingface_hub's default; read at call time so
    a process (or test) that sets the environment late is still honoured."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def _has_weights(directory: Path, layouts: tuple[tuple[str, str], ...]) -> bool:
    return any((directory / name).is_file() for layout in layouts for name in layout)


def _download(repo_id: str, weights: bool, revision: str | None) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    cache = _hub_cache_dir()
    offline = _env_true("HF_HUB_OFFLINE") or bool(constants.HF_HUB_OFFLINE)

    def fetch(*groups: str) -> Path:
        patterns = [p for g in ("config", *groups) for p in _HUB_PATTERNS[g]]
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache,
                                      allow_patterns=patterns, local_files_only=offline))

    try:
        path = fetch("safetensors") if weights else fetch()
        # Only when the repo has no safetensors do we fetch the (larger, older) torch files.
        if weights and not _has_weights(path, WEIGHT_LAYOUTS[:1]):
            path = fetch("torch")
    except LocalEntryNotFoundError as e:
        why = ("offline mode is on (HF_HUB_OFFLINE=1)" if offline
               else "the Hub could not be reached (no network?)")
        at = f" at revision {revision!r}" if revision else ""
        raise ModelLoadError(
            f"Hub repo {repo_id!r}{at} is not in the local Hugging Face cache ({cache}) and "
            f"cannot be downloaded: {why}"
        ) from e
    except (HfHubHTTPError, HFValidationError, OSError, ValueError) as e:
        raise ModelLoadError(f"Hub repo {repo_id!r}: {type(e).__name__}: {e}") from e
    return path


@dataclass(frozen=True)
class ModelSource:
    """Where a checkpoint was read from: a local directory, or a Hub repo's cached snapshot at
    one commit (what a log line must say, so a run can be reproduced)."""

    directory: Path
    repo_id: str | None = None  # None: a local directory
    revision: str | None = None  # as asked for (None: the default branch)
    commit: str | None = None  # the snapshot's commit hash

    def describe(self) -> str:
        if self.repo_id is None:
            return f"local directory {self.directory}"
        asked = f", revision {self.revision}" if self.revision else ""
        return f"Hub {self.repo_id}@{self.commit or 'unknown commit'}{asked}"


def looks_like_path(text: str) -> bool:
    """A source written as a path ('./m', '../m', '~/m', '/m', 'a/b/c'), never a Hub id."""
    return (
        text in (".", "..")
        or text.startswith(("./", "../", "~", "/"))
        or text.count("/") >= 2
        or "\\" in text
    )


def locate_source(
    source: str | os.PathLike[str], *, weights: bool = True, revision: str | None = None
) -> ModelSource:
    """The checkpoint directory for `source`, and where it came from.

    A local directory only if it exists; a missing one written as a path (`looks_like_path`)
    is an error, not a Hub lookup, so a typo or another working directory never runs
    someone else's weights. Anything else must be a Hub id 'org/name', read from
    huggingface_hub's cache (fetched when online: config.json, preprocessor_config.json and,
    with `weights`, one weight layout) at `revision` (branch, tag or commit; None = main).
    HF_HOME / HF_HUB_CACHE / HF_HUB_OFFLINE are respected.
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        if revision:
            raise ModelLoadError(f"{path} is a local directory: a revision ({revision!r}) only "
                                 "applies to a Hub repo id")
        return ModelSource(path)
    if path.exists():
        raise ModelLoadError(f"{path} is a file; expected a model directory or a Hub repo id")
    if looks_like_path(text):
        raise ModelLoadError(f"model directory {path} does not exist (a path, so not looked "
                             "up on the Hub)")
    if not _REPO_ID.fullmatch(text) or text.startswith(".") or ".." in text or "--" in text:
        raise ModelLoadError(f"{text!r} is neither an existing directory nor a Hub repo id "
                             "('org/name')")
    try:
        snapshot = _download(text, weights, revision or None)
    except ModelLoadError as e:
        raise ModelLoadError(
            f"no local directory {text!r} (from {Path.cwd()}), and {e}") from e.__cause__
    commit = snapshot.name if snapshot.parent.name == "snapshots" else None
    return ModelSource(snapshot, text, revision or None, commit)


def resolve_source(
    source: str | os.PathLike[str], *, weights: bool = True, revision: str | None = None
) -> Path:
    """The checkpoint directory of `source` (see `locate_source` for the rules)."""
    return locate_source(source, weights=weights, revision=revision).directory


# --- files ----------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"{path.name} not found in {path.parent}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path} is not valid JSON: {e}") from e


def _config_from_directory(directory: Path) -> DPTConfig:
    path = directory / CONFIG_NAME
    try:
        raw = _read_json(path)
        if isinstance(raw, dict) and is_da3_config(raw):  # the official DA3 repos' config
            return DepthAnything3Config.from_dict(raw)
        if isinstance(raw, dict) and raw.get("model_type") == "depth_pro":
            return DepthProConfig.from_dict(raw)
        return config_from_dict(raw)
    except ConfigError as e:
        raise ModelLoadError(f"{path}: {e}") from e


def _weight_files(directory: Path) -> list[Path]:
    for single, index in WEIGHT_LAYOUTS:
        if (directory / single).is_file():
            return [directory / single]
        if (directory / index).is_file():
            weight_map = _read_json(directory / index).get("weight_map")
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


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix != ".safetensors" and not torch_loads_pickles_safely():
        raise ModelLoadError(
            f"{path} is a pickle (pytorch_model.bin): reading it safely needs torch >= "
            f"{'.'.join(map(str, SAFE_PICKLE_TORCH))} (found {torch.__version__}). Convert the "
            "checkpoint to safetensors where you trust it (load the state dict, then "
            "safetensors.torch.save_file(state_dict, 'model.safetensors')) or upgrade torch"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelLoadError(f"cannot read weights file {path}: {type(e).__name__}: {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"weights file {path} does not hold a flat dict of tensors")
    return state


def _read_state_dict(directory: Path) -> tuple[dict[str, torch.Tensor], str]:
    files = _weight_files(directory)
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(_read_weights(f))
    return state, ", ".join(str(f) for f in files)


# --- matching -------------------------------------------------------------------------------


def _build(config: DPTConfig) -> nn.Module:
    """Construct on the meta device (no memory, no initialisation: the checkpoint overwrites
    every tensor); modules that compute with tensors while being built (BiT's drop-path
    schedule) are constructed normally instead."""
    cls = MODEL_CLASSES[config.architecture]
    try:
        with torch.device("meta"):
            return cls(config)
    except (NotImplementedError, RuntimeError):
        return cls(config)


def _align_keys(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers adds / strips the base-model prefix ('dpt.') when a checkpoint of the bare
    DPTModel meets a task model or the reverse; do the same. And the one key transformers 5
    writes under another name than the Hub files (see _KEY_ALIASES) is read under both."""
    convert = getattr(model, "checkpoint_to_model", None)
    if convert is not None:  # a family whose Hub files keep their own layout (DA3)
        state = convert(state)
    expected = model.state_dict()
    dpt_family = isinstance(model, tuple(MODEL_CLASSES[name] for name in _DPT_FAMILY))
    out = {}
    for key, value in state.items():
        if key not in expected:
            if dpt_family and key.startswith(_DPT_PREFIX) and key[len(_DPT_PREFIX):] in expected:
                key = key[len(_DPT_PREFIX):]
            elif dpt_family and _DPT_PREFIX + key in expected:
                key = _DPT_PREFIX + key
            else:
                for written, ours in _KEY_ALIASES:
                    alias = key.replace(written, ours, 1)
                    if alias != key and alias in expected:
                        key = alias
                        break
        out[key] = value
    return out


def _check_keys(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
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


def _complete(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checked state dict as the model wants it: tolerated extras dropped, tolerated
    missing entries (BatchNorm step counters) at zero as in a fresh module."""
    expected = model.state_dict()
    out = {k: v for k, v in state.items() if k in expected}
    for key, value in expected.items():
        if key not in out:
            out[key] = torch.zeros(value.shape, dtype=value.dtype)
    return out


# --- public API -----------------------------------------------------------------------------


def align_checkpoint_keys(model: nn.Module, state: dict[str, torch.Tensor]
                          ) -> dict[str, torch.Tensor]:
    """`state` with its keys renamed as load_model reads them into `model` (base-model
    prefix, transformers 5's renamed keys); for loading a sub-module such as a backbone."""
    return _align_keys(model, state)


def load_config(source: str | os.PathLike[str], revision: str | None = None) -> DPTConfig:
    """The DPTConfig of a model directory or Hub repo id (no weights read)."""
    return _config_from_directory(resolve_source(source, weights=False, revision=revision))


def load_model(
    source: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    task: str | None = None,
    revision: str | None = None,
) -> nn.Module:
    """The checkpoint's model class (config.architectures[0]), strictly loaded, in eval mode
    on `device` / `dtype`. `task` ('depth' / 'segmentation' / 'features') rejects a checkpoint
    made for something else. `revision` pins a Hub repo's branch, tag or commit."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task={task!r}; accepted: {', '.join(TASKS)} or None")
    directory = resolve_source(source, revision=revision)
    config = _config_from_directory(directory)
    if task is not None and config.task != task:
        raise ModelLoadError(
            f"{directory / CONFIG_NAME} is a {config.task} checkpoint "
            f"({config.architecture}); a {task} model was asked for"
        )
    state, where = _read_state_dict(directory)
    try:
        model = _build(config)
    except ConfigError as e:
        raise ModelLoadError(f"{directory / CONFIG_NAME}: {e}") from e
    state = _align_keys(model, state)
    _check_keys(model, state, where)
    # Always copy: safetensors tensors are views of the (memory-mapped) file, which must not
    # back the model (saving over the file later would pull the weights from under it).
    placed = {
        k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype, copy=True)
        for k, v in _complete(model, state).items()
    }
    del state
    model.load_state_dict(placed, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()


def _processor_config(source: str | os.PathLike[str],
                      revision: str | None) -> tuple[Path, dict[str, Any]]:
    """(path, contents) of preprocessor_config.json of a model directory or Hub repo id."""
    path = resolve_source(source, weights=False, revision=revision) / PROCESSOR_NAME
    config = _read_json(path)
    if not isinstance(config, dict):
        raise ModelLoadError(f"{source}: {PROCESSOR_NAME} is not a JSON object")
    return path, config


def load_processor_config(source: str | os.PathLike[str],
                          revision: str | None = None) -> dict[str, Any]:
    """preprocessor_config.json of a model directory or Hub repo id, as a dict."""
    return _processor_config(source, revision)[1]


def load_processor(source: str | os.PathLike[str], revision: str | None = None) -> Any:
    """The image processor preprocessor_config.json describes, by its image_processor_type:
    ZoeDepthImageProcessor, PromptDepthAnythingImageProcessor, else DPTImageProcessor."""
    from dpt_ros.model.depth_anything3.image_processing import DepthAnything3ImageProcessor
    from dpt_ros.model.depth_pro.image_processing import DepthProImageProcessor
    from dpt_ros.model.processing import DPTImageProcessor
    from dpt_ros.model.prompt_processing import PromptDepthAnythingImageProcessor
    from dpt_ros.model.zoedepth_processing import ZoeDepthImageProcessor

    directory = resolve_source(source, weights=False, revision=revision)
    if not (directory / PROCESSOR_NAME).is_file() and (directory / CONFIG_NAME).is_file():
        model_config = _read_json(directory / CONFIG_NAME)
        if isinstance(model_config, dict) and is_da3_config(model_config):
            # the official DA3 repos have no preprocessor_config.json: the official defaults
            return DepthAnything3ImageProcessor()
    path, config = _processor_config(directory, None)
    kind = str(config.get("image_processor_type", ""))
    cls = DPTImageProcessor
    if kind.startswith("ZoeDepth"):
        cls = ZoeDepthImageProcessor
    elif kind.startswith("PromptDepthAnything"):
        cls = PromptDepthAnythingImageProcessor
    elif kind.startswith("DepthAnything3"):
        cls = DepthAnything3ImageProcessor
    elif kind.startswith("DepthPro"):
        cls = DepthProImageProcessor
    try:
        return cls.from_dict(config)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ModelLoadError(f"{path}: {e}") from e


def save_model(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """config.json + model.safetensors in the Hugging Face layout (transformers reads it)."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(model.config, architectures=[type(model).__name__])
    (out / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    convert = getattr(model, "model_to_checkpoint", None)
    if convert is not None:  # written in the family's own Hub layout (DA3)
        state = {k: v.contiguous() for k, v in convert(state).items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def load_as(
    cls: type[nn.Module],
    source: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
) -> nn.Module:
    """`cls.from_pretrained(source)`: the checkpoint's own class loads strictly through
    load_model; another class of the DPT family (DPTModel / DPTForDepthEstimation /
    DPTForSemanticSegmentation on a ViT or hybrid config) takes the weights it shares, as
    transformers does, and keeps a fresh initialisation for the rest (logged). `revision`
    pins a Hub repo's branch, tag or commit."""
    directory = resolve_source(source, revision=revision)
    config = _config_from_directory(directory)
    if config.architecture == cls.__name__:
        return load_model(directory, device=device, dtype=dtype)
    if (cls.__name__ not in _DPT_FAMILY or config.architecture not in _DPT_FAMILY
            or config.backbone_type not in (None, "bit")):
        raise ModelLoadError(
            f"{directory / CONFIG_NAME} is a {config.architecture} checkpoint; load it with "
            f"{config.architecture}.from_pretrained or load_model, not {cls.__name__}")
    try:
        config = dataclasses.replace(config, architectures=[cls.__name__])
        model = cls(config)
    except ConfigError as e:
        raise ModelLoadError(f"{directory / CONFIG_NAME}: {e}") from e
    state, where = _read_state_dict(directory)
    state = _align_keys(model, state)
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
