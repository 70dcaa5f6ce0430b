"""Where a checkpoint lives: a local directory, or a Hub repo id read through
huggingface_hub's cache (fetched when online).

A source is a local directory that exists or a Hub repo id at an optional revision; a
missing directory written as a path is an error, never a Hub lookup, because the usual
caller is a ROS node whose parameter points at the wrong place. huggingface_hub is imported
only inside the functions that download (an optional dependency: local directories work
without it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dpt_ros.model.errors import ModelLoadError

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


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hub_cache_dir() -> Path:
    """HF_HUB_CACHE, else HF_HOME/hub, else huggingface_hub's default; read at call time so
    a process (or test) that sets the environment late is still honoured."""
    from huggingface_hub import constants  # deferred: huggingface_hub is optional

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def _has_weights(directory: Path, layouts: tuple[tuple[str, str], ...]) -> bool:
    return any((directory / name).is_file() for layout in layouts for name in layout)


def _download(repo_id: str, weights: bool, revision: str | None) -> Path:
    # deferred: huggingface_hub is optional (only Hub ids need it)
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
