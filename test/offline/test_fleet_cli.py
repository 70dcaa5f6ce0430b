"""The README's one command: `dpt-ros fleet DIR OUT ...` as a process, on the local Ray it
starts for the run (127.0.0.1, stopped after): a good bag written, a damaged one reported,
exit code 7, the summary on stderr and in OUTPUT_ROOT/fleet_runs/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _fleet_util import NEEDS_RAY, corrupt, model_args, topic_args, write_cameras_bag
from _offline_util import read_bag

pytestmark = NEEDS_RAY
ROOT = Path(__file__).resolve().parents[2]


def test_command_line_run(tmp_path):
    bags = tmp_path / "bags"
    bags.mkdir()
    write_cameras_bag(bags / "good", "mcap", 3)
    write_cameras_bag(bags / "bad", "sqlite3", 3)
    corrupt(bags / "bad")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "dpt_ros.offline.cli", "fleet", str(bags), str(tmp_path / "out"),
         *topic_args(), *model_args(tmp_path, segmentation=False), "--workers", "1"],
        capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 7, proc.stderr[-3000:]
    assert "fleet: 1/2 bags complete" in proc.stderr
    assert "FAILED bad#plan after 1 attempt(s): bag bad (" in proc.stderr
    (summary,) = (tmp_path / "out" / "fleet_runs").glob("run-*.json")
    data = json.loads(summary.read_text())
    assert data["ray"]["address"] == "local" and data["startup_s"] > 0
    assert data["bags"] == {"ok": 1, "failed": 1, "pending": 0, "total": 2}
    assert len([r for r in read_bag(tmp_path / "out" / "good") if r[0] == "/dpt/depth/image"]) == 3
