"""The node's YAML parameter file, read without ROS, mapped onto Pipeline arguments.

The node and the offline tool must agree on what a parameter means, so the mapping from
parameter names to `Pipeline(...)` keyword arguments lives here once and both import it.
Parameters that are not about the pipeline (topics, QoS, ...) are ignored.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import yaml

from dpt_ros.config.settings import PipelineSettings

# parameter name -> Pipeline keyword (string-valued start-up parameters)
PIPELINE_STRINGS = {
    "depth_model": "depth_model",
    "segmentation_model": "segmentation_model",
    "depth_model_revision": "depth_revision",
    "segmentation_model_revision": "segmentation_revision",
    "device": "device",
    "dtype": "dtype",
    "compile": "compile_mode",
}
SETTINGS_FIELDS = {f.name: f for f in fields(PipelineSettings)}


def load_params_file(path: str | Path, node_name: str = "dpt_node") -> dict[str, Any]:
    """The flattened `ros__parameters` of `node_name` from a ROS 2 parameter file.

    Same lookup as ROS: `/**` wildcard entries first, then the node's own (possibly
    namespaced, e.g. `/robot/dpt_node`) entries on top. Nested dicts become dotted names.
    """
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read parameter file {path}: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError(
            f"parameter file {path}: expected a mapping '{node_name}: ros__parameters:'"
        )
    wildcard: dict[str, Any] = {}
    own: dict[str, Any] = {}
    found = False
    for name, params in _parameter_blocks(doc, ""):
        last = name.rstrip("/").rsplit("/", 1)[-1]
        if last == "**":
            wildcard.update(params)
            found = True
        elif last == node_name:
            own.update(params)
            found = True
    if not found:
        raise ValueError(
            f"parameter file {path} has no '{node_name}: ros__parameters:' (or '/**:') section"
        )
    return {**wildcard, **own}


def _parameter_blocks(doc: dict, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """(node path, flattened parameters) for every `ros__parameters` block in the tree."""
    blocks = []
    for key, value in doc.items():
        if not isinstance(value, dict):
            continue
        name = f"{prefix}/{str(key).lstrip('/')}"
        if "ros__parameters" in value:
            params = value["ros__parameters"]
            if not isinstance(params, dict):
                raise ValueError(f"{name}: ros__parameters must be a mapping")
            blocks.append((name, _flatten(params, "")))
        else:
            blocks.extend(_parameter_blocks(value, name))
    return blocks


def _flatten(params: dict, prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def settings_from_params(
    params: dict[str, Any], base: PipelineSettings | None = None
) -> PipelineSettings:
    """`base` (default: defaults) with every PipelineSettings field that `params` names.

    Names are the field names, with the YAML's dots accepted for underscores (depth.scale =
    depth_scale, pointcloud.stride = pointcloud_stride); the node can pass only the changed
    parameters.
    """
    updates = {
        name: _coerce(name, value, SETTINGS_FIELDS[name].default)
        for name, value in _normalised(params).items()
        if name in SETTINGS_FIELDS
    }
    return replace(base if base is not None else PipelineSettings(), **updates)


def pipeline_kwargs_from_params(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `Pipeline(**kwargs)` from flattened node parameters.

    depth_model, segmentation_model, depth_model_revision (→ depth_revision),
    segmentation_model_revision (→ segmentation_revision), device, dtype, compile (→
    compile_mode): strings;
    input_size: [height, width] ([] or [0, 0] = the checkpoint's own size); every
    PipelineSettings field by its name. Names as in settings_from_params (dotted or
    underscored). Raises ValueError naming the parameter when a value has the wrong type.
    """
    params = _normalised(params)
    kwargs: dict[str, Any] = {}
    for name, keyword in PIPELINE_STRINGS.items():
        if name in params:
            kwargs[keyword] = _coerce(name, params[name], "")
    if "input_size" in params:
        kwargs["input_size"] = _input_size(params["input_size"])
    kwargs["settings"] = settings_from_params(params)
    return kwargs


def _normalised(params: dict[str, Any]) -> dict[str, Any]:
    """`depth.scale` -> `depth_scale`: the YAML groups names with dots, the fields use _."""
    return {str(k).replace(".", "_"): v for k, v in params.items()}


def _input_size(value: Any) -> tuple[int, int] | None:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return None
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        raise ValueError(f"parameter input_size: expected [height, width] integers, got {value!r}")
    if value[0] == 0 and value[1] == 0:
        return None
    if value[0] == 0 or value[1] == 0:
        raise ValueError(f"parameter input_size: both sides or neither must be 0, got {value!r}")
    return int(value[0]), int(value[1])


def _coerce(name: str, value: Any, default: Any) -> Any:
    """`value` as the type of `default`, or a ValueError that names the parameter."""
    expected = type(default).__name__
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif default == ():  # the only empty-tuple defaults are lists of names (class filters)
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
        expected = "a list of strings"
    elif isinstance(default, tuple):
        ok = (
            isinstance(value, (list, tuple))
            and len(value) == len(default)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        )
        value = tuple(float(v) for v in value) if ok else value
        expected = f"a list of {len(default)} numbers"
    else:
        ok = True
    if not ok:
        raise ValueError(f"parameter {name}: expected {expected}, got {value!r}")
    return value
