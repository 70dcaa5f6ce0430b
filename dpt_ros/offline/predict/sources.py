"""Inputs of `dpt-ros predict`: image files, folders of them, and video files.

Every input becomes a stem (where its outputs go, relative to --out) and a stream of RGB
frames; a video's frames go to a folder named after the video.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dpt_ros.config.settings import DEFAULT_DECODE, DecodeOptions
from dpt_ros.core.codecs.image_codec import decode_compressed
from dpt_ros.core.errors import BadInput
from dpt_ros.offline.exitcodes import CliError, ExitCode

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


class UnreadableInput(Exception):
    """A file that is not a readable image or video (skipped and counted)."""


@dataclass(frozen=True)
class Source:
    """One input file and the output stem its frames map to."""

    path: Path
    stem: Path  # relative to --out: 'img' -> img_depth.png; a video's folder 'clip'
    is_video: bool


def collect_sources(paths: list[str | Path]) -> list[Source]:
    """Files as given, folders expanded (recursively, sorted, sub-folders kept in the stem).

    CliError(INPUT) for a missing path or an explicit file of unknown type; CliError(USAGE)
    when two inputs would write the same outputs.
    """
    sources: list[Source] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                kind = _kind(f)
                if kind is not None:
                    sources.append(Source(f, f.relative_to(path).with_suffix(""), kind))
        elif path.is_file():
            kind = _kind(path)
            if kind is None:
                raise CliError(
                    ExitCode.INPUT,
                    f"{path}: not an image ({sorted(IMAGE_SUFFIXES)}) "
                    f"or video ({sorted(VIDEO_SUFFIXES)})",
                )
            sources.append(Source(path, Path(path.stem), kind))
        else:
            raise CliError(ExitCode.INPUT, f"{path} does not exist")
    stems: dict[Path, Path] = {}
    for s in sources:
        if s.stem in stems:
            raise CliError(
                ExitCode.USAGE,
                f"{stems[s.stem]} and {s.path} would write the same outputs ({s.stem}_*); "
                "rename one or run them separately",
            )
        stems[s.stem] = s.path
    if not sources:
        raise CliError(ExitCode.INPUT, "no images or videos found in the given paths")
    return sources


def _kind(path: Path) -> bool | None:
    """True for a video, False for an image, None for anything else."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return True
    return False if suffix in IMAGE_SUFFIXES else None


def read_image(path: Path, options: DecodeOptions = DEFAULT_DECODE) -> np.ndarray:
    """RGB uint8 (H, W, 3) through the node's own compressed-image decoder (same 16-bit
    scaling by input.bits, same input.max_pixels guard); UnreadableInput for a broken,
    oversized or non-image file."""
    try:
        return decode_compressed(path.read_bytes(), "", options)
    except (BadInput, OSError) as err:
        raise UnreadableInput(f"{path}: {err}") from None


def video_frame_count(path: Path) -> int | None:
    """Frames in a video from its metadata (an estimate from duration x fps), or None."""
    import imageio.v3 as iio  # optional (the `offline` extra): only videos need it

    try:
        meta = iio.immeta(path, plugin="FFMPEG")
    except Exception:  # any decoder failure: the count is only for the ETA
        return None
    n = meta.get("nframes", math.inf)
    if not math.isfinite(n):
        n = meta.get("duration", 0.0) * meta.get("fps", 0.0)
    return round(n) if n and math.isfinite(n) else None


def read_video(path: Path) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a video (imageio + its bundled ffmpeg); UnreadableInput on failure."""
    import imageio.v3 as iio  # optional (the `offline` extra): only videos need it

    try:
        for frame in iio.imiter(path, plugin="FFMPEG"):
            yield np.asarray(frame)[..., :3]
    except (OSError, RuntimeError, ValueError, StopIteration) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]  # not ffmpeg's log
        raise UnreadableInput(f"{path}: {first}") from None


REFERENCE_SUFFIXES = (".npy", ".png")


def reference_path(directory: Path, stem: Path) -> Path | None:
    """The depth reference of the image with output stem `stem`: `<dir>/<stem>.npy` or
    `<dir>/<stem>.png`, the first that exists (None: that image has none)."""
    for suffix in REFERENCE_SUFFIXES:
        path = directory / stem.with_name(stem.name + suffix)
        if path.is_file():
            return path
    return None


def read_depth_reference(path: Path) -> tuple[np.ndarray, str]:
    """(depth, encoding) of a reference file, as the node's depth_reference carries it:
    `.npy` float32 metres (NaN / 0 = none) → 32FC1, `.png` 16-bit millimetres (0 = none,
    what `predict --depth-format png` writes) → 16UC1. UnreadableInput otherwise."""
    try:
        if path.suffix == ".npy":
            depth = np.load(path, allow_pickle=False)
            if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
                raise UnreadableInput(f"{path}: a depth reference .npy is a 2-D float array "
                                      f"of metres, got {depth.dtype} {depth.shape}")
            return depth.astype(np.float32), "32FC1"
        with Image.open(path) as im:
            depth = np.asarray(im)
        if depth.ndim != 2 or depth.dtype not in (np.uint16, np.int32) or (
                depth.dtype == np.int32 and (depth.min() < 0 or depth.max() > 65535)):
            raise UnreadableInput(f"{path}: a depth reference .png is 16-bit grey "
                                  f"millimetres, got {depth.dtype} {depth.shape}")
        return depth.astype(np.uint16), "16UC1"
    except (OSError, ValueError) as err:
        raise UnreadableInput(f"{path}: {err}") from None
