"""The bounded scheduling loop over a pool of Ray actors (Ray Core, `ray.wait`).

Why not Ray Data's `map_batches` with an actor pool: measured with Ray 2.60, one Python
exception in a unit aborts the whole dataset, a unit whose worker process dies is retried
forever, `max_errored_blocks` drops a failed unit silently, and each actor takes 2 tasks at
once (a short unit queues behind a long one while another actor idles). Those can be
configured only in part, and none of them yields a per-unit row saying what failed and how
often it was tried. Here the loop holds the guarantees itself:
- exactly one unit in flight per actor (a free actor gets the next unit; none queue);
- a unit's Python exception comes back as a `failed` row (the worker catches it) and is
  not retried, unless it is a transient I/O error;
- a worker process death fails only the unit in flight; the actor is restarted by Ray
  (`max_restarts=-1`, `max_task_retries=0`: the retry is this loop's, so it is counted) and
  the unit is tried again up to `max_attempts`, then reported;
- Ctrl-C stops handing out units; those in flight finish and are committed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dpt_ros.offline.fleet.units import Unit


@dataclass
class Slot:
    """One actor of the pool and its bookkeeping (utilisation in the summary)."""

    actor: Any
    index: int
    pid: int = 0  # the worker process's pid at start-up (tests kill it by this pid)
    busy_s: float = 0.0
    units: int = 0
    deaths: int = 0


@dataclass
class Attempt:
    unit: Unit
    slot: Slot
    started: float


@dataclass
class Scheduler:
    """Runs `units` over `slots`; `submit(actor, unit)` returns the ObjectRef of one run."""

    ray: Any
    slots: list[Slot]
    submit: Callable[[Any, Unit], Any]
    on_row: Callable[[dict[str, Any]], None]
    max_attempts: int = 3
    should_stop: Callable[[], bool] = lambda: False
    on_submit: Callable[[Unit, Slot], None] | None = None  # tests: kill a worker mid-run
    attempts: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    def run(self, units: list[Unit]) -> None:
        pending = deque(units)
        idle = deque(self.slots)
        in_flight: dict[Any, Attempt] = {}
        while pending or in_flight:
            if self.should_stop():
                self.stopped = True
                pending.clear()
            while idle and pending:
                slot, unit = idle.popleft(), pending.popleft()
                self.attempts[unit.id] = self.attempts.get(unit.id, 0) + 1
                ref = self.submit(slot.actor, unit)
                in_flight[ref] = Attempt(unit, slot, time.monotonic())
                if self.on_submit is not None:
                    self.on_submit(unit, slot)
            if not in_flight:
                continue
            ready, _ = self.ray.wait(list(in_flight), num_returns=1, timeout=0.5)
            for ref in ready:
                attempt = in_flight.pop(ref)
                attempt.slot.busy_s += time.monotonic() - attempt.started
                attempt.slot.units += 1
                idle.append(attempt.slot)
                retry = self._finish(ref, attempt)
                if retry and not self.stopped:
                    pending.appendleft(attempt.unit)

    def _finish(self, ref: Any, attempt: Attempt) -> bool:
        """Record the outcome of one attempt; True when the unit should run again."""
        unit, n = attempt.unit, self.attempts[attempt.unit.id]
        try:
            row = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as err:  # the worker process died
            attempt.slot.deaths += 1
            if n < self.max_attempts:
                return True
            row = {"unit": unit.id, "bag": unit.bag, "start": unit.start, "stop": unit.stop,
                   "status": "failed", "frames": 0,
                   "error": f"{unit.describe()}: the worker process died on each of {n} "
                            f"attempt(s); last: {_first_line(err)}"}
        except self.ray.exceptions.RayError as err:  # e.g. a task error Ray raised itself
            row = {"unit": unit.id, "bag": unit.bag, "start": unit.start, "stop": unit.stop,
                   "status": "failed", "frames": 0,
                   "error": f"{unit.describe()}: {_first_line(err)}"}
        if row.get("status") == "failed" and row.get("transient") and n < self.max_attempts:
            return True
        row["attempts"] = n
        self.on_row(row)
        return False


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
