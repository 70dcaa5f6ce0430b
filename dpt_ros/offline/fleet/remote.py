"""Bags on other file systems (`s3://`, `gs://`, `abfs://`, `hdfs://`, `file://`, …), through
pyarrow's file systems — the ones Ray Data reads.

rosbags reads local files only, so a unit copies what it needs to a private local folder
and runs there: the bag's `metadata.yaml` with only the storage files that overlap the
unit's read window listed (the rest of the bag's metadata — start time, per-topic counts —
unchanged, so the bag tool behaves as on the whole bag), then the folder is removed. The
driver plans from `metadata.yaml` alone; a remote bag must therefore be a rosbag2
directory (a bare remote `.mcap` / `.db3` has no metadata to plan from: mount it or copy
it). Output roots stay local or on a shared POSIX mount (commits are renames).
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from dpt_ros.offline.exitcodes import CliError, ExitCode

INFO = "rosbag2_bagfile_information"
STORAGE_SUFFIXES = (".db3", ".mcap")


def is_url(text: str) -> bool:
    return "://" in str(text)


def _fs(url: str) -> tuple[Any, str, str]:
    """(file system, path inside it, the URL's scheme prefix) — pyarrow imported here: it
    comes with Ray Data, not with the base install."""
    try:
        from pyarrow import fs as pafs
    except ImportError:
        raise CliError(ExitCode.USAGE, f"{url}: reading URLs needs pyarrow "
                       "(pip install pyarrow, or 'ray[data]')") from None
    try:
        filesystem, path = pafs.FileSystem.from_uri(url)
    except (OSError, ValueError) as err:
        raise CliError(ExitCode.INPUT, f"{url}: {err}") from None
    return filesystem, path, url.split("://", 1)[0] + "://"


def _url(prefix: str, path: str) -> str:
    return prefix + path if path.startswith("/") or prefix != "file://" else prefix + "/" + path


def find_remote_bags(url: str) -> list[str]:
    """The rosbag2 directories at or under `url` (one with metadata.yaml, or searched)."""
    from pyarrow import fs as pafs  # deferred: pyarrow comes with the `fleet` extra

    filesystem, path, prefix = _fs(url)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise CliError(ExitCode.INPUT, f"input {url} does not exist")
    if info.type == pafs.FileType.File:
        raise CliError(ExitCode.USAGE, f"{url}: a remote bag must be a rosbag2 directory with "
                       "metadata.yaml (the plan is made from it); mount or copy bare files")
    if filesystem.get_file_info(f"{path.rstrip('/')}/metadata.yaml").type == pafs.FileType.File:
        return [_url(prefix, path.rstrip("/"))]
    found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    dirs = sorted({str(PurePosixPath(f.path).parent) for f in found
                   if f.type == pafs.FileType.File and f.base_name == "metadata.yaml"})
    return [_url(prefix, d) for d in dirs]


def read_metadata(url: str) -> dict[str, Any]:
    """`rosbag2_bagfile_information` of the bag directory at `url`."""
    filesystem, path, _ = _fs(url)
    with filesystem.open_input_stream(f"{path.rstrip('/')}/metadata.yaml") as f:
        data = yaml.safe_load(f.read().decode())
    if not isinstance(data, dict) or INFO not in data:
        raise ValueError(f"{url}/metadata.yaml is not rosbag2 metadata")
    return data[INFO]


def file_sizes(url: str, names: list[str]) -> int:
    filesystem, path, _ = _fs(url)
    infos = filesystem.get_file_info([f"{path.rstrip('/')}/{n}" for n in names])
    return sum(max(i.size or 0, 0) for i in infos)


def storage_names(info: dict[str, Any]) -> list[str]:
    return [PurePosixPath(p).name for p in info.get("relative_file_paths", [])]


def fetch(url: str, read_start: int, read_stop: int, dest: Path) -> Path:
    """Copy the bag at `url` into the new directory `dest`, with only the storage files
    that hold messages in `[read_start, read_stop)` (all when the metadata lacks per-file
    times); returns `dest`."""
    filesystem, path, _ = _fs(url)
    info = read_metadata(url)
    names = storage_names(info)
    files = info.get("files") or []
    keep = names
    if files and len(files) == len(names):
        def overlaps(f: dict[str, Any]) -> bool:
            start = int(f["starting_time"]["nanoseconds_since_epoch"])
            end = start + int(f["duration"]["nanoseconds"]) + 1
            return start < read_stop and read_start < end and f.get("message_count", 1) > 0

        keep = [n for n, f in zip(names, files) if overlaps(f)] or names[:1]
    dest.mkdir(parents=True)
    for name in keep:
        with filesystem.open_input_stream(f"{path.rstrip('/')}/{name}") as src, \
                (dest / name).open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 22)
    trimmed = dict(info)
    trimmed["relative_file_paths"] = keep
    if files:
        trimmed["files"] = [f for n, f in zip(names, files) if n in keep]
    (dest / "metadata.yaml").write_text(yaml.safe_dump({INFO: trimmed}, sort_keys=False))
    return dest
