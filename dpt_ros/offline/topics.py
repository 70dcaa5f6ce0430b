"""The node's output topics and the messages for one FrameResult, as the node builds them.

Topic names, encodings and which outputs exist come from dpt_ros.core.pipeline.outputs (the node's
own rules); messages from dpt_ros.messages. Names are relative to a prefix, so a bag
written with `--prefix /dpt` has the topics a node named `/dpt` would publish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from std_msgs.msg import String

from dpt_ros import messages
from dpt_ros.core.pipeline.outputs import (
    INFO_TOPICS,
    LABELS_TOPIC,
    OUTPUT_TOPICS,
    current_outputs,
    image_encoding,
)
from dpt_ros.core.pipeline.pipeline import FrameResult, Pipeline

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
STRING = "std_msgs/msg/String"


@dataclass(frozen=True)
class OutputTopic:
    """One output topic: name under the prefix, message type, Pipeline output it carries."""

    name: str
    msgtype: str
    output: str | None = None  # None: labels
    info_of: str | None = None  # the image output this camera_info belongs to


def _relative(topic: str) -> str:
    return topic.removeprefix("~/")


OUTPUT_TOPIC_LIST = (
    *(
        OutputTopic(_relative(topic), POINTCLOUD2 if out == "points" else IMAGE, out)
        for out, topic in OUTPUT_TOPICS.items()
    ),
    *(OutputTopic(_relative(topic), CAMERA_INFO, info_of=out)
      for out, topic in INFO_TOPICS.items()),
    OutputTopic(_relative(LABELS_TOPIC), STRING),
)
BY_NAME = {t.name: t for t in OUTPUT_TOPIC_LIST}
LABELS = _relative(LABELS_TOPIC)


def topic_name(prefix: str, name: str) -> str:
    """'/dpt' + 'depth/image' -> '/dpt/depth/image'; the result is always absolute."""
    stem = prefix.strip("/")
    return f"/{stem}/{name}" if stem else f"/{name}"


def available_topics(pipeline: Pipeline) -> list[OutputTopic]:
    """What the node publishes for this pipeline when every output has a subscriber.

    Settings are fixed for a bag run, so metric-only outputs (depth in metres, points) are
    left out unless the depth is metric (a metric model, or depth.scale set).
    """
    outputs = set(current_outputs(pipeline))
    names = {t.name for t in OUTPUT_TOPIC_LIST
             if t.output in outputs or t.info_of in outputs}
    if pipeline.has_segmentation:
        names.add(LABELS)
    return [t for t in OUTPUT_TOPIC_LIST if t.name in names]


def select_topics(pipeline: Pipeline, requested: list[str] | None) -> list[OutputTopic]:
    """`requested` names (all available when None); ValueError for unknown or impossible ones."""
    available = available_topics(pipeline)
    if requested is None:
        return available
    unknown = [n for n in requested if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown output topic(s) {unknown}; choose from {list(BY_NAME)}")
    names = {t.name for t in available}
    impossible = [n for n in requested if n not in names]
    if impossible:
        raise ValueError(
            f"output topic(s) {impossible} cannot be produced by this model (available: "
            f"{sorted(names)}; metric depth and points need a metric model or depth.scale)"
        )
    return [t for t in available if t.name in requested]


def wanted_outputs(topics: list[OutputTopic]) -> set[str]:
    """The Pipeline `want` set for these topics (a camera_info alone wants its image)."""
    return {t.output or t.info_of for t in topics if (t.output or t.info_of) is not None}


def result_messages(
    result: FrameResult, header: Any, topics: list[OutputTopic], info: Any = None,
    source: tuple[int, int] | None = None,
) -> list[tuple[OutputTopic, Any]]:
    """The messages the node publishes for `result`, stamped with the input `header`.

    As in the node, each image's sibling camera_info goes out together with that image, and
    is the input image's camera_info `info` (of an image of `source` = width, height), or
    one of the parameter intrinsics when `info` is None.
    """
    out: list[tuple[OutputTopic, Any]] = []
    infos = {t.info_of: t for t in topics if t.info_of is not None}
    camera_info = None
    for topic in topics:
        if topic.output is None:
            continue
        value = getattr(result, topic.output)
        if value is None:
            continue
        if topic.msgtype == POINTCLOUD2:
            out.append((topic, messages.pointcloud_msg(value, header)))
            continue
        encoding = image_encoding(topic.output, value)
        out.append((topic, messages.image_msg(value, encoding, header)))
        if topic.output in infos and result.intrinsics is not None:
            if camera_info is None:
                size = source or (result.intrinsics.width, result.intrinsics.height)
                camera_info = messages.depth_camera_info(info, result.intrinsics, header,
                                                         size)
            out.append((infos[topic.output], camera_info))
    return out


def labels_message(labels: dict[int, str]) -> Any:
    """The latched ~/segmentation/labels message: JSON {"id": "name"} as the node sends it."""
    return String(data=json.dumps({str(k): v for k, v in sorted(labels.items())}))
