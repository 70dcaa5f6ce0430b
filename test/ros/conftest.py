"""Fixtures of the node tests: tiny checkpoints built once per session and the session-wide
nodes that several modules share (started by the first test that asks, stopped at the end)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _checkpoints import make_checkpoints
from _node_util import RELATIVE_SIZE, SHARED_PARAMS, Peer, domain_id, start_nodes


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """The random-weight checkpoints (metric, relative, segmentation, ...), built once."""
    return make_checkpoints(tmp_path_factory.mktemp("dpt_checkpoints"))


def _session_node(key: str, params: dict[str, Any], tmp_path_factory,
                  env: dict[str, str] | None = None):
    """One node on its own domain for the whole session; its exit code is checked at the end."""
    peer = Peer(domain_id(key))
    try:
        (proc,) = start_nodes([(params, env or {})], [peer], tmp_path_factory.mktemp(key))
        yield peer, proc
        code = proc.stop()
        assert code == 0, f"dpt_node exited with {code}:\n{proc.log()}"
    finally:
        peer.close()


@pytest.fixture(scope="session")
def shared_node(checkpoints, tmp_path_factory):
    """(peer, process) of a node with the metric depth and the segmentation checkpoints."""
    params = {**SHARED_PARAMS, "depth_model": checkpoints["metric"],
              "segmentation_model": checkpoints["segmentation"]}
    yield from _session_node("shared", params, tmp_path_factory)


@pytest.fixture(scope="session")
def relative_node(checkpoints, tmp_path_factory):
    """(peer, process) of a node with the relative checkpoint run at 448 x 448, fallback
    intrinsics from a 90 degree field of view, and metric outputs forced (which must still
    stay silent while the depth is relative)."""
    params = {**SHARED_PARAMS, "depth_model": checkpoints["relative"],
              "input_size": [RELATIVE_SIZE, RELATIVE_SIZE], "camera.hfov": 90.0,
              "publish.depth": True, "publish.points": True}
    # A fixed mmap threshold makes RSS the live memory, which the overload test watches:
    # glibc's dynamic threshold otherwise keeps freed multi-MB frame buffers of the two
    # threads' arenas in the heap, and RSS drifts by tens of MB without any leak.
    env = {"MALLOC_MMAP_THRESHOLD_": str(256 << 10)}
    yield from _session_node("relative", params, tmp_path_factory, env)
