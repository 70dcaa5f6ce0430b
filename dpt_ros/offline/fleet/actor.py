"""The fleet worker: one process, the model loaded once, one unit at a time.

Plain class (no Ray import): the driver wraps it with `ray.remote(...).options(...)`, so
Ray pickles it by reference and this module imports without the extra. The pipeline is
built in `__init__`, which Ray runs again when it restarts a dead worker process: every
process loads the model exactly once (`loads` in each result proves it), and a model that
cannot be loaded is reported by `ready()` instead of killing the process, so the driver can
fail the job with the reason rather than retrying a hopeless start.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from dpt_ros.offline.bag import BagOptions
from dpt_ros.offline.fleet.runner import run_unit
from dpt_ros.offline.fleet.units import Unit

_LOADS = 0  # pipelines built in this process (the test checks it stays 1)


class FleetWorker:
    """A pool member. `crash_units` is a test hook: units whose worker process exits hard
    (`os._exit`), as a segfaulting decoder would, to prove bounded retries."""

    def __init__(self, values: dict[str, Any], crash_units: frozenset[str] = frozenset()) \
            -> None:
        global _LOADS
        # deferred to the worker process: torch and the model load there, not in the driver
        from dpt_ros.offline.config import OfflineConfig, build_pipeline

        self.crash_units = crash_units
        self.error: str | None = None
        self.pipeline: Any = None
        t0 = time.monotonic()
        try:
            self.pipeline = build_pipeline(OfflineConfig(values))
            _LOADS += 1
        except Exception as err:  # reported by ready(); the driver fails the job with it
            self.error = f"{type(err).__name__}: {err}"
        self.load_s = time.monotonic() - t0

    def ready(self) -> dict[str, Any]:
        """Who this worker is and what it loaded (or why it could not)."""
        info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(),
                                "load_s": self.load_s, "error": self.error, "loads": _LOADS}
        if self.pipeline is not None:
            info["model"] = self.pipeline.describe()
            info["sources"] = {k: s.describe() for k, s in self.pipeline.model_sources.items()}
        return info

    def run(self, unit: Unit, template: BagOptions, root: str, digest: str) -> dict[str, Any]:
        if unit.id in self.crash_units:
            os._exit(70)
        if self.pipeline is None:  # a restarted process whose load failed this time
            return {"unit": unit.id, "bag": unit.bag, "status": "load_error",
                    "error": self.error, "pid": os.getpid(), "host": socket.gethostname()}
        row = run_unit(unit, template, self.pipeline, Path(root), digest)
        row["loads"] = _LOADS
        row["model"] = self.pipeline.describe()
        return row
