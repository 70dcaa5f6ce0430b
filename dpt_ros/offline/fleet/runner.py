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
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from dpt_ros.offline.bag import BagOptions, run_bag
from dpt_ros.offline.bag_io import input_storage
from dpt_ros.offline.fleet.commit import UnitTarget, dir_bytes
from dpt_ros.offline.fleet.units import Unit

# OSErrors worth another attempt: the storage may answer next time (NFS, FUSE mounts of
# object storage). Anything else a unit raises is deterministic: retrying repeats it.
TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET,
                    errno.ECONNABORTED, errno.ESTALE, errno.EBUSY}


def is_transient(err: BaseException) -> bool:
    """An I/O error of the transient kinds, itself or the cause the bag tool wrapped."""
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
    storage = template.storage or input_storage(Path(unit.input))
    opts = dataclasses.replace(template, input=Path(unit.input), output=target.final,
                               storage=storage, force=True, alignment_report=None)
    try:
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
    row["seconds"] = time.monotonic() - t0
    return row


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return "?"
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno}"
