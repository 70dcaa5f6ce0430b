"""`dpt-ros predict`: images, folders and videos -> depth / segmentation files.

Same Pipeline, same parameter file as the node. Files per frame (stem = image name, or
`<video>/<frame index>`): `_depth.png` (uint16 mm, 0 = invalid) or `_depth.npy` (float32 m,
NaN invalid) for metric depth, `_relative.npy` for relative models, `_depth_color.png`,
`_seg.png` (class ids), `_seg_color.png`, `_overlay.png`, and `.ply` with intrinsics.

With `--reference-dir`, each image is aligned to its own metric reference
(`<dir>/<stem>.npy` metres or `.png` millimetres, registered to the image) by the pipeline's
`Aligner`, as a stand-alone fit (images are not a sequence: no temporal filter); every
frame's fit goes to `alignment.csv` (`offline.alignment_report`). Video frames have no
reference files and are processed without one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from dpt_ros.config.settings import DEFAULT_DECODE, DecodeOptions
from dpt_ros.core.alignment import FrameReference
from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.outputs import current_outputs
from dpt_ros.core.pipeline.pipeline import Frame, FrameResult, Pipeline
from dpt_ros.offline.alignment_report import AlignmentReport
from dpt_ros.offline.exitcodes import CliError, ExitCode, run_exit_code
from dpt_ros.offline.interrupt import StopFlag
from dpt_ros.offline.predict.ply import write_ply
from dpt_ros.offline.predict.sources import (
    Source,
    UnreadableInput,
    collect_sources,
    read_depth_reference,
    read_image,
    read_video,
    reference_path,
    video_frame_count,
)
from dpt_ros.offline.predict.writers import depth_to_mm, write_bgr_png, write_npy, write_png
from dpt_ros.offline.progress import Progress

# Pipeline output -> file name suffix after the stem ('depth' depends on --depth-format).
SUFFIXES = {
    "relative": "_relative.npy",
    "depth_colorized": "_depth_color.png",
    "segmentation": "_seg.png",
    "seg_colorized": "_seg_color.png",
    "overlay": "_overlay.png",
    "points": ".ply",
}


@dataclass(frozen=True)
class IntrinsicsSpec:
    """Camera intrinsics from the command line, in pixels of the input images."""

    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    hfov: float | None = None

    def __post_init__(self) -> None:
        if self.hfov is not None and self.fx is not None:
            raise CliError(ExitCode.USAGE, "give either --fx/--fy/--cx/--cy or --hfov, not both")
        if self.fx is None and any(v is not None for v in (self.fy, self.cx, self.cy)):
            raise CliError(ExitCode.USAGE, "--fy/--cx/--cy need --fx")

    @property
    def given(self) -> bool:
        return self.fx is not None or self.hfov is not None

    def for_size(self, width: int, height: int) -> Intrinsics | None:
        """Intrinsics for one image: fy defaults to fx, the principal point to the centre."""
        if self.hfov is not None:
            return Intrinsics.from_hfov(width, height, self.hfov)
        if self.fx is None:
            return None
        cx = self.cx if self.cx is not None else (width - 1) / 2.0
        cy = self.cy if self.cy is not None else (height - 1) / 2.0
        fy = self.fy if self.fy is not None else self.fx
        return Intrinsics(self.fx, fy, cx, cy, width, height)


@dataclass
class PredictOptions:
    paths: list[str | Path]
    out: Path
    depth_format: str = "png"  # png | npy
    batch_size: int = 4
    intrinsics: IntrinsicsSpec = field(default_factory=IntrinsicsSpec)
    outputs: list[str] | None = None  # None = everything the model can produce
    force: bool = False
    decode: DecodeOptions = DEFAULT_DECODE  # node parameters input.bits / input.max_pixels
    reference_dir: Path | None = None  # metric references per image (alignment)
    alignment_report: Path | None = None  # default with reference_dir: <out>/alignment.csv


@dataclass
class PredictReport:
    sources: int = 0
    frames: int = 0
    files: int = 0
    skipped: list[str] = field(default_factory=list)
    interrupted: bool = False
    elapsed: float = 0.0
    out: Path | None = None
    alignment: AlignmentReport | None = None

    @property
    def exit_code(self) -> ExitCode:
        return run_exit_code(self.interrupted, bool(self.skipped))

    def summary(self) -> str:
        rate = self.frames / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"processed {self.frames} frame(s) from {self.sources} input(s) in "
            f"{self.elapsed:.1f} s ({rate:.1f} frames/s); wrote {self.files} file(s) to "
            f"{self.out}"
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable input(s):")
            lines += [f"  {why}" for why in self.skipped]
        if self.alignment is not None:
            lines += self.alignment.summary()
        if self.interrupted:
            lines.append("interrupted: the files listed above are complete; the rest were not run")
        return "\n".join(lines)


def available_outputs(pipeline: Pipeline, with_points: bool) -> list[str]:
    """The file outputs this model can produce: the node's rule (`current_outputs`), and
    points only when intrinsics were given."""
    return [o for o in current_outputs(pipeline) if o != "points" or with_points]


def select_outputs(pipeline: Pipeline, opts: PredictOptions) -> list[str]:
    available = available_outputs(pipeline, opts.intrinsics.given)
    if opts.outputs is None:
        return available
    missing = [o for o in opts.outputs if o not in available]
    if missing:
        raise CliError(
            ExitCode.USAGE,
            f"cannot write {missing} with this model/arguments (available: {available}; "
            "'depth' needs a metric model or depth.scale, 'points' also needs intrinsics)",
        )
    return [o for o in available if o in opts.outputs]


def file_name(stem: Path, output: str, depth_format: str) -> Path:
    suffix = f"_depth.{depth_format}" if output == "depth" else SUFFIXES[output]
    return stem.with_name(stem.name + suffix)


def run_predict(
    opts: PredictOptions,
    pipeline: Pipeline,
    stop: StopFlag | None = None,
    stream: TextIO | None = None,
) -> PredictReport:
    """Process every input; raises CliError before writing anything for user errors."""
    sources = collect_sources(opts.paths)
    outputs = select_outputs(pipeline, opts)
    out = Path(opts.out)
    report_path = _alignment_report_path(pipeline, opts, out)
    _check_free(sources, outputs, out, opts, report_path)
    report = PredictReport(sources=len(sources), out=out)
    if pipeline.alignment.enabled or pipeline.takes_prompt:
        report.alignment = AlignmentReport(report_path)
    try:
        _run_all(sources, opts, pipeline, outputs, out, report, stop, stream)
    finally:
        if report.alignment is not None:
            report.alignment.close()
    return report


def _alignment_report_path(pipeline: Pipeline, opts: PredictOptions, out: Path
                           ) -> Path | None:
    if opts.reference_dir is None:
        return opts.alignment_report
    if not Path(opts.reference_dir).is_dir():
        raise CliError(ExitCode.INPUT, f"--reference-dir {opts.reference_dir} is not a directory")
    if not (pipeline.alignment.enabled or pipeline.takes_prompt):
        raise CliError(ExitCode.USAGE, "--reference-dir needs alignment.mode scale or "
                       "scale_shift (--alignment-mode, or the parameter file), or a Prompt "
                       "Depth Anything model")
    return opts.alignment_report or out / "alignment.csv"


def _run_all(sources: list[Source], opts: PredictOptions, pipeline: Pipeline,
             outputs: list[str], out: Path, report: PredictReport, stop: StopFlag | None,
             stream: TextIO | None) -> None:
    total = sum((video_frame_count(s.path) or 1) if s.is_video else 1 for s in sources)
    progress = Progress(total, "predict", stream=stream)
    start = time.monotonic()
    batch: list[tuple[Path, Frame]] = []
    for stem, rgb, is_video in _frames(sources, report, opts.decode):
        if stop is not None and stop.stop_requested:
            report.interrupted = True
            break
        frame = Frame(rgb, opts.intrinsics.for_size(rgb.shape[1], rgb.shape[0]))
        if opts.reference_dir is not None and not is_video:
            frame.reference = _reference(Path(opts.reference_dir), stem, report)
        batch.append((stem, frame))
        if len(batch) >= opts.batch_size:
            _run_batch(batch, pipeline, outputs, out, opts.depth_format, report, progress)
    if batch and not report.interrupted:
        _run_batch(batch, pipeline, outputs, out, opts.depth_format, report, progress)
    progress.close()
    report.elapsed = time.monotonic() - start


def _reference(directory: Path, stem: Path, report: PredictReport) -> FrameReference | None:
    """The image's depth reference, if it has a readable one (a broken one is reported and
    the image runs without it)."""
    path = reference_path(directory, stem)
    if path is None:
        return None
    try:
        depth, encoding = read_depth_reference(path)
    except UnreadableInput as err:
        report.skipped.append(f"reference {err}")
        return None
    return FrameReference(depth, encoding)


def _check_free(sources: list[Source], outputs: list[str], out: Path, opts: PredictOptions,
                report: Path | None = None) -> None:
    """Refuse to overwrite earlier results unless --force (checked before any work)."""
    if opts.force:
        return
    taken: list[Path] = [report] if report is not None and report.exists() else []
    for s in sources:
        if s.is_video:
            folder = out / s.stem
            if folder.is_dir() and any(folder.iterdir()):
                taken.append(folder)
        else:
            taken += [
                p for o in outputs if (p := out / file_name(s.stem, o, opts.depth_format)).exists()
            ]
    if taken:
        listed = ", ".join(str(p) for p in taken[:3]) + (" ..." if len(taken) > 3 else "")
        raise CliError(ExitCode.OUTPUT_EXISTS, f"outputs exist ({listed}); pass --force")


def _frames(
    sources: list[Source], report: PredictReport, decode: DecodeOptions
) -> Iterator[tuple[Path, np.ndarray, bool]]:
    """(stem, rgb, from a video) for every readable frame; unreadable inputs are recorded
    and skipped."""
    for s in sources:
        try:
            if s.is_video:
                for i, rgb in enumerate(read_video(s.path)):
                    yield s.stem / f"{i:06d}", rgb, True
            else:
                yield s.stem, read_image(s.path, decode), False
        except UnreadableInput as err:
            report.skipped.append(str(err))


def _run_batch(
    batch: list[tuple[Path, Frame]],
    pipeline: Pipeline,
    outputs: list[str],
    out: Path,
    depth_format: str,
    report: PredictReport,
    progress: Progress,
) -> None:
    results = pipeline.process([f for _, f in batch], set(outputs))
    for (stem, frame), result in zip(batch, results):
        report.files += _write_result(result, out / stem, outputs, depth_format)
        if report.alignment is not None:
            report.alignment.add(str(stem), result.alignment,
                                 ["depth"] if frame.reference is not None else [])
    if report.alignment is not None:
        report.alignment.flush()
    report.frames += len(batch)
    progress.update(len(batch))
    batch.clear()


def _write_result(result: FrameResult, stem: Path, outputs: list[str], depth_format: str) -> int:
    """Write one frame's files; returns how many were written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    for name in outputs:
        value = getattr(result, name)
        if value is None:
            continue
        path = file_name(stem, name, depth_format)
        if name == "depth":
            if depth_format == "png":
                write_png(path, depth_to_mm(value))
            else:
                write_npy(path, value.astype(np.float32))
        elif name == "relative":
            write_npy(path, value.astype(np.float32))
        elif name == "segmentation":
            write_png(path, value)
        elif name == "points":
            write_ply(value, path)
        else:
            write_bgr_png(path, value)
        written += 1
    return written
