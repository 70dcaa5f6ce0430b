"""The shipped rviz2 config moved into a namespace: rviz2 resolves display topics as
written, so a config for /dpt_node/... shows nothing of /robot1/dpt_node/.... The launch file
writes this rewritten copy and starts rviz2 on it (what nav2 does with its rviz template)."""

from __future__ import annotations

from typing import Any

import yaml

from dpt_ros.config.launch_args import NODE_NAME, absolute_namespace, resolve_topic

TEMPLATE_INPUT = "/camera/image_raw"  # the input display's topic in rviz/dpt.rviz


def display_topics(config: dict[str, Any]) -> dict[str, str]:
    """{display name: topic} of every display that subscribes to a topic."""
    displays = config.get("Visualization Manager", {}).get("Displays", [])
    return {d["Name"]: d["Topic"]["Value"] for d in displays if isinstance(d.get("Topic"), dict)}


def namespaced_config(text: str, namespace: str, image_topic: str) -> str:
    """The rviz config `text` with dpt_node's output topics under `namespace` and the input
    display on `image_topic` as dpt_node resolves it there (a relative name lands in the
    namespace, an absolute one stays)."""
    config = yaml.safe_load(text)
    ns = absolute_namespace(namespace).rstrip("/")
    node_prefix = f"/{NODE_NAME}/"
    for display in config.get("Visualization Manager", {}).get("Displays", []):
        topic = display.get("Topic")
        if not isinstance(topic, dict):
            continue
        value = str(topic.get("Value", ""))
        if value == TEMPLATE_INPUT:
            topic["Value"] = resolve_topic(image_topic, namespace)
        elif value.startswith(node_prefix):
            topic["Value"] = ns + value
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
