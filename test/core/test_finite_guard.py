"""Half precision never hands out a non-finite model output (dpt_ros/core/pipeline/finite_guard.py).

A test double wraps the real model and makes its output overflow (inf, NaN) whenever it runs
in half precision, as fp16 activations do; in float32 it is the real model. Truth for the
recomputed frames: a float32 pipeline whose weights are the bf16 weights (rounded once),
i.e. float32 arithmetic over the deployed weights, which is what the guard computes. bf16
runs on the CPU; the fp16 overflow of a real checkpoint is a CUDA test (below).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _checkpoints import make_checkpoints
from _half_overflow import inject

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.finite_guard import NonFiniteOutput
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline, PipelineSettings

H, W = 40, 56
WANT = {"depth", "relative", "depth_colorized", "points", "segmentation"}
SETTINGS = dict(depth_scale=1.0, depth_shift=0.1)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    pytest.importorskip("transformers")
    return make_checkpoints(tmp_path_factory.mktemp("guard_ckpt"))


def frames(n: int) -> list[Frame]:
    rng = np.random.default_rng(5)
    return [Frame(rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
                  Intrinsics.from_hfov(W, H, 70.0)) for _ in range(n)]


def pipeline(ckpt, dtype: str, **kwargs) -> Pipeline:
    return Pipeline(depth_model=str(ckpt["relative"]), segmentation_model=str(ckpt["segmentation"]),
                    device="cpu", dtype=dtype, settings=PipelineSettings(**SETTINGS), **kwargs)


def fp32_over_bf16_weights(ckpt) -> Pipeline:
    ref = pipeline(ckpt, "float32")
    with torch.no_grad():
        for task in (ref._depth, ref._seg):
            for p in task.model.parameters():
                p.copy_(p.bfloat16().float())
    return ref


@pytest.mark.parametrize("task", ["depth", "segmentation"])
def test_non_finite_half_output_is_recomputed_in_float32(ckpt, task):
    pipe = pipeline(ckpt, "bfloat16")
    double = inject(pipe, task, bad=(1,))
    got = pipe.process(frames(2), WANT)
    assert pipe.nonfinite_frames == 1  # one of the two frames overflowed
    assert double.calls == [torch.bfloat16, torch.float32]  # the pass ran again in fp32
    want = fp32_over_bf16_weights(ckpt).process(frames(2), WANT)
    for g, r in zip(got, want):
        assert np.isfinite(g.relative).all()
        np.testing.assert_allclose(g.relative, r.relative, rtol=1e-5, atol=1e-6)
        # depth: NaN exactly where the conversion marks pixels invalid (REP 118), nowhere else
        np.testing.assert_array_equal(np.isnan(g.depth), np.isnan(r.depth))
        np.testing.assert_allclose(g.depth, r.depth, rtol=1e-5)
        np.testing.assert_array_equal(g.segmentation, r.segmentation)
        np.testing.assert_array_equal(g.depth_colorized, r.depth_colorized)
    # the next finite frame runs in bf16 again, the counter stays
    double.bad = ()
    pipe.process(frames(1), WANT)
    assert pipe.nonfinite_frames == 1 and double.calls[-1] == torch.bfloat16


def test_finite_half_output_is_left_alone(ckpt):
    pipe = pipeline(ckpt, "bfloat16")
    double = inject(pipe, "depth", bad=())
    got = pipe.process(frames(2), WANT)
    assert pipe.nonfinite_frames == 0 and double.calls == [torch.bfloat16]
    plain = pipeline(ckpt, "bfloat16").process(frames(2), WANT)
    np.testing.assert_array_equal(got[0].relative, plain[0].relative)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_output_non_finite_in_float32_too_is_an_error_not_a_frame(ckpt, dtype):
    pipe = pipeline(ckpt, dtype)
    inject(pipe, "depth", bad=(0,), always=True)
    with pytest.raises(NonFiniteOutput):
        pipe.process(frames(1), WANT)
    assert pipe.nonfinite_frames == 1
    with pytest.raises(NonFiniteOutput):  # a failed pass leaves no stale state behind
        pipe.process(frames(1), WANT)
    assert pipe.nonfinite_frames == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (float16)")
def test_real_fp16_overflow_is_recomputed_on_cuda(ckpt, tmp_path):
    """A checkpoint whose depth head activations exceed fp16's 65504 (its convolutions
    scaled up; every weight stays far below the fp16 limit): fp16 gives inf, the guard's
    fp32 recomputation gives the fp32 pipeline's answer (measured on the CPU in fp32: the
    largest output is ~2.8e5)."""
    import shutil

    from safetensors.torch import load_file, save_file

    src, dst = ckpt["relative"], tmp_path / "overflow"
    shutil.copytree(src, dst)
    weights = load_file(dst / "model.safetensors")
    scale = {"head.head.0.weight": 150, "head.head.0.bias": 150, "head.head.2.weight": 150,
             "head.head.2.bias": 150**2, "head.head.4.weight": 600}
    for name, factor in scale.items():
        weights[name] = weights[name] * factor
    save_file(weights, dst / "model.safetensors", metadata={"format": "pt"})
    want = {"relative", "depth_colorized"}
    half = Pipeline(depth_model=str(dst), device="cuda", dtype="float16")
    full = Pipeline(depth_model=str(dst), device="cuda", dtype="float32")
    got, ref = half.process(frames(1), want)[0], full.process(frames(1), want)[0]
    assert np.abs(ref.relative).max() > 65504  # the fp32 answer is beyond fp16's range
    assert half.nonfinite_frames == 1
    assert np.isfinite(got.relative).all()
    np.testing.assert_allclose(got.relative, ref.relative, rtol=2e-2,
                               atol=2e-2 * np.abs(ref.relative).max())
