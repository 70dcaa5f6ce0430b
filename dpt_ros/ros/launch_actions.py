"""`NodeSpec` -> launch_ros action: the one conversion both launch files use (imported only
by them, so nothing else in the package needs launch_ros)."""

from __future__ import annotations

from launch.actions import EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import Parameter
from lifecycle_msgs.msg import Transition

from dpt_ros.config.launch_args import NodeSpec


def launch_node(spec: NodeSpec, **kwargs) -> Node:
    """The launch_ros action that runs `spec`: a LifecycleNode for the managed node, a Node
    otherwise. Parameter files go on as files; overrides as typed `-p` rules (`value_type`
    keeps the string '123' a string and makes rate:=5 the double 5.0)."""
    cls = LifecycleNode if spec.lifecycle else Node
    return cls(
        package=spec.package,
        executable=spec.executable,
        name=spec.name,
        namespace=spec.namespace,
        arguments=spec.arguments,
        parameters=[*spec.params_files,
                    *(Parameter(k, v, value_type=type(v)) for k, v in spec.params.items())],
        remappings=spec.remappings,
        output="screen",
        emulate_tty=True,
        **kwargs,
    )


def autostart(node: LifecycleNode) -> list:
    """Launch actions that configure `node` once it runs and activate it once it is
    inactive (what `autostart:=true` adds; a lifecycle manager does it otherwise)."""
    def change(transition: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition))

    return [
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=node, goal_state="inactive",
            entities=[change(Transition.TRANSITION_ACTIVATE)])),
        change(Transition.TRANSITION_CONFIGURE),
    ]
