"""Write a directory under a temporary name and move it into place only when complete.

An interrupted or failed run therefore never leaves a half-written bag under the final
name, and an existing output is replaced only with `force` and only after success.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dpt_ros.offline.exitcodes import CliError, ExitCode


class AtomicDir:
    """`tmp` is where the writer works; `commit()` renames it to `final`, `abort()` removes it.

    `tmp` has the final name inside a hidden staging folder next to the output (same file
    system, so the rename is atomic), because rosbags names the storage file after its
    directory: the finished bag holds `<name>/<name>.mcap`, not a temporary name.
    """

    def __init__(self, final: str | Path, force: bool = False) -> None:
        self.final = Path(final).absolute()
        self.force = force
        check_output_free(self.final, force)
        self.staging = self.final.parent / f".{self.final.name}.partial-{os.getpid()}"
        self.tmp = self.staging / self.final.name

    def start(self) -> Path:
        """Create the staging folder; returns `tmp` (not yet existing) for the writer."""
        _remove(self.staging)
        self.staging.mkdir(parents=True)
        return self.tmp

    def commit(self) -> None:
        """Move the finished output into place (replacing an old one only with force)."""
        check_output_free(self.final, self.force)
        old = None
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"
            os.rename(self.final, old)
        os.rename(self.tmp, self.final)
        _remove(self.staging)
        if old is not None:
            _remove(old)

    def abort(self) -> None:
        """Drop whatever the writer left in the staging folder."""
        _remove(self.staging)


def check_output_free(path: Path, force: bool) -> None:
    """Refuse an existing output unless forced (checked before work starts and at commit)."""
    if path.exists() and not force:
        raise CliError(
            ExitCode.OUTPUT_EXISTS, f"output {path} exists; pass --force to replace it"
        )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
