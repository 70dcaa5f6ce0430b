"""The manifest in OUTPUT_ROOT: what made the outputs, and one row per unit.

It is the run's bookkeeping and a person's view of it, written atomically after every unit.
It is not the truth about what is done: the done-markers inside committed outputs are
(`commit.py`), so rows lost in an aborted run cost nothing. It does guard the root: a run
with another model or other options is refused unless `--force`, so one output root never
silently mixes outputs of two models.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dpt_ros.offline.exitcodes import CliError, ExitCode

MANIFEST = "fleet_manifest.json"
# Parameters that change how fast, not what: left out of the fingerprint.
RUNTIME_ONLY = {"device", "num_threads", "compile", "warmup", "input_transport"}
RUNTIME_PREFIXES = ("publish.", "qos.")


def model_digest(source: str | None) -> str | None:
    """A cheap identity of a local checkpoint directory (config + every file's size and
    first/last MiB), so new weights under the same path count as a change of model; Hub ids
    are identified by id and revision (the commit each worker resolved is in its rows)."""
    if not source or not Path(source).is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in Path(source).rglob("*") if p.is_file()):
        size = path.stat().st_size
        h.update(f"{path.relative_to(source)}:{size}".encode())
        with path.open("rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read())
    return h.hexdigest()[:16]


def fingerprint(values: dict[str, Any], bag_options: dict[str, Any]) -> dict[str, Any]:
    """Model, revision and every option that changes the outputs."""
    params = {k: v for k, v in sorted(values.items())
              if k not in RUNTIME_ONLY and not k.startswith(RUNTIME_PREFIXES)}
    fp = {
        "model": {
            "depth_model": values.get("depth_model") or None,
            "depth_model_revision": values.get("depth_model_revision") or None,
            "depth_model_digest": model_digest(values.get("depth_model")),
            "segmentation_model": values.get("segmentation_model") or None,
            "segmentation_model_revision": values.get("segmentation_model_revision") or None,
            "segmentation_model_digest": model_digest(values.get("segmentation_model")),
        },
        "options": bag_options,
        "params": params,
    }
    blob = json.dumps(fp, sort_keys=True, default=str).encode()
    fp["digest"] = hashlib.sha256(blob).hexdigest()[:16]
    return fp


def _diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = []
    for group in ("model", "options", "params"):
        a, b = old.get(group, {}), new.get(group, {})
        keys += [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted({*a, *b})
                 if json.dumps(a.get(k), default=str) != json.dumps(b.get(k), default=str)]
    return keys


class Manifest:
    """`OUTPUT_ROOT/fleet_manifest.json`: {fingerprint, units: {unit id: row}}."""

    def __init__(self, root: Path, fp: dict[str, Any]) -> None:
        self.path = root / MANIFEST
        self.fingerprint = fp
        self.rows: dict[str, dict[str, Any]] = {}
        self.previous: dict[str, Any] | None = None

    def load(self, force: bool) -> None:
        """Read an existing manifest; refuse another model / options unless `force`."""
        if not self.path.exists():
            return
        try:
            old = json.loads(self.path.read_text())
        except (OSError, ValueError) as err:
            raise CliError(ExitCode.OUTPUT_EXISTS, f"{self.path} is unreadable ({err}); "
                           "pass --force to start the manifest afresh") from None
        self.previous = old.get("fingerprint") or {}
        if self.previous.get("digest") != self.fingerprint["digest"]:
            if not force:
                changes = "; ".join(_diff(self.previous, self.fingerprint)) or "unknown"
                raise CliError(
                    ExitCode.OUTPUT_EXISTS,
                    f"{self.path.parent} was made with another model or other options "
                    f"({changes}); pass --force to redo it with these, or use a new output root")
            return  # forced: the old rows describe outputs that will be redone
        self.rows = dict(old.get("units") or {})

    def set(self, row: dict[str, Any]) -> None:
        self.rows[row["unit"]] = row

    def save(self) -> None:
        """Atomically (write + rename): a crash leaves the old or the new manifest."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        data = {"fingerprint": self.fingerprint, "units": self.rows}
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
        os.replace(tmp, self.path)
