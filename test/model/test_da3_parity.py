"""Depth Anything 3 (DA3METRIC / DA3MONO network) against the official depth-anything-3
code on the same random weights, loaded through our loader from the official file layout."""

from __future__ import annotations

import pytest
import torch
from _da3_oracle import SMALL_HEAD, SMALL_NET, official_network, official_outputs, save_official
from _model_util import TOL

from dpt_ros.model import DepthAnything3ForDepthEstimation, load_model

SIZES = [(196, 196), (182, 280), (266, 154), (238, 336)]  # square, landscape, portrait


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    official = official_network(SMALL_NET, SMALL_HEAD, seed=3)
    directory = save_official(official, tmp_path_factory.mktemp("da3"), "da3metric-large",
                              SMALL_NET, SMALL_HEAD)
    return official, load_model(directory), directory


def _rel(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("size", SIZES)
def test_depth_and_sky_match_official(pair, size):
    official, ours, _ = pair
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(size[0]))
    ref = official_outputs(official, x)
    with torch.no_grad():
        out = ours(x)
    assert out.predicted_depth.shape == ref["depth"].shape == (2, *size)
    # the random weights must give a signal worth comparing: depth varies, sky is not flat
    assert float(ref["depth"].std()) > 0.05 * float(ref["depth"].abs().max())
    assert float(ref["sky"].max()) > 0.0
    assert _rel(out.predicted_depth, ref["depth"]) <= TOL
    assert _rel(out.sky, ref["sky"]) <= TOL
    # the official forward fills sky with a sampled quantile; elsewhere it is the same depth
    not_sky = ref["sky"] < 0.3
    assert torch.allclose(out.predicted_depth[not_sky], ref["full_depth"][not_sky],
                          rtol=TOL, atol=TOL * float(ref["depth"].abs().max()))


def test_loaded_from_official_layout_and_saved_back(pair, tmp_path):
    _, ours, directory = pair
    assert isinstance(ours, DepthAnything3ForDepthEstimation)
    assert ours.config.is_metric and ours.config.metric_focal == 300.0
    ours.save_pretrained(tmp_path)
    from safetensors.torch import load_file

    saved, original = load_file(tmp_path / "model.safetensors"), load_file(
        directory / "model.safetensors")
    assert saved.keys() == original.keys()
    assert all(torch.equal(saved[k], original[k]) for k in original)
    # what we wrote is what the official code loads
    reloaded = official_network(SMALL_NET, SMALL_HEAD, seed=99)
    reloaded.load_state_dict({k.removeprefix("model."): v for k, v in saved.items()},
                             strict=True)


def test_mono_is_relative(tmp_path):
    official = official_network(SMALL_NET, SMALL_HEAD, seed=5)
    model = load_model(save_official(official, tmp_path, "da3mono-large", SMALL_NET,
                                     SMALL_HEAD))
    assert not model.config.is_metric and model.config.metric_focal is None
    x = torch.randn(1, 3, 182, 252)
    with torch.no_grad():
        assert _rel(model(x).predicted_depth, official_outputs(official, x)["depth"]) <= TOL
