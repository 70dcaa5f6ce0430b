"""The two exceptions of the model package, in a module of their own so that every layer
(configs, Hub access, checkpoint reading, processors) raises the same types without
importing one another."""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid or unsupported config value; the message names the field."""


class ModelLoadError(RuntimeError):
    """A checkpoint that cannot be found, read or matched to the model; names file / key."""
