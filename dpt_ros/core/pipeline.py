"""The one processing core: RGB frames in, depth / segmentation / point clouds out.

The node, the bag tool and the image CLI all call `Pipeline.process`; nothing else runs a
model. Everything after the host→device upload stays on the model's device until the final
host copy of each requested output.

Metric alignment (`core.alignment`): a frame may carry a metric reference (`Frame.reference`,
paired by stamp), its camera's name and its stamp; the pipeline keeps one `Aligner` per
camera and converts each frame to metres by the honesty rule of `core.outputs`
(`frame_depth_source`): a relative model only with a valid alignment (or `depth.scale`), a
metric model corrected while aligned, Prompt Depth Anything only with a prompt (the
reference depth, holes filled: `core.alignment.prompt`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from dpt_ros.core.alignment import (
    AlignmentConfig,
    AlignmentState,
    CameraAlignments,
    FrameReference,
    aligned_depth,
)
from dpt_ros.core.alignment.prompt import prompt_depth
from dpt_ros.core.colormap import colorize, robust_range
from dpt_ros.core.finite_guard import HALF_DTYPES, FiniteGuard
from dpt_ros.core.geometry import Intrinsics, backproject
from dpt_ros.core.image_codec import RawImage
from dpt_ros.core.outputs import frame_depth_source
from dpt_ros.core.pointcloud import PackedCloud, pack_cloud
from dpt_ros.core.segmentation import colorize_labels, label_dtype, overlay, palette
from dpt_ros.core.transfer import to_host
from dpt_ros.core.upload import HOST_RGB, Uploader
from dpt_ros.model import (
    ConfigError,
    ModelLoadError,
    ModelSource,
    load_model,
    load_processor,
    locate_source,
)
from dpt_ros.model.processing import DPTImageProcessor, resize_maps

log = logging.getLogger(__name__)

OUTPUTS = frozenset(
    {"depth", "relative", "depth_colorized", "segmentation", "seg_colorized", "overlay", "points"}
)


@dataclass
class PipelineSettings:
    """Runtime-changeable post-processing options (the node's dynamic parameters)."""

    depth_scale: float = 0.0  # relative models: metric = 1 / (scale * pred + shift); 0 = unset
    depth_shift: float = 0.0
    colormap: str = "turbo"  # turbo | inferno | viridis
    depth_min: float = 0.0  # fixed colour range in metres (or model units); 0,0 = robust
    depth_max: float = 0.0
    percentiles: tuple[float, float] = (2.0, 98.0)
    output_resolution: str = "input"  # input | model
    overlay_alpha: float = 0.5
    pointcloud_stride: int = 1  # 1 = organised H x W cloud; > 1 = subsampled, unorganised
    pointcloud_min_range: float = 0.0
    pointcloud_max_range: float = 0.0  # 0 = no limit
    pointcloud_color: bool = True
    pointcloud_label: bool = True
    # metric alignment to a reference (`core.alignment`); the node's alignment.* parameters
    alignment_mode: str = "off"  # off | scale | scale_shift
    alignment_smoothing_s: float = 0.3
    alignment_max_age_s: float = 2.0
    alignment_min_inliers: int = 50
    alignment_max_residual: float = 0.25
    alignment_gate: float = 0.2
    alignment_extrinsic: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)


@dataclass
class Frame:
    """One camera image and its camera model, if known (`Intrinsics`: projection, plus lens
    distortion for a raw image).

    Either `rgb`, RGB uint8 (H, W, 3) decoded on the host, or `raw`, the camera's own YUV 4:2:2
    or Bayer bytes, which `Pipeline` uploads as they are (1-2 bytes per pixel instead of 3) and
    converts on the model's device (`color_convert`). `Frame(rgb)` and `Frame(rgb, intr)` keep
    working for every caller that already has RGB.

    For alignment: `camera` names the aligner whose state the frame uses and updates,
    `stamp` (seconds) orders frames in time (None: the frame stands alone, fitted to its
    own reference only), `reference` is the metric reference paired with it, if any.
    """

    rgb: np.ndarray | None = None
    intrinsics: Intrinsics | None = None
    raw: RawImage | None = None
    camera: str = ""
    stamp: float | None = None
    reference: FrameReference | None = None

    def __post_init__(self) -> None:
        if (self.rgb is None) == (self.raw is None):
            raise ValueError("a Frame holds exactly one of rgb (host RGB) or raw (sensor bytes)")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        if self.raw is not None:
            return self.raw.height, self.raw.width
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    @property
    def pixels(self) -> np.ndarray:
        """The host bytes that travel to the device: RGB (H, W, 3) or sensor rows (H, W*bpp)."""
        return self.rgb if self.raw is None else self.raw.rows

    @property
    def encoding(self) -> str:
        """'rgb8' for host RGB, else the sensor encoding converted on the device."""
        return HOST_RGB if self.raw is None else self.raw.encoding


@dataclass
class FrameResult:
    """Host arrays for one frame; an output is None when it was not asked for or not valid."""

    depth: np.ndarray | None = None  # (h, w) float32 metres, NaN invalid (REP 118)
    relative: np.ndarray | None = None  # (h, w) float32 raw relative model output
    depth_colorized: np.ndarray | None = None  # (h, w, 3) uint8 BGR
    segmentation: np.ndarray | None = None  # (h, w) uint8 (or uint16 when > 256 classes)
    seg_colorized: np.ndarray | None = None  # (h, w, 3) uint8 BGR
    overlay: np.ndarray | None = None  # (h, w, 3) uint8 BGR
    points: PackedCloud | None = None
    intrinsics: Intrinsics | None = None  # of the output images (scaled if resolution differs)
    alignment: AlignmentState | None = None  # this frame's, when alignment is on
    prompted: bool = False  # Prompt Depth Anything: the frame had a prompt (metric depth)
    timings: dict[str, float] = field(default_factory=dict)


class PipelineConfigError(ValueError):
    """Start-up configuration the pipeline cannot run with; the message says what to change."""


def select_device(name: str) -> torch.device:
    """`auto` takes the first CUDA device when there is one, else the CPU."""
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise PipelineConfigError(f"device '{name}' asked for but CUDA is not available; "
                                      "set device to 'auto' or 'cpu'")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise PipelineConfigError(f"device '{name}' does not exist: "
                                      f"{torch.cuda.device_count()} CUDA device(s) present")
        return device
    raise PipelineConfigError(f"device '{name}' is not one of auto, cpu, cuda, cuda:N")


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def select_dtype(name: str, device: torch.device) -> torch.dtype:
    if name not in DTYPES:
        raise PipelineConfigError(f"dtype '{name}' is not one of {', '.join(DTYPES)}")
    if name == "float16" and device.type == "cpu":
        raise PipelineConfigError("dtype float16 needs a CUDA device; "
                                  "use float32 or bfloat16 on CPU")
    return DTYPES[name]


COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
# CUDA-graph modes run a new graph once to warm it, record it on the next call, replay after
_GRAPH_MODES = ("reduce-overhead", "max-autotune")
_WARMED_SIZES = 32  # (batch, height, width) sizes remembered by warm_new_sizes


@dataclass
class _Task:
    """One loaded model, the processor that feeds it and how its forward is run."""

    model: torch.nn.Module
    processor: DPTImageProcessor
    source: str
    origin: ModelSource  # the directory (and Hub commit) both were read from
    compile_mode: str = "none"
    backend: str | Callable = "inductor"
    forward: Callable[[torch.Tensor], object] | None = None
    guard: FiniteGuard | None = None  # the pipeline's; default: one for the model's dtype

    def __post_init__(self) -> None:
        if self.guard is None:
            self.guard = FiniteGuard(next(self.model.parameters()).dtype)
        self.forward = self.model
        if self.compile_mode != "none":
            # Static shapes: one graph per camera size; "reduce-overhead" adds CUDA graphs.
            mode = None if self.compile_mode == "default" else self.compile_mode
            self.forward = torch.compile(self.model, mode=mode, dynamic=False,
                                         backend=self.backend)

    def __call__(self, pixel_values: torch.Tensor, **inputs: torch.Tensor):
        """The forward in the pipeline's dtype, watched by its `FiniteGuard` (`inputs`:
        Prompt Depth Anything's `prompt_depth`)."""
        return self.guard.forward(self._run, self.model, pixel_values, **inputs)

    def _run(self, pixel_values: torch.Tensor, **inputs: torch.Tensor):
        try:
            return self.forward(pixel_values, **inputs)
        except Exception as exc:  # compilation errors surface on the first call of a shape
            if self.forward is self.model:
                raise
            log.warning("torch.compile (%s) failed for %s, running eager instead: %s",
                        self.compile_mode, self.source, str(exc).splitlines()[0][:200])
            self.forward = self.model
            return self.model(pixel_values, **inputs)


def _load_task(source: str, task: str, *, device: torch.device, dtype: torch.dtype,
               input_size: tuple[int, int] | None, compile_mode: str,
               backend: str | Callable, guard: FiniteGuard, revision: str = "") -> _Task:
    try:
        # Resolved once: model and processor come from the same snapshot (commit).
        origin = locate_source(source, revision=revision or None)
        model = load_model(origin.directory, device=device, dtype=dtype, task=task)
        processor = load_processor(origin.directory)
    except (ModelLoadError, ConfigError, OSError, ValueError) as exc:
        raise PipelineConfigError(f"cannot load {task} model '{source}': {exc}") from exc
    if input_size is not None:
        patch = getattr(model.config.backbone_config, "patch_size", None) or model.config.patch_size
        h, w = input_size
        if h <= 0 or w <= 0 or h % patch or w % patch:
            raise PipelineConfigError(f"input_size {h}x{w} must be positive multiples of the "
                                      f"patch size {patch} of '{source}'")
        overrides = {"do_resize": True, "size": {"height": h, "width": w},
                     "keep_aspect_ratio": False}
        processor = type(processor).from_dict({**processor.to_dict(), **overrides})
    return _Task(model, processor, source, origin, compile_mode, backend, guard=guard)


class Pipeline:
    """Loads the depth and/or segmentation model once and turns RGB frames into outputs."""

    def __init__(
        self,
        depth_model: str = "",
        segmentation_model: str = "",
        device: str = "auto",
        dtype: str = "float32",
        input_size: tuple[int, int] | None = None,
        settings: PipelineSettings | None = None,
        compile_mode: str = "none",
        compile_backend: str | Callable = "inductor",
        depth_revision: str = "",
        segmentation_revision: str = "",
    ) -> None:
        """`compile_mode` wraps each model in torch.compile (static shapes; `reduce-overhead` also
        captures CUDA graphs); any failure falls back to eager with one warning.
        `*_revision` pins a Hub model's branch, tag or commit ("" = its default branch)."""
        if compile_mode not in COMPILE_MODES:
            raise PipelineConfigError(f"compile_mode '{compile_mode}' is not one of "
                                      f"{', '.join(COMPILE_MODES)}")
        if not depth_model and not segmentation_model:
            raise PipelineConfigError("no model configured: set depth_model and/or "
                                      "segmentation_model (a Hub id or a checkpoint directory)")
        self.device = select_device(device)
        self.dtype = select_dtype(dtype, self.device)
        self.settings = settings or PipelineSettings()
        self._guard = FiniteGuard(self.dtype)
        load = functools.partial(_load_task, device=self.device, dtype=self.dtype,
                                 input_size=input_size, compile_mode=compile_mode,
                                 backend=compile_backend, guard=self._guard)
        self._depth = (load(depth_model, "depth", revision=depth_revision)
                       if depth_model else None)
        self._seg = (load(segmentation_model, "segmentation", revision=segmentation_revision)
                     if segmentation_model else None)
        self.labels: dict[int, str] = dict(self._seg.model.config.labels) if self._seg else {}
        n_classes = max(len(self.labels), 1)
        self._palette = palette(n_classes).to(self.device)
        self._label_dtype = label_dtype(n_classes)
        # narrowed on the device when torch has the type: a quarter of the int32 copy
        self._label_torch = torch.uint8 if self._label_dtype == np.uint8 else torch.int32
        self._uploader = Uploader(self.device)
        # The node sets this: each new (batch, height, width) is warmed up (`warmup`) right
        # before its first frame, on the caller's thread, so compiled graphs are built at the
        # camera's real size and the first frame itself is still processed.
        self.warm_new_sizes = False
        self._warmed: set[tuple[int, int, int]] = set()
        self._warmup_passes = 2 if compile_mode in _GRAPH_MODES else 1
        self._alignments = CameraAlignments()
        self._warming = False  # warm-up frames never touch the alignment

    @property
    def has_depth(self) -> bool:
        return self._depth is not None

    @property
    def has_segmentation(self) -> bool:
        return self._seg is not None

    @property
    def model_is_metric(self) -> bool:
        return self._depth is not None and bool(self._depth.model.config.is_metric)

    @property
    def takes_prompt(self) -> bool:
        """Prompt Depth Anything: metric only for frames with a prompt (their reference)."""
        return self._depth is not None and bool(getattr(self._depth.model.config, "takes_prompt",
                                                                 False))

    @property
    def alignment(self) -> AlignmentConfig:
        return AlignmentConfig.from_settings(self.settings)

    @property
    def depth_is_metric(self) -> bool:
        """True when every frame's `depth` is metres, reference or not: a metric model
        (not a prompted one), or a relative one with `depth.scale` set."""
        if not self.has_depth:
            return False
        if self.model_is_metric:
            return not self.takes_prompt
        return self.settings.depth_scale > 0.0

    @property
    def depth_may_be_metric(self) -> bool:
        """True when a frame's `depth` can be metres: always (`depth_is_metric`), or with a
        valid alignment (`alignment.mode` on) or a prompt. Metric outputs are computed
        then and come back None for frames without metres (`FrameResult.depth`)."""
        if not self.has_depth:
            return False
        return self.depth_is_metric or self.takes_prompt or self.alignment.enabled

    @property
    def alignment_states(self) -> dict[str, AlignmentState]:
        """The latest alignment state of each camera (readable from any thread)."""
        return dict(self._alignments.snapshot())

    @property
    def nonfinite_frames(self) -> int:
        """Frames whose half-precision model output was not finite and that were therefore
        recomputed in float32 (`core.finite_guard`); the node's diagnostics show it."""
        return self._guard.nonfinite_frames

    @property
    def compile_status(self) -> str:
        """The compile mode in effect: 'none', the mode, or '<mode> (eager fallback)' once a
        compilation failed and the forward went back to eager (diagnostics show it)."""
        tasks = [t for t in (self._depth, self._seg) if t is not None]
        mode = tasks[0].compile_mode if tasks else "none"
        if any(t.compile_mode != "none" and t.forward is t.model for t in tasks):
            return f"{mode} (eager fallback)"
        return mode

    @property
    def model_sources(self) -> dict[str, ModelSource]:
        """{'depth' / 'segmentation': where that model was read from (directory, Hub commit)}."""
        return {name: task.origin for name, task in (("depth", self._depth),
                                                     ("segmentation", self._seg)) if task}

    def describe(self) -> str:
        parts = [f"{t}={origin.describe()}" for t, origin in self.model_sources.items()]
        return ", ".join(parts) + f" on {self.device} ({str(self.dtype).removeprefix('torch.')})"

    def warmup(self, height: int, width: int, batch: int = 1) -> None:
        """Passes over black frames of this size (two in CUDA-graph compile modes: one to
        compile and warm, one to record) so the next real frame pays no start-up cost."""
        frames = [Frame(np.zeros((height, width, 3), np.uint8),
                        Intrinsics.from_hfov(width, height, 60.0)) for _ in range(batch)]
        self._warmed.add((batch, height, width))
        self._warming = True
        try:
            for _ in range(self._warmup_passes):
                self.process(frames, set(OUTPUTS))
        finally:
            self._warming = False

    def _warm_for(self, frames: list[Frame]) -> None:
        """`warmup` at this batch's size the first time it is seen (bounded memory)."""
        height, width = frames[0].size
        if (len(frames), height, width) in self._warmed:
            return
        if len(self._warmed) >= _WARMED_SIZES:
            self._warmed.clear()
        self.warmup(height, width, len(frames))

    def process(self, frames: list[Frame], want: set[str]) -> list[FrameResult]:
        """Run the models once per task for the whole batch and build the wanted outputs."""
        unknown = set(want) - OUTPUTS
        if unknown:
            raise ValueError(f"unknown outputs {sorted(unknown)}; known: {sorted(OUTPUTS)}")
        if not frames:
            return []
        shapes = {f.size for f in frames}
        if len(shapes) > 1:  # batches share one size; split mixed input
            return [r for f in frames for r in self.process([f], want)]
        if self.warm_new_sizes:
            self._warm_for(frames)
        with torch.inference_mode():
            prompts = self._prompts(frames, want)
            if len({None if p is None else tuple(p.shape) for p in prompts}) > 1:
                # one prompt size per pass (and prompted frames apart from unprompted ones)
                return [r for f in frames for r in self.process([f], want)]
            settings = self.settings
            # a half-precision pass may be run again in float32: the aligners see it once
            saved = self._alignments.save() if self.dtype in HALF_DTYPES else None
            self._guard.begin()
            results = self._process_batch(frames, want, settings, prompts)
            bad = self._guard.bad_frames()  # after the host copies: no extra synchronisation
            if bad:
                if saved is not None:
                    self._alignments.restore(saved)
                results = self._guard.recompute(
                    lambda: self._process_batch(frames, want, settings, prompts), bad)
            return results

    def _prompts(self, frames: list[Frame], want: set[str]) -> list[torch.Tensor | None]:
        """Prompt Depth Anything's prompt of each frame (None: no usable reference), made
        from its reference (`core.alignment.prompt`); [None, ...] for other models."""
        if not self.takes_prompt or not (want & {"depth", "points", "depth_colorized"}):
            return [None] * len(frames)
        min_valid = self.alignment.min_inliers
        return [None if f.reference is None else
                prompt_depth(f.reference, f.intrinsics, f.size, self.device, min_valid)
                for f in frames]

    def _upload(self, frames: list[Frame]) -> torch.Tensor:
        """Host frames → one (B, H, W, 3) uint8 RGB tensor on the device: one staged transfer,
        sensor frames (YUV / Bayer) uploaded as received and converted there (`upload`)."""
        return self._uploader([(f.pixels, f.encoding) for f in frames])

    def _process_batch(self, frames: list[Frame], want: set[str], s: PipelineSettings,
                       prompts: list[torch.Tensor | None]) -> list[FrameResult]:
        t0 = time.perf_counter()
        rgb = self._upload(frames)
        height, width = rgb.shape[1:3]
        need_points = "points" in want and self.depth_may_be_metric
        need_depth = self.has_depth and (
            need_points or bool(want & {"depth", "relative", "depth_colorized"}))
        need_seg = self.has_segmentation and (
            bool(want & {"segmentation", "seg_colorized", "overlay"})
            or (need_points and s.pointcloud_label))

        pixel_cache: dict[DPTImageProcessor, torch.Tensor] = {}

        def pixels(task: _Task) -> torch.Tensor:
            # Processors compare equal by config: depth and seg models that share one get one pass.
            if task.processor not in pixel_cache:
                pixel_cache[task.processor] = task.processor.preprocess(rgb, device=self.device)
            return pixel_cache[task.processor]  # the task casts (guard.forward)

        pred = logits = None
        prompted = prompts[0] is not None
        if need_depth:
            inputs = {}
            if prompted:  # (B, 1, h, w) metres as the reference processor makes them
                inputs["prompt_depth"] = self._depth.processor.preprocess_prompt(
                    torch.stack(prompts), scale_to_meter=1.0)
            pred = self._depth(pixels(self._depth), **inputs).predicted_depth.float()
        if need_seg:
            logits = self._seg(pixels(self._seg)).logits.float()
        t1 = time.perf_counter()

        if s.output_resolution == "model":
            ref = pred if pred is not None else logits
            out_h, out_w = ref.shape[-2:]
        else:
            out_h, out_w = height, width
        depth_rel = labels = None
        if pred is not None:
            # The processor that made the input maps the prediction back onto the frame
            # (bicubic; ZoeDepth's also crops away the reflect padding it added).
            depth_rel = self._depth.processor.resize_depth(pred, (height, width), (out_h, out_w))
        if logits is not None:
            labels = resize_maps(logits, (out_h, out_w), "bilinear").argmax(dim=1)
        rgb_out = rgb
        if (out_h, out_w) != (height, width) and (need_points or "overlay" in want):
            rgb_out = F.interpolate(rgb.permute(0, 3, 1, 2).float(), size=(out_h, out_w),
                                    mode="bilinear", antialias=True, align_corners=False)
            rgb_out = rgb_out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)

        cameras = []
        for frame in frames:
            intr = frame.intrinsics
            if intr is not None and (intr.width, intr.height) != (out_w, out_h):
                intr = intr.scaled(out_w, out_h)
            cameras.append(intr)
        metric: list[torch.Tensor | None] = [None] * len(frames)
        states: list[AlignmentState | None] = [None] * len(frames)
        if depth_rel is not None:
            metric, states = self._metres(frames, depth_rel, cameras, s, prompted)

        results = []
        for i in range(len(frames)):
            results.append(self._outputs(
                want, s, cameras[i], metric[i],
                None if depth_rel is None else depth_rel[i],
                None if labels is None else labels[i],
                rgb_out[i]))
            results[-1].alignment = states[i]
            results[-1].prompted = prompted
        t2 = time.perf_counter()
        for r in results:
            r.timings = {"inference_ms": (t1 - t0) * 1e3, "post_ms": (t2 - t1) * 1e3}
        return results

    def _metres(self, frames: list[Frame], depth: torch.Tensor, cameras: list[Intrinsics | None],
                s: PipelineSettings, prompted: bool
                ) -> tuple[list[torch.Tensor | None], list[AlignmentState | None]]:
        """Each frame's metres (None: none for it) by the honesty rule, and its alignment.

        The fit runs on the prediction at the output resolution (the processor's resize has
        mapped it onto the frame: padding cropped), against the reference's samples on that
        grid with the frame's camera model scaled to it; (s, t) do not depend on the grid."""
        config = AlignmentConfig.from_settings(s)
        aligning = config.enabled and not self._warming and (prompted or not self.takes_prompt)
        if not aligning and not self.takes_prompt:  # the whole batch by one rule
            source = frame_depth_source(self.model_is_metric, False, False,
                                        s.depth_scale > 0.0, False)
            if source is None:
                return [None] * len(frames), [None] * len(frames)
            batch = metric_depth(depth, source != "depth.scale", s.depth_scale, s.depth_shift)
            return list(batch), [None] * len(frames)
        self._alignments.configure(config, self.model_is_metric)
        metres, states = [], []
        for i, frame in enumerate(frames):
            state = None
            if aligning:
                state = self._alignments.observe(frame.camera, frame.stamp, depth[i],
                                                 frame.reference, cameras[i])
            source = frame_depth_source(self.model_is_metric, self.takes_prompt, prompted,
                                        s.depth_scale > 0.0, state is not None and state.valid)
            if source is None:
                metres.append(None)
            elif source == "aligned":
                metres.append(aligned_depth(depth[i], self.model_is_metric, state.scale,
                                            state.shift))
            else:
                metres.append(metric_depth(depth[i], source != "depth.scale", s.depth_scale,
                                           s.depth_shift))
            states.append(state)
        return metres, states

    def _outputs(self, want: set[str], s: PipelineSettings, intr: Intrinsics | None,
                 metric: torch.Tensor | None, rel: torch.Tensor | None,
                 labels: torch.Tensor | None, rgb: torch.Tensor) -> FrameResult:
        """Build one frame's wanted outputs on the device; one host copy per output."""
        r = FrameResult(intrinsics=intr)
        if metric is not None and "depth" in want:
            r.depth = to_host(metric)
        if rel is not None and "relative" in want and not self.model_is_metric:
            r.relative = to_host(rel)
        if "depth_colorized" in want and rel is not None:
            values = metric if metric is not None else rel
            if s.depth_max > s.depth_min:
                vmin, vmax = s.depth_min, s.depth_max
            else:
                vmin, vmax = robust_range(values, s.percentiles)
            r.depth_colorized = to_host(colorize(values, vmin, vmax, s.colormap))
        if labels is not None:
            color = None
            if "segmentation" in want:
                r.segmentation = to_host(labels.to(self._label_torch)).astype(
                    self._label_dtype, copy=False)
            if want & {"seg_colorized", "overlay"}:
                color = colorize_labels(labels, self._palette)
            if "seg_colorized" in want:
                r.seg_colorized = to_host(color)
            if "overlay" in want:
                r.overlay = to_host(overlay(rgb.flip(-1), color, s.overlay_alpha))
        if "points" in want and metric is not None and intr is not None and intr.supported:
            xyz = backproject(metric, intr)
            r.points = pack_cloud(
                xyz,
                rgb if s.pointcloud_color else None,
                labels if (s.pointcloud_label and labels is not None) else None,
                stride=s.pointcloud_stride,
                min_range=s.pointcloud_min_range,
                max_range=s.pointcloud_max_range,
            )
        return r


def metric_depth(pred: torch.Tensor, model_is_metric: bool, scale: float,
                 shift: float) -> torch.Tensor:
    """Metres from a model output, NaN where invalid (REP 118).

    A metric model's output is metres already. A relative model predicts inverse depth up to
    an affine ambiguity; `depth = 1 / (scale * pred + shift)` with a calibrated scale/shift.
    """
    if model_is_metric:
        depth = pred
    else:
        inv = pred * scale + shift
        depth = torch.where(inv > 0, 1.0 / inv.clamp_min(1e-12), torch.nan)
    return torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.nan)


