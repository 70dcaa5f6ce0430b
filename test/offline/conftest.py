"""Fleet tests: one simulated two-node Ray cluster per test session, on 127.0.0.1 only.

Ray is set up before anything imports it: single-node mode (every listener on loopback, see
dpt_ros/offline/fleet/cluster.py), no usage statistics, a short temporary directory (Ray's
Unix socket paths break past ~107 bytes, e.g. under pytest's tmp_path) that also holds
Ray's `ray_current_cluster` file (RAY_TMPDIR), and a 100 MB object store per node. The
fleet runs of the tests join this cluster (`run_fleet` reuses an initialised Ray).
"""

from __future__ import annotations

import pytest
from _fleet_util import ensure_cluster, stop_cluster


@pytest.fixture
def ray_cluster():
    """Head + one worker node, 1 CPU each, both on 127.0.0.1 (ray.cluster_utils.Cluster):
    started by the first fleet test, kept for the following ones, stopped after the last of
    them (so the rest of the suite runs without Ray's processes)."""
    return ensure_cluster()


def pytest_runtest_teardown(item, nextitem):
    if nextitem is None or "/test_fleet_" not in nextitem.nodeid:
        stop_cluster()


def pytest_sessionfinish(session, exitstatus):
    stop_cluster()
