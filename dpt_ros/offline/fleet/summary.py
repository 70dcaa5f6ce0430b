"""The run's report: counts for the exit code, a text summary, and the per-run JSON."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpt_ros.offline.exitcodes import ExitCode

RUNS = "fleet_runs"


@dataclass
class FleetReport:
    """What one `dpt-ros fleet` run did (this run's rows; skipped = done before)."""

    root: Path
    bags: dict[str, str] = field(default_factory=dict)  # bag -> ok / failed / pending
    rows: list[dict[str, Any]] = field(default_factory=list)
    startup_s: float = 0.0  # cluster + actors up, model loaded
    processing_s: float | None = None  # from workers ready to the last unit (no shutdown)
    elapsed_s: float = 0.0
    interrupted: bool = False
    workers: list[dict[str, Any]] = field(default_factory=list)
    ray: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    summary_path: Path | None = None

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.failed:
            return ExitCode.FAILED
        skipped = any(r.get("skipped") for r in self.rows if r["status"] == "ok")
        return ExitCode.SKIPPED if skipped else ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        done = [r for r in self.rows if r["status"] == "ok"]
        frames = sum(r.get("frames", 0) for r in done)
        work_s = max(self.processing_s if self.processing_s is not None
                     else self.elapsed_s - self.startup_s, 1e-9)
        read = sum(r.get("bytes_read", 0) for r in done)
        written = sum(r.get("bytes_written", 0) for r in done)
        return {
            "started_at": self.started_at,
            "elapsed_s": round(self.elapsed_s, 3),
            "startup_s": round(self.startup_s, 3),
            "processing_s": round(work_s, 3),
            "exit_code": int(self.exit_code),
            "interrupted": self.interrupted,
            "bags": {s: sum(v == s for v in self.bags.values())
                     for s in ("ok", "failed", "pending")} | {"total": len(self.bags)},
            "units": {s: self.count(s) for s in ("ok", "skipped", "failed")},
            "frames": frames,
            "frames_skipped_done_before": sum(r.get("frames", 0) for r in self.rows
                                              if r["status"] == "skipped"),
            "frames_per_s": round(frames / work_s, 3),
            "mb_read": round(read / 1e6, 3),
            "mb_written": round(written / 1e6, 3),
            "mb_per_s_read": round(read / 1e6 / work_s, 3),
            "mb_per_s_written": round(written / 1e6 / work_s, 3),
            "failures": [{"unit": r["unit"], "error": r.get("error"),
                          "attempts": r.get("attempts")} for r in self.failed],
            "workers": self.workers,
            "ray": self.ray,
        }

    def write_json(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.root / RUNS / f"run-{stamp}-{os.getpid()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=1, default=str))
        self.summary_path = path
        return path

    def summary(self) -> str:
        d = self.as_dict()
        lines = [
            f"fleet: {d['bags']['ok']}/{d['bags']['total']} bags complete, units ok "
            f"{d['units']['ok']}, skipped (done before) {d['units']['skipped']}, failed "
            f"{d['units']['failed']}; {d['frames']} frames in {d['elapsed_s']:.1f} s "
            f"(start-up {d['startup_s']:.1f} s, {d['frames_per_s']:.1f} frames/s after it, "
            f"read {d['mb_per_s_read']:.1f} MB/s, wrote {d['mb_per_s_written']:.1f} MB/s)"
        ]
        for f in d["failures"]:
            lines.append(f"  FAILED {f['unit']} after {f['attempts']} attempt(s): {f['error']}")
        if self.interrupted:
            lines.append("interrupted: committed units are kept; run again to resume")
        if self.summary_path is not None:
            lines.append(f"summary: {self.summary_path}")
        return "\n".join(lines)
