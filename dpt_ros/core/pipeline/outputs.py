"""Which outputs exist, which are offered and which are computed for a frame: the one home
of these rules (metric honesty, lazy work), shared by the node and the offline tools and
tested without ROS."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from dpt_ros.core.camera.geometry import Intrinsics

# Pipeline output name -> topic (relative to the node: ~/...). Every image is `<ns>/image`
# with its CameraInfo on the sibling `<ns>/camera_info` (`info_topic`), the topic
# image_transport's CameraSubscriber derives (depth_image_proc, depthimage_to_laserscan,
# rviz2's DepthCloud find it with only the image remapped); no data topic is nested under
# an image topic, whose sub-names image_transport owns (`/compressed`, `/compressedDepth`,
# `/theora`). Before issue 19: ~/depth, ~/depth/relative, ~/depth/colorized,
# ~/segmentation, ~/segmentation/colorized, ~/segmentation/overlay (docs/ros_node.md,
# Migration).
OUTPUT_TOPICS: dict[str, str] = {
    "depth": "~/depth/image",
    "relative": "~/depth_relative/image",
    "depth_colorized": "~/depth_colorized/image",
    "segmentation": "~/segmentation/image",
    "seg_colorized": "~/segmentation_colorized/image",
    "overlay": "~/segmentation_overlay/image",
    "points": "~/points",
    "sky": "~/sky/image",  # mono8, 255 where the sky head sees sky (Depth Anything 3)
}
LABELS_TOPIC = "~/segmentation/labels"
DIAGNOSTICS_TOPIC = "/diagnostics"
IMAGE_OUTPUTS = ("depth", "relative", "depth_colorized", "segmentation", "seg_colorized",
                 "overlay", "sky")


def info_topic(image_topic: str) -> str:
    """The camera_info topic image_transport derives for an image topic: its sibling
    (`image_transport::getCameraInfoTopic`: `~/depth/image` -> `~/depth/camera_info`)."""
    return image_topic.rsplit("/", 1)[0] + "/camera_info"


# output -> its camera_info topic (every image output has one)
INFO_TOPICS: dict[str, str] = {o: info_topic(OUTPUT_TOPICS[o]) for o in IMAGE_OUTPUTS}
DEPTH_INFO_TOPIC = INFO_TOPICS["depth"]  # ~/depth/camera_info, as before
METRIC_ONLY = frozenset({"depth", "points"})


def available_outputs(has_depth: bool, has_segmentation: bool, model_is_metric: bool,
                      has_sky: bool = False) -> list[str]:
    """Outputs the loaded models can produce at all (each gets a publisher).

    `depth` and `points` are offered for relative models too, because setting depth.scale at
    run time, or a valid alignment, makes them metric; they stay silent until then. `sky`
    (mono8, 255 = sky) for a depth model with a sky head (Depth Anything 3).
    """
    names: list[str] = []
    if has_depth:
        names += ["depth", "depth_colorized", "points"]
        if not model_is_metric:
            names.append("relative")
        if has_sky:
            names.append("sky")
    if has_segmentation:
        names += ["segmentation", "seg_colorized", "overlay"]
    return names


def current_outputs(pipeline) -> list[str]:
    """What `pipeline` (a `core.pipeline.pipeline.Pipeline`) can produce with its settings now: the
    available outputs less the metric ones (depth in metres, points) while its depth cannot
    be metric (`depth_may_be_metric`: a relative model with neither `depth.scale` nor
    alignment). The offline tools write exactly these; the node publishes them on request.
    Per frame, `frame_depth_source` decides whether the metric ones exist."""
    names = available_outputs(
        pipeline.has_depth, pipeline.has_segmentation, pipeline.model_is_metric,
        getattr(pipeline, "has_sky", False),
    )
    return names if pipeline.depth_may_be_metric else [n for n in names if n not in METRIC_ONLY]


def frame_depth_source(model_is_metric: bool, takes_prompt: bool, prompted: bool,
                       scale_set: bool, aligned: bool) -> str | None:
    """Where one frame's metres come from, or None: that frame gets no `depth` and no
    `points` (metric honesty, per frame).

    - Prompt Depth Anything (`takes_prompt`): only with a prompt (its metric reference);
      "aligned" when an alignment also holds, else "model".
    - A metric model: "aligned" (scale corrected) while the alignment is valid, else its
      own metres ("model").
    - A relative model: "aligned" while the alignment is valid, else "depth.scale" when a
      calibration is set, else None.
    """
    if takes_prompt and not prompted:
        return None
    if aligned:
        return "aligned"
    if model_is_metric:
        return "model"
    return "depth.scale" if scale_set else None


def wanted_outputs(
    available: Iterable[str], subscribed: Iterable[str], forced: Iterable[str], metric: bool
) -> set[str]:
    """What to compute for the next frame: outputs somebody listens to or that are forced,
    never metric ones (depth in metres, points) while the depth is not metric."""
    want = (set(subscribed) | set(forced)) & set(available)
    return want if metric else want - METRIC_ONLY


def image_encoding(name: str, array: np.ndarray) -> str:
    """ROS encoding of an output array (REP 118 depth, class-id images, BGR colour)."""
    if name in ("depth", "relative"):
        return "32FC1"
    if name == "segmentation":
        return "mono8" if array.dtype == np.uint8 else "16UC1"
    if name == "sky":
        return "mono8"
    return "bgr8"


def fallback_intrinsics(
    focal_length: float, hfov_deg: float, width: int, height: int
) -> Intrinsics:
    """Intrinsics from parameters for a camera that publishes no camera_info."""
    if focal_length > 0:
        return Intrinsics(
            focal_length, focal_length, (width - 1) / 2.0, (height - 1) / 2.0, width, height
        )
    return Intrinsics.from_hfov(width, height, hfov_deg)


def camera_without_info(values: Mapping[str, Any], width: int, height: int,
                        model_estimates: bool) -> Intrinsics | None:
    """The camera model of an image with no camera_info: None when the depth model's own
    estimate serves (`model_estimates`: Depth Pro's field of view) and the user gave no
    intrinsics (camera.focal_length 0, camera.use_parameters off, camera.estimate_intrinsics
    on), else the parameters' (`fallback_intrinsics`). Node and bag tool share this rule."""
    if (model_estimates and values.get("camera.estimate_intrinsics", True)
            and values["camera.focal_length"] <= 0 and not values["camera.use_parameters"]):
        return None
    return fallback_intrinsics(values["camera.focal_length"], values["camera.hfov"], width,
                               height)


def camera_topic(topic: str, camera: str) -> str:
    """`topic` of one camera of a multi-camera node: `image` -> `front/image`, `~/depth` ->
    `~/front/depth`. The unnamed camera ("", the single-camera node) keeps the plain names."""
    if not camera:
        return topic
    if topic.startswith("~/"):
        return f"~/{camera}/{topic[2:]}"
    return f"{camera}/{topic}"
