"""Where a model comes from: an existing directory, else a Hub id at a pinned revision; a
missing path is an error, never a Hub lookup; pickles only with a torch that reads them
safely.

The Hub is a huggingface_hub cache built here (HF_HOME in tmp, HF_HUB_OFFLINE=1) with one
repo at two commits, `refs/main` -> A and a tag `refs/v1` -> B, whose configs and weights
differ; the checkpoints are the package's shipped synthetic weights, so nothing here needs
transformers.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from _node_util import ROOT, NodeProcess, domain_id, node_command, ros_env
from safetensors.torch import load_file, save_file

from dpt_ros.config.params import pipeline_kwargs
from dpt_ros.core.pipeline.pipeline import Pipeline, PipelineConfigError
from dpt_ros.model import (
    ModelLoadError,
    checkpoint,
    load_config,
    load_model,
    locate_source,
    resolve_source,
)
from dpt_ros.model import hub as model_hub
from dpt_ros.offline.cli import main as cli_main

SYNTH = ROOT / "dpt_ros" / "weights" / "synthetic-depth"
COMMIT_A = "a" * 40
COMMIT_B = "b" * 39 + "1"
REPO = "org/synth-depth"
BUMPED = "head.head.0.bias"  # the tensor that differs between the two commits


@pytest.fixture
def no_hub(monkeypatch):
    """Fails the test if the Hub is consulted at all."""
    def refuse(*args, **kwargs):
        pytest.fail(f"looked up on the Hub: {args}")

    monkeypatch.setattr(model_hub, "_download", refuse)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """HF_HOME with REPO at COMMIT_A (main: metric, the shipped weights) and COMMIT_B (tag
    v1: relative, one tensor changed), in huggingface_hub's cache layout."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    repo = home / "hub" / ("models--" + REPO.replace("/", "--"))
    for commit in (COMMIT_A, COMMIT_B):
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        for name in ("config.json", "preprocessor_config.json", "model.safetensors"):
            shutil.copy(SYNTH / name, snapshot / name)
    b = repo / "snapshots" / COMMIT_B
    config = json.loads((b / "config.json").read_text())
    (b / "config.json").write_text(json.dumps({**config, "depth_estimation_type": "relative"}))
    state = load_file(b / "model.safetensors")
    state[BUMPED] = state[BUMPED] + 1.0
    save_file(state, str(b / "model.safetensors"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT_A)
    (repo / "refs" / "v1").write_text(COMMIT_B)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return home


# ------------------------------------------------------------------ paths and ids
@pytest.mark.parametrize("text", [".", "..", "./m", "../m", "~/m", "~", "/abs/m", "a/b/c",
                                  "models/dpt/large"])
def test_paths_are_paths(text):
    assert model_hub.looks_like_path(text)


@pytest.mark.parametrize("text", ["Intel/dpt-large", "org/name.v2", "models/dpt-large"])
def test_hub_ids_are_not_paths(text):
    assert not model_hub.looks_like_path(text)


@pytest.mark.parametrize("text", ["./models/dpt", "../dpt", "~/no-such-model-dir",
                                  "/nonexistent/dpt", "models/dpt/large"])
def test_a_missing_path_is_an_error_not_a_hub_lookup(text, tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match=r"does not exist.*not looked up on the Hub"):
        resolve_source(text)


NEITHER = "is neither an existing directory nor a Hub repo id ('org/name')"
MISSING_PATH = "model directory org/name does not exist (a path, so not looked up on the Hub)"


@pytest.mark.parametrize(("text", "message"), [
    ("dpt-large", f"'dpt-large' {NEITHER}"),
    ("org/name/", MISSING_PATH),  # a slash too many: a path, not an id
    ("org//name", MISSING_PATH),
    ("org/na me", f"'org/na me' {NEITHER}"),
])
def test_neither_a_directory_nor_an_id(text, message, tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match=f"^{re.escape(message)}$"):
        resolve_source(text)


def test_an_existing_relative_directory_is_local(tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SYNTH, tmp_path / "models" / "dpt")
    for text in ("models/dpt", "./models/dpt"):
        origin = locate_source(text)
        assert origin.directory == Path(text) and origin.repo_id is None
        assert origin.describe() == f"local directory {text.removeprefix('./')}"
    shutil.copytree(SYNTH, tmp_path / "Intel" / "dpt-large")  # shadows the Hub id
    assert locate_source("Intel/dpt-large").repo_id is None


def test_a_missing_id_shaped_name_is_looked_up_on_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    asked = []

    def fake(repo_id, weights, revision):
        asked.append((repo_id, revision))
        raise ModelLoadError(f"Hub repo {repo_id!r} is not in the local Hugging Face cache")

    monkeypatch.setattr(model_hub, "_download", fake)
    with pytest.raises(ModelLoadError, match=r"no local directory 'models/dpt-large' \(from "):
        load_model("models/dpt-large", revision="v2")
    assert asked == [("models/dpt-large", "v2")]


def test_a_revision_of_a_local_directory_is_an_error(no_hub):
    with pytest.raises(ModelLoadError, match="only applies to a Hub repo id"):
        locate_source(SYNTH, revision="main")


# ---------------------------------------------------------------- revision pinning
@pytest.mark.parametrize(("revision", "commit", "metric"), [
    (None, COMMIT_A, True), ("main", COMMIT_A, True), ("v1", COMMIT_B, False),
    (COMMIT_B, COMMIT_B, False),
])
def test_revision_picks_the_snapshot(hub, revision, commit, metric):
    origin = locate_source(REPO, revision=revision)
    assert origin.commit == commit and origin.directory.name == commit
    assert origin.describe().startswith(f"Hub {REPO}@{commit}")
    assert load_config(REPO, revision=revision).is_metric is metric
    model = load_model(REPO, revision=revision)
    want = load_file(origin.directory / "model.safetensors")[BUMPED]
    torch.testing.assert_close(model.state_dict()[BUMPED], want, rtol=0, atol=0)


def test_an_unknown_revision_says_which(hub):
    with pytest.raises(ModelLoadError, match=r"at revision 'v9' is not in the local"):
        locate_source(REPO, revision="v9")


def test_revision_parameters_reach_the_pipeline(hub):
    """depth_model_revision flows from the node's parameters (the table, the YAML names)
    through pipeline_kwargs into the pipeline, which says where its model came from."""
    kwargs = pipeline_kwargs({"depth_model": REPO, "depth_model_revision": "v1",
                              "device": "cpu", "warmup": False})
    assert kwargs["depth_revision"] == "v1"
    pipeline = Pipeline(**kwargs)
    assert pipeline.model_sources["depth"].commit == COMMIT_B
    assert not pipeline.model_is_metric  # B's config
    assert f"depth=Hub {REPO}@{COMMIT_B}, revision v1" in pipeline.describe()
    with pytest.raises(PipelineConfigError, match="only applies to a Hub repo id"):
        Pipeline(depth_model=str(SYNTH), depth_revision="v1", device="cpu")


def test_offline_tools_take_a_revision(hub, capsys):
    assert cli_main(["info", REPO, "--revision", "v1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["commit"] == COMMIT_B and info["depth"].startswith("relative")
    assert cli_main(["info", REPO, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["commit"] == COMMIT_A

    params = hub / "p.yaml"
    params.write_text(f"/**/dpt_node:\n  ros__parameters:\n    depth_model: {REPO}\n"
                      "    depth_model_revision: v1\n    device: cpu\n")
    from dpt_ros.offline.config import build_pipeline, load_config

    assert build_pipeline(load_config(str(params), {})).model_sources["depth"].commit == \
        COMMIT_B
    config = load_config(str(params), {"depth_model_revision": "main"})  # --depth-model-revision
    assert build_pipeline(config).model_sources["depth"].commit == COMMIT_A


@pytest.mark.ros
def test_node_logs_the_source_and_commit(hub, tmp_path):
    pytest.importorskip("rclpy")
    cmd = node_command({"depth_model": REPO, "depth_model_revision": "v1", "device": "cpu",
                        "warmup": False})
    env = ros_env(domain_id("sources"), {"HF_HOME": str(hub), "HF_HUB_OFFLINE": "1"})
    proc = NodeProcess(cmd, env, tmp_path / "node.log")
    try:
        deadline = time.monotonic() + 90
        while "ready:" not in proc.log() and proc.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = proc.log()
    finally:
        proc.stop()
    ready = [line for line in log.splitlines() if "ready:" in line]
    assert ready, log
    assert f"depth_model=Hub {REPO}@{COMMIT_B}, revision v1" in ready[0]


# ------------------------------------------------------------------------- pickles
@pytest.fixture
def bin_checkpoint(tmp_path) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(SYNTH / name, directory / name)
    torch.save(load_file(SYNTH / "model.safetensors"), directory / "pytorch_model.bin")
    return directory


def test_pytorch_bin_loads_with_a_safe_torch(bin_checkpoint):
    assert checkpoint.torch_loads_pickles_safely()  # the torch this suite runs on
    ours = load_model(bin_checkpoint).state_dict()
    want = load_file(SYNTH / "model.safetensors")
    for key, value in want.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0)


@pytest.mark.parametrize(("version", "safe"), [("2.5.1+cu121", False), ("2.1.0", False),
                                               ("2.6.0", True), ("2.13.0+cpu", True),
                                               ("10.0", True), ("garbage", False)])
def test_which_torch_reads_pickles_safely(version, safe):
    assert checkpoint.torch_loads_pickles_safely(version) is safe


def test_pytorch_bin_is_refused_on_an_old_torch(bin_checkpoint, monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    with pytest.raises(ModelLoadError, match=r"torch >= 2\.6 \(found 2\.5\.1\)\. Convert .*"
                       r"safetensors"):
        load_model(bin_checkpoint)
    load_model(SYNTH)  # safetensors stay readable
