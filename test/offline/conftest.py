"""Fleet tests: one simulated two-node Ray cluster per test session, on 127.0.0.1 only.

Ray is set up before anything imports it: single-node mode (every listener on loopback, see
dpt_ros/offline/fleet/cluster.py), no usage statistics, a short temporary directory (Ray's
Unix socket paths break past ~107 bytes, e.g. under pytest's tmp_path) that also holds
Ray's `ray_current_cluster` file (RAY_TMPDIR), and a 100 MB object store per node. The
fleet runs of the tests join this cluster (`run_fleet` reuses an initialised Ray).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from _fleet_util import HAVE_RAY


@pytest.fixture(scope="session")
def ray_cluster():
    """Head + one worker node, 1 CPU each, both on 127.0.0.1 (ray.cluster_utils.Cluster)."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (the fleet extra)")
    from dpt_ros.offline.fleet.cluster import LOOPBACK, OBJECT_STORE_BYTES, import_ray

    temp = tempfile.mkdtemp(dir="/tmp", prefix="rt")
    os.makedirs(os.path.join(temp, "ray"))
    old_tmp = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp
    ray = import_ray(local=True)
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES,
            "node_ip_address": LOOPBACK}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        if old_tmp is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = old_tmp
