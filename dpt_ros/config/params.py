"""dpt_node's parameters: one table of names, defaults, ranges and descriptions, and the
checks a set-parameters request must pass.

Plain Python (no rclpy, no torch, no model), so the one table drives the node's
declarations, the offline tools' checks, the launch-file tests and the docs, and the checks
are unit-tested without ROS; launch files and CLIs read it without loading torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dpt_ros.config.params_file import pipeline_kwargs_from_params, settings_from_params
from dpt_ros.config.settings import DecodeOptions, PipelineSettings, parse_extrinsic
from dpt_ros.config.vocabulary import (
    ALIGNMENT_MODES,
    COLORMAPS,
    COMPILE_MODES,
    DEFAULT_MAX_PIXELS,
    OUTPUTS,
    SYNC_MODES,
)

# resolved against the segmentation model's labels once it is loaded (`core.pointcloud.filters`)
CLASS_LISTS = ("pointcloud.include_classes", "pointcloud.exclude_classes")
DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
CAMERA_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")  # relative name


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its default fixes the ROS type; lo/hi become the descriptor's range."""

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    read_only: bool = False


def _publish_spec(output: str) -> ParamSpec:
    return ParamSpec(
        f"publish.{output}",
        False,
        f"Compute and publish '{output}' even when nobody subscribes (outputs are lazy).",
    )


SPECS: tuple[ParamSpec, ...] = (
    # Start-up (read-only): changing them means reloading the model, i.e. restarting the node.
    ParamSpec("depth_model", "", "Depth checkpoint: Hugging Face Hub id or local directory "
              "('' = no depth). Either model may be empty, not both.", read_only=True),
    ParamSpec("segmentation_model", "", "Segmentation checkpoint: Hub id or local directory "
              "('' = no segmentation).", read_only=True),
    ParamSpec("depth_model_revision", "", "Hub branch, tag or commit of depth_model ('' = "
              "the default branch); the node logs the commit it loaded. Only for Hub ids.",
              read_only=True),
    ParamSpec("segmentation_model_revision", "", "Hub branch, tag or commit of "
              "segmentation_model ('' = the default branch). Only for Hub ids.",
              read_only=True),
    ParamSpec("device", "auto", "Torch device: auto (CUDA when present), cpu, cuda, cuda:N.",
              read_only=True),
    ParamSpec("dtype", "float32", "Model weights/activations dtype.",
              choices=("float32", "float16", "bfloat16"), read_only=True),
    ParamSpec("compile", "none", "torch.compile each model per input size (reduce-overhead "
              "also captures CUDA graphs; pays off on a GPU). Falls back to eager with one "
              "warning when compilation fails.", choices=COMPILE_MODES, read_only=True),
    ParamSpec("input_size", [0, 0], "Model input [height, width] override in pixels "
              "(multiples of the patch size); [0, 0] = the checkpoint's preprocessor size.",
              lo=0, hi=4096, read_only=True),
    ParamSpec("image_transport", "raw", "As image_pipeline's nodes: raw subscribes to 'image' "
              "(sensor_msgs/Image); compressed to 'image/compressed' (jpeg/png "
              "CompressedImage), the name image_transport derives.",
              choices=("raw", "compressed"), read_only=True),
    ParamSpec("depth_reference_transport", "raw", "How depth_reference arrives, as "
              "image_transport names it: raw (sensor_msgs/Image 32FC1 / 16UC1) or "
              "compressedDepth ('depth_reference/compressedDepth', the compressed_depth "
              "plugin's png: 16UC1 as sent, 32FC1 from its inverse-depth quantisation).",
              choices=("raw", "compressedDepth"), read_only=True),
    ParamSpec("input_transport", "", "Deprecated (one release): the old name of "
              "image_transport, still read when set, with a warning; '' = not set. "
              "raw: subscribe to 'image' (sensor_msgs/Image); "
              "compressed: to 'image/compressed' (jpeg/png CompressedImage).",
              choices=("", "raw", "compressed"), read_only=True),
    ParamSpec("sync.mode", "exact", "How an image finds its camera_info: exact (same stamp, "
              "as message_filters' TimeSynchronizer), approximate (nearest stamp within "
              "sync.slop_ms), latest (newest camera_info of the frame_id, any stamp).",
              choices=SYNC_MODES, read_only=True),
    ParamSpec("sync.slop_ms", 10.0, "approximate: the largest stamp difference accepted "
              "between an image and its camera_info (ms).", lo=0.0, hi=1000.0, read_only=True),
    ParamSpec("sync.timeout_ms", 200.0, "How long an image waits (ms) after a camera_info "
              "that did not match it before it is dropped as no_camera_info (a late "
              "camera_info never drops an image: only one stamped after it does), and "
              "before parameter intrinsics are used when nobody publishes camera_info.",
              lo=1.0, hi=10000.0, read_only=True),
    ParamSpec("camera.rectified", False, "The input images are rectified: project with P "
              "(image_geometry's rectified model) and ignore D. Without it, images whose "
              "camera_info has any non-zero D are raw and back-projected through the lens "
              "model (plumb_bob, rational_polynomial, equidistant)."),
    ParamSpec("camera.rectify_for_model", True, "Raw images with lens distortion: the models "
              "see the image rectified with the camera_info's P (as image_proc would), and "
              "their outputs are sampled back onto the raw pixel grid; false feeds the raw "
              "image as it is. Depth models are trained on rectilinear images."),
    ParamSpec("camera.use_parameters", False, "Ignore camera_info and use "
              "camera.focal_length / camera.hfov (otherwise they are used only while no "
              "publisher exists on the camera_info topic).", read_only=True),
    ParamSpec("qos.depth", 5, "History depth of the image and camera_info subscriptions.",
              lo=1, hi=100, read_only=True),
    ParamSpec("warmup", True, "Warm the model up (compile, CUDA graphs) at each new camera "
              "size right before its first frame, on the worker thread, and at start-up "
              "when input_size is set, so later frames are not slow.", read_only=True),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages (and input "
              "QoS re-checks).", lo=0.05, hi=60.0, read_only=True),
    ParamSpec("num_threads", 0, "torch CPU threads; 0 = torch's default.", lo=0, hi=256,
              read_only=True),
    ParamSpec("cameras", [], "Input namespaces served by this node, e.g. [front, rear]: "
              "<cam>/image + <cam>/camera_info in, ~/<cam>/... out, the newest frame of each "
              "camera batched into one model pass. Empty = one camera on image / camera_info.",
              read_only=True),
    ParamSpec("alignment.mode", "off", "Metric alignment to a reference (depth_reference "
              "image / points_reference cloud, per camera): off, scale or scale_shift. "
              "Relative models fit 1/z = s*r + t and publish ~/depth/image and ~/points only "
              "while the alignment is valid; metric models fit z_ref = s*z (+ t) and are "
              "corrected while it is valid. See docs/alignment.md.",
              choices=ALIGNMENT_MODES, read_only=True),
    ParamSpec("alignment.extrinsic", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], "Static transform "
              "camera <- points_reference frame [x, y, z, qx, qy, qz, qw] (metres, "
              "quaternion; p_camera = R p_sensor + t). Identity = the points are in the "
              "camera optical frame.", lo=-1000.0, hi=1000.0, read_only=True),
    ParamSpec("alignment.slop_ms", 50.0, "Largest stamp difference between an image and "
              "the reference it is fitted to (ms); the nearest one within it is taken.",
              lo=0.0, hi=1000.0, read_only=True),
    ParamSpec("alignment.wait_ms", 50.0, "How long an image waits for a reference stamped "
              "at or after it (ms) while references are coming in; then it is processed "
              "with what is there (the filtered alignment). 0 = never wait.",
              lo=0.0, hi=1000.0, read_only=True),
    # Runtime-changeable.
    ParamSpec("diagnostics.stale_s", 3.0, "/diagnostics WARN (stale) when a camera that was "
              "sending has sent no image for this many seconds.", lo=0.1, hi=3600.0),
    ParamSpec("diagnostics.drop_ratio", 0.5, "/diagnostics WARN (drops) when more than this "
              "fraction of a camera's frames in the last period were dropped (replaced before "
              "the worker took them: processing far below the input rate).", lo=0.0, hi=1.0),
    ParamSpec("diagnostics.stuck_s", 10.0, "/diagnostics ERROR (stuck) when a camera's frame "
              "has waited this long for the worker (a hung model call or a dead worker). "
              "With compile, the first frame of each size compiles for longer.",
              lo=0.1, hi=3600.0),
    ParamSpec("batch_wait_ms", 0.0, "With several cameras: how long the worker waits after "
              "the first frame for the other cameras' frames, so frames arriving together "
              "share one model pass (0 = take what is there).", lo=0.0, hi=100.0),
    ParamSpec("qos.reliability", "auto", "Input QoS reliability: auto matches the image "
              "publisher (best-effort until one is seen), or force reliable / best_effort.",
              choices=("auto", "reliable", "best_effort")),
    ParamSpec("output_resolution", "input", "Output images at the input resolution or at the "
              "model's resolution (camera_info is scaled to match).", choices=("input", "model")),
    ParamSpec("depth.scale", 0.0, "Relative models: metric depth = 1 / (scale * prediction + "
              "shift) (inverse-depth space; a model predicting relative depth, DA3MONO: "
              "scale * prediction + shift); 0 = unset, then no ~/depth/image and no ~/points.",
              lo=0.0, hi=1e6),
    ParamSpec("depth.shift", 0.0, "Shift of the affine fit (see depth.scale).",
              lo=-1e6, hi=1e6),
    ParamSpec("depth.keep_sky", False, "Models with a sky head (Depth Anything 3): keep the "
              "pixels it marks as sky in ~/depth/image and ~/points at the model's far value; "
              "false = NaN there (no return, REP 118) and no points. ~/sky/image shows the "
              "mask."),
    ParamSpec("alignment.smoothing_s", 0.3, "Time constant (s, frame stamps) of the filter "
              "over the per-frame fits; 0 = each accepted fit applied as it is. Changing an "
              "alignment.* value at run time restarts the alignment.", lo=0.0, hi=600.0),
    ParamSpec("alignment.max_age_s", 2.0, "After this long (s, frame stamps) without an "
              "accepted fit the alignment is invalid: a relative model stops publishing "
              "~/depth/image and ~/points, a metric one goes uncorrected. 0 = never expires.",
              lo=0.0, hi=3600.0),
    ParamSpec("alignment.min_inliers", 50, "A fit with fewer reference samples or inliers is "
              "rejected (counted in alignment.rejected).", lo=3, hi=10_000_000),
    ParamSpec("alignment.max_residual", 0.25, "A fit whose AbsRel on its inliers is larger "
              "is rejected.", lo=0.001, hi=10.0),
    ParamSpec("alignment.gate", 0.2, "A fit moving the implied depth by more than this "
              "fraction from the last accepted one is held back (gated) unless three in a "
              "row agree; 0 = no gating.", lo=0.0, hi=10.0),
    ParamSpec("colormap", "turbo", "Colour map of ~/depth_colorized/image.", choices=COLORMAPS),
    ParamSpec("depth.min", 0.0, "Fixed colour range low end (metres, or model units for "
              "relative output); min = max = 0 uses per-frame percentiles.", lo=0.0, hi=1e6),
    ParamSpec("depth.max", 0.0, "Fixed colour range high end; must exceed depth.min when set.",
              lo=0.0, hi=1e6),
    ParamSpec("percentiles", [2.0, 98.0], "Per-frame colour range: [low, high] percentiles "
              "of the valid depth.", lo=0.0, hi=100.0),
    ParamSpec("overlay_alpha", 0.5, "Weight of the class colours in "
              "~/segmentation_overlay/image (0 = input image only).", lo=0.0, hi=1.0),
    ParamSpec("pointcloud.stride", 1, "1 = organised H x W cloud; N > 1 keeps every N-th "
              "pixel in both directions and drops invalid points (unorganised).", lo=1, hi=64),
    ParamSpec("pointcloud.min_range", 0.0, "Drop points closer than this (metres).",
              lo=0.0, hi=1000.0),
    ParamSpec("pointcloud.max_range", 0.0, "Drop points farther than this (metres); 0 = none.",
              lo=0.0, hi=1000.0),
    ParamSpec("pointcloud.voxel_size", 0.0, "Costmap filter: one point per occupied voxel of "
              "this edge (metres) at the centroid of its points, colour averaged, label the "
              "most frequent; Open3D's voxel_down_sample grid (anchored at the cloud's min "
              "bound - voxel/2). Unorganised output. 0 = off.", lo=0.0, hi=10.0),
    ParamSpec("pointcloud.edge_threshold", 0.0, "Costmap filter: drop flying pixels at depth "
              "edges, i.e. pixel p when any 4-neighbour q with a depth has |z_p - z_q| > "
              "edge_threshold * z_p (e.g. 0.05). 0 = off.", lo=0.0, hi=10.0),
    ParamSpec("pointcloud.include_classes", [], "Costmap filter: keep only points of these "
              "classes (names of the segmentation model's labels, or decimal ids as strings, "
              "e.g. ['person', '3']); empty = every class. Needs a segmentation_model."),
    ParamSpec("pointcloud.exclude_classes", [], "Costmap filter: drop points of these classes "
              "(names or decimal ids as strings, e.g. ['floor', 'sky']); with include_classes "
              "too, a point must be included and not excluded. Needs a segmentation_model."),
    ParamSpec("pointcloud.color", True, "Add a packed 'rgb' field (PCL convention)."),
    ParamSpec("pointcloud.label", True, "Add a 'label' field with the class id when "
              "segmentation runs (semantic point cloud)."),
    ParamSpec("input.bits", 16, "Significant bits of 16-bit grey input (mono16 / 16UC1 / "
              "16-bit PNG), e.g. 10 or 12: a sample v becomes round(v * 255 / (2^bits - 1)), "
              "clipped; a fixed rule, never a per-frame maximum.", lo=8, hi=16),
    ParamSpec("input.max_pixels", DEFAULT_MAX_PIXELS, "Input frames with more pixels are "
              "rejected (bad input, counted) from their header, before anything is decoded: "
              "the guard against decompression bombs and corrupt sizes.", lo=1,
              hi=1_000_000_000),
    ParamSpec("camera.focal_length", 0.0, "Focal length in pixels of a camera that publishes "
              "no camera_info (no publisher on the topic) or with camera.use_parameters; "
              "0 = derive it from camera.hfov.", lo=0.0, hi=1e5),
    ParamSpec("camera.hfov", 60.0, "Horizontal field of view in degrees of a camera without "
              "camera_info (see camera.focal_length).",
              lo=1.0, hi=179.0),
    ParamSpec("camera.estimate_intrinsics", True, "Depth models that estimate the field of "
              "view (Depth Pro): a camera without camera_info, with camera.focal_length 0 "
              "and camera.use_parameters false, gets the model's focal length (smoothed over "
              "frames, published on ~/depth/camera_info, marked estimated in /diagnostics) "
              "instead of camera.hfov's guess. A real camera_info always wins.",
              read_only=True),
    *(_publish_spec(o) for o in sorted(OUTPUTS)),
    ParamSpec("serialized_publish", True, "Publish images and clouds as serialized messages "
              "laid out around the output buffers (3x faster for a 14.7 MB cloud); false = "
              "through rclpy message objects (the reference path)."),
)

BY_NAME: dict[str, ParamSpec] = {s.name: s for s in SPECS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SPECS}


def _scalar_ok(want: type, value: Any) -> bool:
    if want is float:
        return isinstance(value, float | int) and not isinstance(value, bool)
    return type(value) is want


def _type_ok(spec: ParamSpec, value: Any) -> bool:
    if isinstance(spec.default, list):  # [] = a list of strings of any length
        want = type(spec.default[0]) if spec.default else str
        return (
            isinstance(value, list | tuple)
            and (not spec.default or len(value) == len(spec.default))
            and all(_scalar_ok(want, v) for v in value)
        )
    return _scalar_ok(type(spec.default), value)


def _describe_type(spec: ParamSpec) -> str:
    if isinstance(spec.default, list):
        if not spec.default:
            return "list of strs"
        return f"list of {len(spec.default)} {type(spec.default[0]).__name__}s"
    return type(spec.default).__name__


def from_yaml(name: str, value: Any) -> Any:
    """A value as ROS's YAML 1.1 parser hands it over, made what the parameter means: a bare
    `off` (in a parameter file or `-p alignment.mode:=off`) reads as the boolean false, so a
    choice parameter with an `off` choice takes false back as "off"."""
    spec = BY_NAME.get(name)
    if spec is not None and value is False and "off" in spec.choices:
        return "off"
    return value


def takes_yaml_bool(spec: ParamSpec) -> bool:
    """Declared with dynamic typing so that false reaches `from_yaml` (see there)."""
    return "off" in spec.choices


def check_value(name: str, value: Any) -> str | None:
    """Why `value` is not acceptable for parameter `name` (None when it is)."""
    spec = BY_NAME.get(name)
    if spec is None:
        return f"unknown parameter '{name}'"
    if not _type_ok(spec, value):
        return f"{name} must be a {_describe_type(spec)}, got {value!r}"
    if spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}; got '{value}'"
    if name == "device" and not DEVICE_RE.match(value):
        return f"device must be auto, cpu, cuda or cuda:N; got '{value}'"
    if name in CLASS_LISTS and any(not str(v).strip() for v in value):
        return f"{name}: empty class name in {list(value)}"
    if name == "cameras":
        bad = [c for c in value if not CAMERA_RE.match(c)]
        if bad:
            return f"cameras must be relative topic namespaces like 'front'; got {bad[0]!r}"
        if len(set(value)) != len(value):
            return f"cameras must not repeat a name; got {list(value)}"
    for v in value if isinstance(value, list | tuple) else [value]:
        if isinstance(v, float) and v != v:
            return f"{name} must not be NaN"
        if spec.lo is not None and v < spec.lo:
            return f"{name} must be >= {spec.lo}; got {value}"
        if spec.hi is not None and v > spec.hi:
            return f"{name} must be <= {spec.hi}; got {value}"
    return None


def check_update(updates: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """Why applying `updates` on top of `current` is rejected (None when accepted).

    Checks each value, then the relations between parameters on the merged view, so a
    request that sets depth.min and depth.max together is judged as a whole.
    """
    for name, value in updates.items():
        reason = check_value(name, value)
        if reason:
            return reason
    merged = {**DEFAULTS, **current, **updates}
    lo, hi = merged["depth.min"], merged["depth.max"]
    if (lo or hi) and not lo < hi:
        return f"depth.max ({hi}) must exceed depth.min ({lo}) (both 0 = per-frame range)"
    p_lo, p_hi = merged["percentiles"]
    if not p_lo < p_hi:
        return f"percentiles: low ({p_lo}) must be below high ({p_hi})"
    height, width = merged["input_size"]
    if (height > 0) != (width > 0):
        return "input_size: set both height and width, or [0, 0] for the checkpoint's size"
    rmin, rmax = merged["pointcloud.min_range"], merged["pointcloud.max_range"]
    if rmax and not rmin < rmax:
        return f"pointcloud.max_range ({rmax}) must exceed pointcloud.min_range ({rmin})"
    try:
        parse_extrinsic(merged["alignment.extrinsic"])
    except ValueError as err:
        return f"alignment.extrinsic: {err}"
    classes = [name for name in CLASS_LISTS if merged[name]]
    if classes and not merged["segmentation_model"]:
        return f"{classes[0]} needs a segmentation_model (the class of each point)"
    if merged["alignment.mode"] != "off" and not merged["depth_model"]:
        return f"alignment.mode {merged['alignment.mode']} needs a depth_model"
    return None


@dataclass(frozen=True)
class NodeParams:
    """The parameters the node itself reads, typed (what `Pipeline` reads is
    `PipelineSettings`; the camera and reference inputs read their own `sync.*` / `qos.*` /
    `camera.*` / `alignment.*` entries). Built from the checked values at configure and
    rebuilt after every accepted runtime change, so the node never indexes a dict by a
    parameter's name."""

    depth_model: str
    segmentation_model: str
    dtype: str
    cameras: tuple[str, ...]  # ("",) = the single unnamed camera
    num_threads: int
    warmup: bool
    input_size: tuple[int, int]
    image_transport: str
    sync_timeout_ms: float
    diagnostics_period: float
    # runtime-changeable
    batch_wait_s: float
    serialized_publish: bool
    stale_s: float
    drop_ratio: float
    stuck_s: float

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> NodeParams:
        v = {**DEFAULTS, **values}
        return cls(
            depth_model=v["depth_model"], segmentation_model=v["segmentation_model"],
            dtype=v["dtype"], cameras=tuple(v["cameras"]) or ("",),
            num_threads=int(v["num_threads"]), warmup=bool(v["warmup"]),
            input_size=(int(v["input_size"][0]), int(v["input_size"][1])),
            image_transport=image_transport(v)[0],
            sync_timeout_ms=float(v["sync.timeout_ms"]),
            diagnostics_period=float(v["diagnostics_period"]),
            batch_wait_s=float(v["batch_wait_ms"]) / 1000.0,
            serialized_publish=bool(v["serialized_publish"]),
            stale_s=float(v["diagnostics.stale_s"]), drop_ratio=float(v["diagnostics.drop_ratio"]),
            stuck_s=float(v["diagnostics.stuck_s"]),
        )


def image_transport(values: Mapping[str, Any]) -> tuple[str, str | None]:
    """The input transport to use and, when the deprecated `input_transport` was set, the
    warning to log once: it is honoured while `image_transport` is left at its default,
    ignored when both are set."""
    merged = {**DEFAULTS, **values}
    new, old = merged["image_transport"], merged["input_transport"]
    if not old:
        return new, None
    if new != DEFAULTS["image_transport"] and new != old:
        return new, (f"input_transport is deprecated and ignored: image_transport is set "
                     f"({new}); remove input_transport ({old})")
    return old, (f"input_transport is deprecated (removed in the next release): use "
                 f"image_transport: {old}")


def forced_outputs(values: Mapping[str, Any]) -> set[str]:
    """Outputs that `publish.<name>` forces on even without subscribers."""
    return {o for o in OUTPUTS if values.get(f"publish.{o}", False)}


def pipeline_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    """Pipeline(**kwargs) arguments, settings included, through the shared params_file map
    (unset parameters take their defaults)."""
    return pipeline_kwargs_from_params({**DEFAULTS, **values})


def pipeline_settings(values: Mapping[str, Any]) -> PipelineSettings:
    """The runtime-changeable part (what a set-parameters request replaces)."""
    return settings_from_params({**DEFAULTS, **values})


def decode_options(values: Mapping[str, Any]) -> DecodeOptions:
    """How input frames are read (`input.bits`, `input.max_pixels`): node and offline tools."""
    merged = {**DEFAULTS, **values}
    return DecodeOptions(bits=int(merged["input.bits"]),
                         max_pixels=int(merged["input.max_pixels"]))
