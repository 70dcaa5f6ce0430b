"""The node's parameter file and defaults, read and checked for offline runs.

Same file, same names, same checks as dpt_node (dpt_ros.config.params), and the same mapping
onto Pipeline arguments (dpt_ros.config.params_file), so a YAML tuned on the robot gives the
same outputs offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from dpt_ros.config.params import BY_NAME, DEFAULTS, check_update, decode_options, from_yaml
from dpt_ros.config.params_file import load_params_file, pipeline_kwargs_from_params
from dpt_ros.config.settings import DecodeOptions
from dpt_ros.core.pipeline.pipeline import Pipeline, PipelineConfigError
from dpt_ros.offline.exitcodes import CliError, ExitCode


@dataclass
class OfflineConfig:
    """Node parameter values (defaults, then the file, then command-line overrides)."""

    values: dict[str, Any]
    ignored: list[str] = field(default_factory=list)  # names in the file the node doesn't know

    @property
    def decode(self) -> DecodeOptions:
        """input.bits / input.max_pixels: frames are read as the node reads them."""
        return decode_options(self.values)


def load_config(params_path: str | None, overrides: dict[str, Any]) -> OfflineConfig:
    """Read `params_path` (may be None) and apply `overrides` (None values are not set)."""
    file_values: dict[str, Any] = {}
    if params_path:
        try:
            file_values = load_params_file(params_path)
        except ValueError as err:
            raise CliError(ExitCode.CONFIG, str(err)) from None
    known = {k: from_yaml(k, v) for k, v in file_values.items() if k in BY_NAME}
    known.update({k: v for k, v in overrides.items() if v is not None})
    reason = check_update(known, {})
    if reason:
        raise CliError(ExitCode.CONFIG, f"invalid parameters: {reason}")
    ignored = sorted(k for k in file_values if k not in BY_NAME)
    return OfflineConfig({**DEFAULTS, **known}, ignored)


def build_pipeline(config: OfflineConfig) -> Pipeline:
    """The Pipeline the node would build from these parameters."""
    threads = config.values.get("num_threads", 0)
    if threads:
        torch.set_num_threads(int(threads))
    try:
        return Pipeline(**pipeline_kwargs_from_params(config.values))
    except (PipelineConfigError, ValueError) as err:
        raise CliError(ExitCode.CONFIG, str(err)) from None
