"""The optimised paths of the processing core agree with the fp32 eager path.

On CPU CI the compiled path runs through torch.compile with the `aot_eager` backend (the
graph capture and the wrapper, without inductor's minutes-long C++ build); inductor and CUDA
graphs run in `benchmarks/bench_e2e.py` on a GPU machine.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from _checkpoints import make_checkpoints

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline, PipelineConfigError

H, W = 48, 64
WANT = {"relative", "depth_colorized", "segmentation"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoints(tmp_path_factory.mktemp("engine_ckpt"))


def frames(n: int) -> list[Frame]:
    rng = np.random.default_rng(7)
    return [Frame(rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
                  Intrinsics.from_hfov(W, H, 70.0)) for _ in range(n)]


def make(ckpt, **kwargs) -> Pipeline:
    return Pipeline(depth_model=str(ckpt["relative"]),
                    segmentation_model=str(ckpt["segmentation"]), device="cpu", **kwargs)


def run(ckpt, **kwargs):
    return make(ckpt, **kwargs).process(frames(2), WANT)


def test_compiled_path_equals_eager(ckpt):
    torch._dynamo.reset()
    eager = run(ckpt)
    pipe = make(ckpt, compile_mode="default", compile_backend="aot_eager")
    compiled = pipe.process(frames(2), WANT)
    assert pipe.compile_status == "default"  # compiled, no fallback
    for e, c in zip(eager, compiled):
        np.testing.assert_allclose(c.relative, e.relative, rtol=1e-5,
                                   atol=1e-6 * np.abs(e.relative).max())
        np.testing.assert_array_equal(c.segmentation, e.segmentation)


def test_compile_failure_falls_back_to_eager_with_a_warning(ckpt, caplog):
    torch._dynamo.reset()

    def broken_backend(graph_module, example_inputs):
        raise RuntimeError("backend refuses this graph")

    pipe = make(ckpt, compile_mode="default", compile_backend=broken_backend)
    assert pipe.compile_status == "default"
    with caplog.at_level(logging.WARNING, logger="dpt_ros.core.pipeline.pipeline"):
        fallback = pipe.process(frames(2), WANT)
    assert "running eager instead" in caplog.text
    assert pipe.compile_status == "default (eager fallback)"
    assert make(ckpt).compile_status == "none"
    eager = run(ckpt)
    np.testing.assert_array_equal(fallback[0].relative, eager[0].relative)


def test_bfloat16_agrees_with_float32(ckpt):
    # bf16 keeps 8 mantissa bits: the documented bound is 5 % of the output scale.
    ref, half = run(ckpt), run(ckpt, dtype="bfloat16")
    for r, h in zip(ref, half):
        scale = np.abs(r.relative).max()
        assert np.abs(h.relative - r.relative).max() <= 0.05 * scale
        assert (h.segmentation == r.segmentation).mean() >= 0.95


def test_batch_equals_frame_by_frame(ckpt):
    pipe = Pipeline(depth_model=str(ckpt["relative"]), device="cpu")
    fs = frames(3)
    batched = pipe.process(fs, {"relative"})
    for f, b in zip(fs, batched):
        (single,) = pipe.process([f], {"relative"})
        np.testing.assert_allclose(b.relative, single.relative, rtol=1e-5,
                                   atol=1e-6 * np.abs(single.relative).max())


def test_unknown_compile_mode_is_a_config_error(ckpt):
    with pytest.raises(PipelineConfigError, match="compile_mode 'fast' is not one of"):
        Pipeline(depth_model=str(ckpt["relative"]), device="cpu", compile_mode="fast")
