"""dpt_lifecycle_node: dpt_node as a managed (lifecycle) node, for systems that bring
perception up and down with the rest of the stack (nav2's lifecycle manager, launch events).

Same node name, parameters, topics and behaviour as dpt_node (`node.DptCore`); only the
transitions are driven from outside through the standard lifecycle services
(`~/change_state`, `~/get_state`, ...):
- configure: check the parameters, load the model(s), create publishers; a bad parameter or
  model fails the transition with the reason in the log, and the node stays unconfigured
  for another try;
- activate: enable the lifecycle publishers, start the worker, subscribe, send the latched
  labels; a failure (e.g. the warm-up) fails the transition with the reason in the log,
  whatever had started is stopped again, and the node stays inactive for another try;
- deactivate: no input, no output (the lifecycle publishers publish nothing while inactive);
- cleanup: publishers destroyed, models and their device memory released;
- shutdown (from any state): whatever is up is taken down, and the process exits.
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.publisher import Publisher

from dpt_ros.ros.node import NODE_NAME, DptCore, failure_reason, run


class DptLifecycleNode(DptCore, LifecycleNode):
    """dpt_node, unconfigured until its lifecycle services say configure / activate."""

    def __init__(self, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **kwargs)
        self._declare()
        self.finished = False

    def _output_publisher(self, msg_type: type, topic: str, qos: Any, **kwargs: Any
                          ) -> Publisher:
        """Every output (and /diagnostics, the latched labels) a lifecycle publisher."""
        return self.create_lifecycle_publisher(msg_type, topic, qos, **kwargs)

    def _drop_publisher(self, pub: Publisher) -> None:
        self.destroy_lifecycle_publisher(pub)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # the reason goes to the log; the node stays unconfigured
            self.get_logger().error(f"configure failed: {failure_reason(exc)}")
            self.rt = None
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info("configured: models loaded, publishers created")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        LifecycleNode.on_activate(self, state)  # the lifecycle publishers first
        try:
            self._activate()
        except Exception as exc:  # uncaught, rclpy would take it as ERROR and shut down
            self.get_logger().error(f"activate failed: {failure_reason(exc)}")
            self._deactivate()  # undo what had started: worker, subscriptions, timers
            LifecycleNode.on_deactivate(self, state)
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        LifecycleNode.on_deactivate(self, state)  # publishers silent while inactive
        self.get_logger().info("deactivated: no input, no output")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        self.get_logger().info("cleaned up: models released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self._deactivate()
        if self.rt is not None:
            self._cleanup()
        self.finished = True
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.on_shutdown(state)
        return TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> int:
    """Entry point of the `dpt_lifecycle_node` console script."""
    return run(DptLifecycleNode, args)


if __name__ == "__main__":
    sys.exit(main())
