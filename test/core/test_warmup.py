"""Warm-up at the camera's real size, on the worker thread (Pipeline.warm_new_sizes).

Counted with forward hooks on the real model: a new (batch, height, width) gets its warm-up
pass(es) right before its first frame, a known one none; the first frame itself is still
processed (its result equals a fresh pipeline's); every model call, warm-up included, runs on
the worker's thread (CUDA graphs are per thread).
"""

from __future__ import annotations

import threading
from functools import partial

import numpy as np
import pytest
from _checkpoints import make_checkpoints

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline
from dpt_ros.ros.worker import LatestSlots, Worker

WANT = {"relative", "depth_colorized"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    pytest.importorskip("transformers")
    return make_checkpoints(tmp_path_factory.mktemp("warmup_ckpt"))


def frames(n: int, height: int, width: int) -> list[Frame]:
    rng = np.random.default_rng(height * width + n)
    return [Frame(rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                  Intrinsics.from_hfov(width, height, 70.0)) for _ in range(n)]


def counted(ckpt) -> tuple[Pipeline, list[tuple[int, ...]]]:
    """A pipeline whose depth model records (batch, H, W of the frame) per forward call."""
    pipe = Pipeline(depth_model=str(ckpt["relative"]), device="cpu")
    calls: list[tuple[int, ...]] = []
    pipe._depth.model.register_forward_hook(
        lambda mod, args, out: calls.append((args[0].shape[0], threading.current_thread().name)))
    return pipe, calls


def test_each_new_size_is_warmed_once_before_its_first_frame(ckpt):
    pipe, calls = counted(ckpt)
    pipe.warm_new_sizes = True
    first = pipe.process(frames(1, 40, 56), WANT)
    assert len(calls) == 2  # warm-up, then the frame
    np.testing.assert_array_equal(  # the first frame is not lost: it is the real answer
        first[0].relative,
        Pipeline(depth_model=str(ckpt["relative"]), device="cpu").process(
            frames(1, 40, 56), WANT)[0].relative)
    pipe.process(frames(1, 40, 56), WANT)
    assert len(calls) == 3  # known size: no warm-up
    pipe.process(frames(1, 48, 64), WANT)  # a new camera size (resolution change)
    assert len(calls) == 5
    pipe.process(frames(2, 40, 56), WANT)  # two cameras batched: another graph
    assert [b for b, _ in calls[5:]] == [2, 2]
    pipe.warm_new_sizes = False
    pipe.process(frames(1, 24, 32), WANT)
    assert len(calls) == 8  # offline tools: no warm-up


def test_warmup_and_frames_run_on_the_worker_thread(ckpt):
    """The node's wiring: the start-up warm-up (input_size) as the worker's `first`, each
    frame through `handle`; no model call on the caller's thread."""
    pipe, calls = counted(ckpt)
    pipe.warm_new_sizes = True
    slots: LatestSlots[list[Frame]] = LatestSlots(["cam"])
    done = threading.Event()

    def handle(items: dict[str, list[Frame]]) -> None:
        pipe.process(items["cam"], WANT)
        done.set()

    worker = Worker(slots, handle, on_crash=lambda exc: None, name="dpt_worker_test",
                    first=partial(pipe.warmup, 64, 64))
    worker.start()  # returns after the warm-up
    assert [t for _, t in calls] == ["dpt_worker_test"]
    slots.put("cam", frames(1, 40, 56))
    assert done.wait(30.0)
    worker.stop()
    assert len(calls) == 3 and {t for _, t in calls} == {"dpt_worker_test"}
