"""The one vocabulary for checking config and preprocessor fields.

Model configs, backbone configs and image-processor configs all check the same kinds of
value (an integer, a number in a range, a flag, a choice, a list of integers, an (h, w)
pair) and all fail with a `ConfigError` that names the field. They differ only in how the
message starts, which tells the user which file holds the bad value, so each kind of file
gets one `Fields` instance: `CONFIG` (a model's config.json), `BACKBONE` (a backbone_config;
the backbone registry adds "config field backbone_config (kind): " in front) and
`PREPROCESSOR` (preprocessor_config.json).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np

from dpt_ros.model.errors import ConfigError


def is_int(value: Any) -> bool:
    """An integer (numpy's too), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number (numpy's too), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


class Fields:
    """Checks for the fields of one kind of file; every failure is a ConfigError whose
    message `message(name, value, accepted)` names the field and what is accepted."""

    def __init__(self, message: Callable[[str, Any, str], str]) -> None:
        self._message = message

    def error(self, name: str, value: Any, accepted: str) -> ConfigError:
        return ConfigError(self._message(name, value, accepted))

    def fail(self, name: str, value: Any, accepted: str) -> NoReturn:
        raise self.error(name, value, accepted)

    def integer(self, name: str, value: Any, minimum: int | None = 1) -> None:
        """A Python int (not a bool) >= `minimum` (any int when None)."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, value, "an integer")
        if minimum is not None and value < minimum:
            self.fail(name, value, f"an integer >= {minimum}")

    def number(self, name: str, value: Any, minimum: float = 0.0, below: float | None = None,
               exclusive: bool = False) -> None:
        """A number in [minimum, below), or (minimum, below) when `exclusive`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(name, value, "a number")
        if value < minimum or (exclusive and value == minimum) or (
                below is not None and value >= below):
            self.fail(name, value, f"a number in {'(' if exclusive else '['}{minimum}, "
                                   f"{below if below is not None else 'inf'})")

    def probability(self, name: str, value: Any) -> None:
        """A dropout / drop-path rate: a number in [0, 1)."""
        self.number(name, value, below=1.0)

    def flag(self, name: str, value: Any, allow_none: bool = False) -> None:
        if not isinstance(value, bool) and not (allow_none and value is None):
            self.fail(name, value, "true or false" + (" or null" if allow_none else ""))

    def choice(self, name: str, value: Any, choices: Sequence[Any]) -> None:
        if value not in choices:
            self.fail(name, value, ", ".join(repr(c) for c in choices))

    def integers(self, name: str, value: Any, minimum: int | None = 1,
                 non_empty: bool = False) -> list[int]:
        """A list of integers >= `minimum`, as a list."""
        if not isinstance(value, (list, tuple)) or (non_empty and not value):
            self.fail(name, value, ("a non-empty " if non_empty else "a ") + "list of integers")
        for v in value:
            self.integer(name, v, minimum)
        return list(value)

    def pair(self, name: str, value: Any) -> tuple[int, int]:
        """An int or an (h, w) pair of positive ints, as transformers accepts for
        image_size / patch_size."""
        pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
        if len(pair) != 2:
            self.fail(name, value, "an integer or a pair of integers")
        for v in pair:
            self.integer(name, v)
        return pair


CONFIG = Fields(lambda name, value, accepted:
                f"config field {name}={value!r} is invalid; accepted: {accepted}")
BACKBONE = Fields(lambda name, value, accepted:
                  f"{name}={value!r} is invalid; accepted: {accepted}")
PREPROCESSOR = Fields(lambda name, value, accepted:
                      f"preprocessor field '{name}': unsupported value {value!r} ({accepted})")
