"""rclpy side of dpt_node's parameter table (`config.params`): descriptors with description,
choices and range, declaration of every parameter, and the values as plain Python."""

from __future__ import annotations

from array import array
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from dpt_ros.config.params import (
    BY_NAME,
    SPECS,
    ParamSpec,
    check_update,
    from_yaml,
    takes_yaml_bool,
)


class StartupError(RuntimeError):
    """Configuration the node cannot start with (reported as one line, exit code 1)."""


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """ROS descriptor of one parameter: description, choices, range, read-only flag."""
    desc = ParameterDescriptor(description=spec.description, read_only=spec.read_only,
                               dynamic_typing=takes_yaml_bool(spec))
    if spec.choices:
        desc.additional_constraints = "one of: " + ", ".join(spec.choices)
    if isinstance(spec.default, list):
        if spec.lo is not None:
            desc.additional_constraints = f"each value in [{spec.lo}, {spec.hi}]"
    elif spec.lo is not None and spec.hi is not None:
        if isinstance(spec.default, float):
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(spec.lo), to_value=float(spec.hi))
            ]
        else:
            desc.integer_range = [IntegerRange(from_value=int(spec.lo), to_value=int(spec.hi))]
    return desc


def _ros_default(spec: ParamSpec) -> Any:
    """rclpy infers a parameter's type from its default, and `[]` has none: the string array
    with an empty default (`cameras`) is declared by type; left unset it keeps the default."""
    return Parameter.Type.STRING_ARRAY if spec.default == [] else spec.default


def plain(value: Any, name: str = "") -> Any:
    """rclpy hands array parameters over as array.array; the checks want lists. With the
    parameter's `name`, YAML's bare `off` (false) becomes "off" (`config.params.from_yaml`)."""
    return from_yaml(name, value.tolist() if isinstance(value, array) else value)


def declare_all(node: Node) -> dict[str, Any]:
    """Declare every parameter of the table on `node`; their values (defaults filled in)."""
    declared = node.declare_parameters(
        "", [(s.name, _ros_default(s), descriptor(s)) for s in SPECS]
    )
    return {
        p.name: BY_NAME[p.name].default if p.value is None else plain(p.value, p.name)
        for p in declared
    }


def checked(values: dict[str, Any]) -> dict[str, Any]:
    """`values` when the whole set is acceptable (relations between values can only be
    judged once all are known), else StartupError with the reason."""
    reason = check_update(values, {})
    if reason:
        raise StartupError(f"invalid parameters: {reason}")
    return values
