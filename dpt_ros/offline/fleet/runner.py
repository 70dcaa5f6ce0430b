"""One unit, inside a worker: the bag tool's own run over the unit's window, committed.

Everything the bag tool does (pairing, references, alignment, messages, log-time order) is
`dpt_ros.offline.bag.run_bag`; this module only points it at the unit's window and staging
directory, publishes the result with its done-marker, and turns any failure into a result
row instead of an exception, so one bad unit never stops the others.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import shutil
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from dpt_ros.offline.bag import BagOptions, run_bag
from dpt_ros.offline.bag_io import input_storage
from dpt_ros.offline.fleet.commit import UnitTarget, dir_bytes
from dpt_ros.offline.fleet.remote import fetch, is_url
from dpt_ros.offline.fleet.units import Unit

# OSErrors worth another attempt: the storage may answer next time (NFS, FUSE mounts of
# object storage). Anything else a unit raises is deterministic: retrying repeats it.
TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET,
                    errno.ECONNABORTED, errno.ESTALE, errno.EBUSY}


class FetchError(OSError):
    """Copying a remote bag failed: storage answers differently next time more often than
    not (throttling, timeouts), so it counts as transient unless the file is missing."""


def is_transient(err: BaseException) -> bool:
    """An I/O error of the transient kinds, itself or the cause the bag tool wrapped."""
    if isinstance(err, FetchError):
        return not isinstance(err.__cause__, (FileNotFoundError, PermissionError))
    for e in (err, err.__cause__, err.__context__):
        if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
            return True
    return False


def run_unit(unit: Unit, template: BagOptions, pipeline: Any, root: Path,
             digest: str) -> dict[str, Any]:
    """Process and commit `unit`; a result row (status ok / failed), never an exception."""
    t0 = time.monotonic()
    row: dict[str, Any] = {"unit": unit.id, "bag": unit.bag, "start": unit.start,
                           "stop": unit.stop, "host": socket.gethostname(), "pid": os.getpid()}
    target = UnitTarget(root, unit)
    local = None
    try:
        source = Path(unit.input)
        if is_url(unit.input):  # copy what the window needs to a private local folder
            local = Path(tempfile.mkdtemp(prefix="dpt_fleet_in_"))
            try:
                source = fetch(unit.input, unit.read_start, unit.read_stop, local / unit.bag)
            except OSError as err:
                raise FetchError(f"copying {unit.input}: {err}") from err
        storage = template.storage or input_storage(source)
        opts = dataclasses.replace(template, input=source, output=target.final,
                                   storage=storage, force=True, alignment_report=None)
        report = run_bag(opts, pipeline, stream=io.StringIO(), window=unit.window,
                         atomic=target)  # type: ignore[arg-type]  # duck-typed AtomicDir
        skipped = sum(report.skipped.values())
        row.update(frames=report.processed, skipped=skipped,
                   skipped_reasons={f"{t}: {why}": n for (t, why), n in report.skipped.items()},
                   bytes_read=report.bytes_read)
        target.publish({**row, "fingerprint": digest, "unit_dir": unit.dir_name})
        row.update(status="ok", error=None, bytes_written=dir_bytes(target.final))
    except Exception as err:
        target.abort()
        detail = str(err) or type(err).__name__
        if not hasattr(err, "code"):  # not a CliError: say where it came from
            detail = f"{type(err).__name__}: {detail} ({_where(err)})"
        row.update(status="failed", error=f"{unit.describe()}: {detail}",
                   transient=is_transient(err), frames=row.get("frames", 0))
    finally:
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
    row["seconds"] = time.monotonic() - t0
    return row


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return "?"
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno}"
