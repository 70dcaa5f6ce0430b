"""The one processing core: RGB frames in, depth / segmentation / point clouds out.

The node, the bag tool and the image CLI all call `Pipeline.process`; nothing else runs a
model. Everything after the host→device upload stays on the model's device until the final
host copy of each requested output.

Metric alignment (`core.alignment`): a frame may carry a metric reference (`Frame.reference`,
paired by stamp), its camera's name and its stamp; the pipeline keeps one `Aligner` per
camera and converts each frame to metres by the honesty rule of `core.pipeline.outputs`
(`frame_depth_source`): a relative model only with a valid alignment (or `depth.scale`), a
metric model corrected while aligned, Prompt Depth Anything only with a prompt (the
reference depth, holes filled: `core.alignment.prompt`).

Why one module of ~560 lines: it is one class, `Pipeline`, whose state (loaded tasks, the
per-camera aligners and focal-length filters, warmed sizes, class-filter tables) every step
of a batch reads; the steps themselves live elsewhere (camera model, codecs, clouds,
rendering, alignment, finite guard), and what remains here is their order on the device.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from dpt_ros.config.settings import PipelineSettings
from dpt_ros.config.vocabulary import COMPILE_MODES, OUTPUTS
from dpt_ros.core.alignment import (
    AlignmentConfig,
    AlignmentState,
    CameraAlignments,
    aligned_depth,
)
from dpt_ros.core.alignment.metric import metric_depth
from dpt_ros.core.alignment.prompt import prompt_depth
from dpt_ros.core.camera.geometry import Intrinsics, backproject
from dpt_ros.core.camera.rectify import needs_rectifying, rectify_images, unrectify_maps
from dpt_ros.core.codecs.transfer import to_host
from dpt_ros.core.codecs.upload import Uploader
from dpt_ros.core.pipeline.finite_guard import HALF_DTYPES, FiniteGuard
from dpt_ros.core.pipeline.frame import Frame, FrameResult
from dpt_ros.core.pipeline.model_task import (  # noqa: F401 (re-exported)
    DTYPES,
    GRAPH_MODES,
    ModelTask,
    PipelineConfigError,
    load_task,
    select_device,
    select_dtype,
)
from dpt_ros.core.pipeline.outputs import frame_depth_source
from dpt_ros.core.pointcloud.filters import class_lut, keep_mask, resolve_classes
from dpt_ros.core.pointcloud.pack import pack_cloud
from dpt_ros.core.render.colormap import colorize, robust_range
from dpt_ros.core.render.segmentation import colorize_labels, label_dtype, overlay, palette
from dpt_ros.model import ModelSource
from dpt_ros.model.dpt.image_processing import DPTImageProcessor
from dpt_ros.model.image_processing_utils import resize_maps

_WARMED_SIZES = 32  # (batch, height, width) sizes remembered by warm_new_sizes


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
        load = functools.partial(load_task, device=self.device, dtype=self.dtype,
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
        self._warmup_passes = 2 if compile_mode in GRAPH_MODES else 1
        self._alignments = CameraAlignments()
        self._warming = False  # warm-up frames never touch the alignment
        self._fov_focal: dict[str, float] = {}  # per camera: smoothed f / W (Depth Pro FOV)
        # class filters of the cloud, resolved against the labels: {(include, exclude): LUT}
        self._class_luts: dict[tuple[tuple[str, ...], tuple[str, ...]], torch.Tensor | None] = {}
        reason = self.check_settings(self.settings)
        if reason:  # an unknown class name stops the start-up, listing the known labels
            raise PipelineConfigError(reason)

    def check_settings(self, settings: PipelineSettings) -> str | None:
        """Why `settings` cannot be applied to these models (None: they can): class filters
        naming a class the segmentation model does not have (the reason lists its labels),
        or set without a segmentation model. The node asks before a runtime change."""
        try:
            self.class_filter(settings)
        except ValueError as err:
            return str(err)
        return None

    def class_filter(self, s: PipelineSettings) -> torch.Tensor | None:
        """(n_classes,) bool on the device: the classes a cloud point may have (None: no
        class filter). Resolved once per pair of lists (`filters.resolve_classes`)."""
        key = (tuple(s.pointcloud_include_classes), tuple(s.pointcloud_exclude_classes))
        if key not in self._class_luts:
            if (key[0] or key[1]) and not self.has_segmentation:
                raise ValueError("pointcloud.include_classes / exclude_classes need a "
                                 "segmentation_model (the class of each point)")
            include = resolve_classes(key[0], self.labels, "pointcloud.include_classes")
            exclude = resolve_classes(key[1], self.labels, "pointcloud.exclude_classes")
            n_classes = max(self.labels, default=0) + 1
            if len(self._class_luts) >= 8:  # runtime edits: keep the cache bounded
                self._class_luts.clear()
            self._class_luts[key] = class_lut(include, exclude, n_classes, self.device)
        return self._class_luts[key]

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
    def uses_focal(self) -> bool:
        """The depth model's metres come from the camera's focal length (DA3METRIC: output
        * f / 300; Depth Pro: 1 / (inverse * W / f)): `config.focal_scale`."""
        config = self._depth.model.config if self._depth is not None else None
        return bool(config is not None and config.is_metric and config.focal_scale is not None)

    @property
    def metric_focal(self) -> float | None:
        """DA3METRIC: the focal length (px) its output is expressed at (300), else None."""
        if self._depth is None:
            return None
        return self._depth.model.config.metric_focal

    @property
    def has_fov(self) -> bool:
        """The depth model estimates the field of view (Depth Pro's FOV model): frames
        without a camera model get its focal length (`FrameResult.intrinsics_estimated`)."""
        return self._depth is not None and self._depth.model.config.has_fov

    def estimated_focal(self, camera: str = "") -> float | None:
        """The smoothed focal length over image width of `camera` (f / W), or None."""
        return self._fov_focal.get(camera)

    @property
    def predicts_depth(self) -> bool:
        """The model's output grows with distance (metric models, DA3MONO), not inverse
        depth as Depth Anything V1/V2's relative output: how calibration / alignment map it."""
        return self._depth is not None and (
            self.model_is_metric or self._depth.model.config.predicts_depth)

    @property
    def has_sky(self) -> bool:
        """The depth model has a sky head (Depth Anything 3): the `sky` output exists."""
        return self._depth is not None and self._depth.model.config.has_sky

    @property
    def takes_prompt(self) -> bool:
        """Prompt Depth Anything: metric only for frames with a prompt (their reference)."""
        return self._depth is not None and self._depth.model.config.takes_prompt

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
        recomputed in float32 (`core.pipeline.finite_guard`); the node's diagnostics show it."""
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
            focal = dict(self._fov_focal)  # the FOV smoothing, too, sees a frame once
            self._guard.begin()
            results = self._process_batch(frames, want, settings, prompts)
            bad = self._guard.bad_frames()  # after the host copies: no extra synchronisation
            if bad:
                self._fov_focal = focal
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
            need_points or bool(want & {"depth", "relative", "depth_colorized", "sky"}))
        need_seg = self.has_segmentation and (
            bool(want & {"segmentation", "seg_colorized", "overlay"})
            or (need_points and (s.pointcloud_label or self.class_filter(s) is not None)))

        pixel_cache: dict[DPTImageProcessor, torch.Tensor] = {}
        rectify = s.camera_rectify_for_model
        model_rgb = rectify_images(rgb, [f.intrinsics for f in frames]) if rectify else rgb

        def pixels(task: ModelTask) -> torch.Tensor:
            # Processors compare equal by config: depth and seg models that share one get one pass.
            if task.processor not in pixel_cache:
                pixel_cache[task.processor] = task.processor.preprocess(model_rgb,
                                                                        device=self.device)
            return pixel_cache[task.processor]  # the task casts (guard.forward)

        pred = logits = sky = None
        estimated: list[Intrinsics | None] = [None] * len(frames)
        prompted = prompts[0] is not None
        if need_depth:
            inputs = {}
            if prompted:  # (B, 1, h, w) metres as the reference processor makes them
                inputs["prompt_depth"] = self._depth.processor.preprocess_prompt(
                    torch.stack(prompts), scale_to_meter=1.0)
            out = self._depth(pixels(self._depth), **inputs)
            pred = out.predicted_depth.float()
            sky = out.sky.float() if self.has_sky else None
            if self.uses_focal:  # DA3METRIC, Depth Pro: metres from the focal length
                fov = getattr(out, "field_of_view", None)
                estimated = self._estimated_cameras(frames, fov)
                pred = pred * self._focal_scale(frames, estimated, tuple(pred.shape[-2:]),
                                                rectify)
        if need_seg:
            logits = self._seg(pixels(self._seg)).logits.float()
        t1 = time.perf_counter()

        if s.output_resolution == "model":
            ref = pred if pred is not None else logits
            out_h, out_w = ref.shape[-2:]
        else:
            out_h, out_w = height, width
        cameras = []
        for frame, guess in zip(frames, estimated):
            intr = frame.intrinsics or guess
            if intr is not None and (intr.width, intr.height) != (out_w, out_h):
                intr = intr.scaled(out_w, out_h)
            cameras.append(intr)
        back = cameras if rectify else [None] * len(frames)  # rectified grid → raw grid
        depth_rel = labels = None
        if pred is not None:
            # The processor that made the input maps the prediction back onto the frame
            # (bicubic; ZoeDepth's also crops away the reflect padding it added).
            depth_rel = self._depth.processor.resize_depth(pred, (height, width), (out_h, out_w))
            depth_rel = unrectify_maps(depth_rel[:, None], back, torch.nan)[:, 0]
        sky_mask = None
        if sky is not None:  # sky head -> mask on the output grid; no return there (REP 118)
            sky = self._depth.processor.resize_sky(sky, (out_h, out_w))
            sky = unrectify_maps(sky[:, None], back, torch.nan)[:, 0]
            sky_mask = sky >= self._depth.model.config.sky_threshold  # NaN (outside): False
            if not s.depth_keep_sky:
                depth_rel = depth_rel.masked_fill(sky_mask, torch.nan)
        if logits is not None:
            labels = unrectify_maps(resize_maps(logits, (out_h, out_w), "bilinear"), back,
                                    None).argmax(dim=1)
        rgb_out = rgb
        if (out_h, out_w) != (height, width) and (need_points or "overlay" in want):
            rgb_out = F.interpolate(rgb.permute(0, 3, 1, 2).float(), size=(out_h, out_w),
                                    mode="bilinear", antialias=True, align_corners=False)
            rgb_out = rgb_out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)

        metric: list[torch.Tensor | None] = [None] * len(frames)
        states: list[AlignmentState | None] = [None] * len(frames)
        if depth_rel is not None:
            metric, states = self._metres(frames, depth_rel, cameras, s, prompted)
            if self.uses_focal:  # no camera model, no focal length: no metres
                metric = [m if cam is not None else None for m, cam in zip(metric, cameras)]

        results = []
        for i in range(len(frames)):
            results.append(self._outputs(
                want, s, cameras[i], metric[i],
                None if depth_rel is None else depth_rel[i],
                None if labels is None else labels[i],
                rgb_out[i]))
            if sky_mask is not None and "sky" in want:
                results[-1].sky = to_host(sky_mask[i].to(torch.uint8) * 255)
            results[-1].alignment = states[i]
            results[-1].intrinsics_estimated = estimated[i] is not None
            results[-1].prompted = prompted
        t2 = time.perf_counter()
        for r in results:
            r.timings = {"inference_ms": (t1 - t0) * 1e3, "post_ms": (t2 - t1) * 1e3}
        return results

    # Weight of each new frame's field of view in the smoothed focal length (per camera):
    # the FOV head's estimate jitters by a few percent frame to frame, and a camera's focal
    # length does not change, so a slow average; the first frame starts it.
    FOV_SMOOTHING = 0.1

    def _estimated_cameras(self, frames: list[Frame], fov: torch.Tensor | None
                           ) -> list[Intrinsics | None]:
        """For each frame without a camera model, the camera the model's field of view
        gives (Depth Pro: f = 0.5 W / tan(FOV / 2), smoothed over the camera's frames;
        square pixels, principal point at the centre); None for frames with one."""
        if fov is None or all(f.intrinsics is not None for f in frames):
            return [None] * len(frames)
        values = fov.float().cpu().tolist()  # (B,) scalars; one small copy per batch
        out: list[Intrinsics | None] = []
        for frame, deg in zip(frames, values):
            if frame.intrinsics is not None or not 0.0 < deg < 180.0:
                out.append(None)
                continue
            ratio = 0.5 / math.tan(0.5 * math.radians(deg))  # f / W
            old = self._fov_focal.get(frame.camera)
            if old is not None:
                ratio = old + self.FOV_SMOOTHING * (ratio - old)
            if not self._warming:
                self._fov_focal[frame.camera] = ratio
            height, width = frame.size
            f = ratio * width
            out.append(Intrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height))
        return out

    def _focal_scale(self, frames: list[Frame], estimated: list[Intrinsics | None],
                     size: tuple[int, int], rectify: bool) -> torch.Tensor:
        """(B, 1, 1): the model's focal rule (`config.focal_scale`: DA3 (fx' + fy') / 2 /
        300, as the official `apply_metric_scaling`; Depth Pro W' / fx') with the focal
        lengths at the network input. They are those of the view the model saw: the
        rectified camera (P) of a raw lens image when rectifying, else the image's own (or
        the model's estimate), each scaled by input size / frame size on its own axis (fx'
        by widths, fy' by heights). NaN for a frame with neither (it gets no metres)."""
        h_in, w_in = size
        rule = self._depth.model.config.focal_scale
        values = []
        for frame, guess in zip(frames, estimated):
            intr = frame.intrinsics or guess
            if intr is None:
                values.append(float("nan"))
                continue
            fx, fy = (intr.rectified_projection[:2] if rectify and needs_rectifying(intr)
                      else (intr.fx, intr.fy))
            height, width = frame.size
            values.append(rule(fx * w_in / width, fy * h_in / height, w_in))
        return torch.tensor(values, dtype=torch.float32, device=self.device).view(-1, 1, 1)

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
            batch = metric_depth(depth, source != "depth.scale", s.depth_scale, s.depth_shift,
                                 self.predicts_depth)
            return list(batch), [None] * len(frames)
        # the fit's form follows the output: depth (s z + t) or inverse depth (1 / (s r + t))
        self._alignments.configure(config, self.predicts_depth)
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
                metres.append(aligned_depth(depth[i], self.predicts_depth, state.scale,
                                            state.shift))
            else:
                metres.append(metric_depth(depth[i], source != "depth.scale", s.depth_scale,
                                           s.depth_shift, self.predicts_depth))
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
            # flying pixels on the cloud's own z (the optical-axis depth, any lens), classes
            keep = keep_mask(xyz[..., 2], s.pointcloud_edge_threshold, labels,
                             self.class_filter(s))
            r.points = pack_cloud(
                xyz,
                rgb if s.pointcloud_color else None,
                labels if (s.pointcloud_label and labels is not None) else None,
                stride=s.pointcloud_stride,
                min_range=s.pointcloud_min_range,
                max_range=s.pointcloud_max_range,
                keep=keep,
                voxel_size=s.pointcloud_voxel_size,
            )
        return r
