"""Ray started for the run, or joined — loopback-only unless a cluster address is given.

Ray by default listens on every interface and advertises the machine's network address
(measured with Ray 2.60 here: GCS, raylet and workers bound to `::` and talking over the
host's address even with `_node_ip_address="127.0.0.1"`). A local run needs none of that, so
before Ray is imported the run sets `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` (Ray's single-node
mode: every server binds 127.0.0.1 and the node address is 127.0.0.1) and turns off usage
statistics (which would phone home). The temporary directory is short (`/tmp/rt...`):
Ray's Unix socket paths break past ~107 bytes.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from types import ModuleType
from typing import Any

LOOPBACK = "127.0.0.1"
LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # single-node mode: bind and advertise loopback
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage report sent anywhere
}
OBJECT_STORE_BYTES = 100 << 20  # results are small rows; bags never pass through it


def import_ray(local: bool) -> ModuleType:
    """Ray, imported with the loopback settings in force when `local`.

    The settings must be in the environment before `import ray` (Ray reads them into module
    constants) and before its processes start (they inherit them). A Ray already imported
    without them (a test session that set up its own cluster) is patched the same way.
    """
    if local:
        for key, value in LOCAL_ENV.items():
            os.environ.setdefault(key, value)
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ImportError("dpt-ros fleet needs Ray: pip install 'dpt_ros[fleet]'") from None
    if local:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # read at call time by get_node_ip_address
    return ray


@dataclass
class Cluster:
    """The Ray session of a run: `started` when this run started it (and must stop it)."""

    ray: ModuleType
    started: bool
    temp_dir: str | None = None

    def resources(self) -> dict[str, float]:
        return dict(self.ray.cluster_resources())

    def shutdown(self) -> None:
        if self.started:
            self.ray.shutdown()
            if self.temp_dir:
                shutil.rmtree(self.temp_dir, ignore_errors=True)


def is_loopback_address(address: str) -> bool:
    """`127.x.x.x:port`, `localhost:port`, `[::1]:port` (or with `ray://`)."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(address: str | None, num_cpus: int | None = None, num_gpus: int | None = None) \
        -> Cluster:
    """Join `address` (`auto`, `host:port`, `ray://...`), reuse a Ray this process already
    runs, or start a local one on 127.0.0.1 with a small object store. A cluster on this
    machine's loopback (`127.0.0.1:port`, e.g. a simulated multi-node one) is joined in the
    loopback mode too, so this driver advertises 127.0.0.1 and not the host's address."""
    local = address is None or is_loopback_address(address)
    ray = import_ray(local=local)
    if ray.is_initialized():
        return Cluster(ray, started=False)
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
    if address is not None:
        node = {"_node_ip_address": LOOPBACK} if local else {}
        ray.init(address=address, **node, **quiet)
        return Cluster(ray, started=True)
    temp_dir = tempfile.mkdtemp(dir="/tmp", prefix="rt")
    ray.init(
        # "local": always a new Ray; None would join a cluster found in RAY_ADDRESS or in
        # the last `ray start`'s address file, which is not what "absent" promises.
        address="local",
        _node_ip_address=LOOPBACK,
        include_dashboard=False,
        num_cpus=num_cpus if num_cpus is not None else os.cpu_count(),
        num_gpus=num_gpus,
        object_store_memory=OBJECT_STORE_BYTES,
        _temp_dir=temp_dir,
        **quiet,
    )
    return Cluster(ray, started=True, temp_dir=temp_dir)


def ray_version() -> str | None:
    mod = sys.modules.get("ray")
    return getattr(mod, "__version__", None) if mod else None
