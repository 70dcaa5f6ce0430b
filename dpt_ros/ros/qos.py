"""QoS choices for dpt_node.

Input: by default the image subscription matches the publisher's reliability, as
image_pipeline does (`image_proc::getQosProfile`: the publisher's profile, sensor-data history;
sensor-data QoS when no publisher is known yet). A best-effort reader of a reliable camera
matches but, with the pip Fast DDS, silently loses every frame of about 1 MB or more; a
reliable reader of a best-effort camera does not match at all. Unlike image_pipeline, the node
re-checks the publishers every second while in `auto`, because a node started before its
camera would otherwise stay best-effort forever.

`MatchedSubscription` is such a subscription (the image and camera_info inputs, the
alignment references): a camera_info reader that is best-effort where the camera is
reliable drops what a busy node does not take in time.

Output: reliable, volatile, keep-last 1 — what rviz2 and default rclpy/rclcpp subscribers
ask for; depth 1 keeps only the newest (possibly multi-MB) message per topic in the writer.

Both can be changed the standard way, with the QoS override parameters integrators already
write in their YAML (`qos_overrides.<topic>.publisher.<policy>`,
`qos_overrides.<topic>.subscription.<policy>`, read-only, topic names resolved): outputs
through rclpy's `QoSOverridingOptions` (history, depth, reliability, durability); inputs
through the same names declared here (`input_overrides`), because their reliability
follows the camera at run time: `reliability` reliable / best_effort forces one, unset (or
auto) keeps today's matching (`qos.reliability`), `depth` sets the history depth
(`qos.depth` by default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.qos_overriding_options import QoSOverridingOptions, QoSPolicyKind

if TYPE_CHECKING:
    from rclpy.node import Node
    from rclpy.subscription import Subscription

RELIABLE = "reliable"
BEST_EFFORT = "best_effort"


def choose_reliability(mode: str, publishers: Iterable[str], current: str | None) -> str:
    """The input reliability for `mode` (auto/reliable/best_effort) given the reliability of
    each known publisher ("reliable"/"best_effort"/other).

    auto: best-effort if any publisher is best-effort (the only setting that matches them
    all), reliable if all are reliable; with no publisher, keep `current`, or start with
    best-effort (sensor-data QoS, as image_pipeline).
    """
    if mode in (RELIABLE, BEST_EFFORT):
        return mode
    kinds = set(publishers)
    if not kinds:
        return current or BEST_EFFORT
    return BEST_EFFORT if BEST_EFFORT in kinds else RELIABLE


def reliability_name(policy: ReliabilityPolicy) -> str:
    """Our name for an rmw reliability policy as reported by graph queries."""
    if policy == ReliabilityPolicy.BEST_EFFORT:
        return BEST_EFFORT
    if policy == ReliabilityPolicy.RELIABLE:
        return RELIABLE
    return "other"


def input_qos(reliability: str, depth: int) -> QoSProfile:
    """Subscription profile for image / camera_info (sensor-data history, chosen reliability)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=(
            ReliabilityPolicy.RELIABLE if reliability == RELIABLE else ReliabilityPolicy.BEST_EFFORT
        ),
        durability=DurabilityPolicy.VOLATILE,
    )


def output_overrides() -> QoSOverridingOptions:
    """`qos_overrides.<output topic>.publisher.{history,depth,reliability,durability}`."""
    return QoSOverridingOptions([QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH,
                                 QoSPolicyKind.RELIABILITY, QoSPolicyKind.DURABILITY])


def input_overrides(node: Node, topic: str, values: Mapping[str, Any]
                    ) -> tuple[str | None, int]:
    """An input's standard override parameters, declared on `node` (once per topic):
    (forced reliability or None to follow `qos.reliability`, history depth)."""
    base = f"qos_overrides.{topic}.subscription."
    if not node.has_parameter(base + "reliability"):
        node.declare_parameter(base + "reliability", "", ParameterDescriptor(
            description=f"reliability of the subscription {topic}: reliable, best_effort, "
                        "or '' / auto (follow qos.reliability: match the publishers)",
            read_only=True))
        node.declare_parameter(base + "depth", int(values["qos.depth"]), ParameterDescriptor(
            description=f"history depth of the subscription {topic} (keep last)",
            read_only=True, integer_range=[IntegerRange(from_value=1, to_value=1000)]))
    reliability = str(node.get_parameter(base + "reliability").value or "").lower()
    if reliability not in ("", "auto", "system_default", RELIABLE, BEST_EFFORT):
        raise ValueError(f"{base}reliability must be reliable, best_effort or auto; got "
                         f"'{reliability}'")
    forced = reliability if reliability in (RELIABLE, BEST_EFFORT) else None
    return forced, int(node.get_parameter(base + "depth").value)


def output_qos() -> QoSProfile:
    """Publisher profile for every image / cloud output."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def latched_qos() -> QoSProfile:
    """Transient-local: late subscribers still get the class names published once."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


class MatchedSubscription:
    """A subscription whose reliability follows its publishers (`qos.reliability`, history
    depth `qos.depth`): `update()` (at subscribe, then on the node's diagnostics timer)
    re-subscribes when the reliability it should use differs from the one it has, and says so
    in the log when it changes. A best-effort reader of a reliable camera would lose its
    ~1 MB frames (docs/ros_node.md, Troubleshooting)."""

    def __init__(self, node: Node, msg_type: type, topic: str, callback: Callable[[Any], None],
                 values: Mapping[str, Any]) -> None:
        self.node, self.msg_type, self.topic, self.callback = node, msg_type, topic, callback
        self.values = values
        self.reliability: str | None = None  # None while not subscribed
        self.sub: Subscription | None = None
        self.forced, self.depth = input_overrides(node, topic, values)

    def update(self) -> None:
        publishers = self.node.get_publishers_info_by_topic(self.topic)
        want = choose_reliability(
            self.forced or self.values["qos.reliability"],
            [reliability_name(p.qos_profile.reliability) for p in publishers],
            self.reliability,
        )
        if want == self.reliability and self.sub is not None:
            return
        if self.sub is not None:
            self.node.destroy_subscription(self.sub)
        self.sub = self.node.create_subscription(
            self.msg_type, self.topic, self.callback, input_qos(want, self.depth)
        )
        if self.reliability is not None:
            self.node.get_logger().info(f"input QoS of {self.topic} is now {want}")
        self.reliability = want

    def destroy(self) -> None:
        if self.sub is not None:
            self.node.destroy_subscription(self.sub)
        self.sub = None
        self.reliability = None

    def take_pending(self, limit: int = 64) -> list[Any]:
        """Messages the middleware has already delivered to this subscription that the
        executor has not taken yet (oldest first, at most `limit`), taken now.

        A busy executor may run a timer before the subscription callbacks of the same wait:
        a deadline that expires before that is not a message that failed to come, only one
        not taken yet (the camera_info published just before its image). The executor takes
        messages the same way (`Subscription.handle.take_message`, under the handle's
        guard); this runs on the executor's own thread, between two of its callbacks."""
        if self.sub is None:
            return []
        taken = []
        with self.sub.handle:
            for _ in range(limit):
                got = self.sub.handle.take_message(self.sub.msg_type, self.sub.raw)
                if got is None:
                    break
                taken.append(got[0])
        return taken
