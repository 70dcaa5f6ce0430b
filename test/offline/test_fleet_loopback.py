"""Ray stays on loopback: every listening socket and connection of every Ray process — the
tests' simulated cluster and the local Ray `dpt-ros fleet` starts by default — is on
127.0.0.1 / ::1 (psutil over the processes' sockets; nothing is sent anywhere)."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

from _fleet_util import NEEDS_RAY

pytestmark = NEEDS_RAY
ROOT = Path(__file__).resolve().parents[2]

SOCKETS = r'''
import ipaddress, json, os, sys
import psutil

def sockets(pid):
    """(process, status, local, remote) of a process tree's inet sockets."""
    out = []
    for p in [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True):
        try:
            for c in p.net_connections(kind="inet"):
                out.append((p.name(), c.status, c.laddr.ip if c.laddr else None,
                            c.raddr.ip if c.raddr else None))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out
'''


def _not_loopback(rows: list) -> list:
    bad = []
    for name, status, local, remote in rows:
        for ip in (local, remote):
            if ip is None:
                continue
            addr = ipaddress.ip_address(ip)
            addr = getattr(addr, "ipv4_mapped", None) or addr
            if not addr.is_loopback:
                bad.append((name, status, local, remote))
    return bad


def _with_actor(ray) -> int:
    @ray.remote(num_cpus=1)
    class Probe:
        def pid(self) -> int:
            return os.getpid()

    probe = Probe.remote()
    return ray.get(probe.pid.remote())


def test_session_cluster_on_loopback_only(ray_cluster):
    import ray

    ns: dict = {}
    exec(SOCKETS, ns)
    _with_actor(ray)  # a worker with its own gRPC server
    rows = ns["sockets"](os.getpid())
    listening = [r for r in rows if r[1] == "LISTEN"]
    assert len(listening) >= 5, rows  # GCS, raylets, object managers, workers
    assert _not_loopback(rows) == []


def test_default_local_ray_on_loopback_only(tmp_path):
    """What `dpt-ros fleet` without --address starts (cluster.connect(None)), in a fresh
    process: its listeners and connections, with an actor running."""
    script = SOCKETS + r'''
from dpt_ros.offline.fleet.cluster import connect
cluster = connect(None, num_cpus=1)
ray = cluster.ray
@ray.remote(num_cpus=1)
class Probe:
    def pid(self):
        return os.getpid()
p = Probe.remote()
ray.get(p.pid.remote())
rows = sockets(os.getpid())
print(json.dumps({"rows": rows, "temp": cluster.temp_dir}))
cluster.shutdown()
'''
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = result["rows"]
    assert len([r for r in rows if r[1] == "LISTEN"]) >= 3, rows
    assert _not_loopback(rows) == []
    assert len(result["temp"]) < 30 and not Path(result["temp"]).exists()  # short, removed
