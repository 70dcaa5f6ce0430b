"""The scheduling loop's decisions without a cluster (a stand-in for `ray`): one unit per
actor at a time, a deterministic failure reported at once, a transient I/O error and a
worker death retried up to --max-attempts then reported, Ctrl-C stops handing out units."""

from __future__ import annotations

import errno
from types import SimpleNamespace

from dpt_ros.offline.exitcodes import CliError, ExitCode
from dpt_ros.offline.fleet.runner import is_transient
from dpt_ros.offline.fleet.scheduler import Scheduler, Slot
from dpt_ros.offline.fleet.units import Unit


class ActorDied(Exception):
    pass


class RayError(Exception):
    pass


class FakeRay:
    """`wait` returns the oldest ref; `get` returns its row or raises its error."""

    exceptions = SimpleNamespace(RayActorError=ActorDied, RayError=RayError)

    def __init__(self, outcomes):
        self.outcomes = outcomes  # unit id -> list of rows / exceptions, one per attempt
        self.refs: dict[int, object] = {}
        self.busy: dict[object, int] = {}  # actor -> units in flight
        self.max_busy = 0

    def submit(self, actor, unit):
        ref = len(self.refs)
        self.refs[ref] = (actor, self.outcomes[unit.id].pop(0))
        self.busy[actor] = self.busy.get(actor, 0) + 1
        self.max_busy = max(self.max_busy, self.busy[actor])
        return ref

    def wait(self, refs, num_returns, timeout):
        return [min(refs)], []

    def get(self, ref):
        actor, outcome = self.refs[ref]
        self.busy[actor] -= 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def _unit(k: int) -> Unit:
    return Unit("b", "/in/b", k, 4, k * 10, k * 10 + 10, k * 10, k * 10 + 10)


def _row(unit: str, status: str = "ok", transient: bool = False) -> dict:
    return {"unit": unit, "bag": "b", "status": status, "transient": transient, "frames": 1,
            "error": None if status == "ok" else "boom"}


def test_retries_and_reports():
    outcomes = {
        "b#0": [_row("b#0")],
        "b#1": [_row("b#1", "failed")],  # deterministic: once
        "b#2": [_row("b#2", "failed", True), _row("b#2")],  # transient, then fine
        "b#3": [ActorDied("worker died"), ActorDied("worker died")],  # poison
    }
    ray = FakeRay(outcomes)
    rows: list[dict] = []
    slots = [Slot("a0", 0), Slot("a1", 1)]
    sched = Scheduler(ray, slots, ray.submit, rows.append, max_attempts=2)
    sched.run([_unit(k) for k in range(4)])
    by = {r["unit"]: r for r in rows}
    assert sorted(by) == ["b#0", "b#1", "b#2", "b#3"]
    assert (by["b#0"]["status"], by["b#0"]["attempts"]) == ("ok", 1)
    assert (by["b#1"]["status"], by["b#1"]["attempts"]) == ("failed", 1)
    assert (by["b#2"]["status"], by["b#2"]["attempts"]) == ("ok", 2)
    assert (by["b#3"]["status"], by["b#3"]["attempts"]) == ("failed", 2)
    assert "died on each of 2 attempt(s)" in by["b#3"]["error"]
    assert "log time [" in by["b#3"]["error"]
    assert ray.max_busy == 1  # never two units queued on one actor
    assert sum(s.deaths for s in slots) == 2


def test_stop_hands_out_nothing_more():
    ray = FakeRay({f"b#{k}": [_row(f"b#{k}")] for k in range(4)})
    rows: list[dict] = []
    flag = SimpleNamespace(stop=False)

    def on_submit(unit, slot):
        flag.stop = True

    sched = Scheduler(ray, [Slot("a0", 0)], ray.submit, rows.append,
                      should_stop=lambda: flag.stop, on_submit=on_submit)
    sched.run([_unit(k) for k in range(4)])
    assert [r["unit"] for r in rows] == ["b#0"] and sched.stopped


def test_transient_errors():
    assert is_transient(OSError(errno.EIO, "I/O error"))
    assert not is_transient(OSError(errno.ENOENT, "missing"))
    try:
        try:
            raise OSError(errno.ETIMEDOUT, "timed out")
        except OSError:
            raise CliError(ExitCode.INPUT, "input bag unreadable") from None
    except CliError as wrapped:
        assert is_transient(wrapped)  # the bag tool's wrapper keeps the cause
    assert not is_transient(ValueError("bad"))
