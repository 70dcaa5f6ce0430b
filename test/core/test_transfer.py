"""to_host: device outputs to numpy, through pinned memory on CUDA, never aliased."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpt_ros.core.codecs.transfer import to_host


def test_cpu_tensor_becomes_a_contiguous_array_with_its_values() -> None:
    t = torch.arange(24, dtype=torch.float32).reshape(4, 6).t()  # not contiguous
    a = to_host(t)
    assert a.flags["C_CONTIGUOUS"] and a.shape == (6, 4)
    np.testing.assert_array_equal(a, np.arange(24, dtype=np.float32).reshape(4, 6).T)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_results_are_exact_and_independent() -> None:
    first_src = torch.rand(720, 1280, device="cuda")
    first = to_host(first_src)
    second = to_host(torch.rand(720, 1280, device="cuda"))
    assert not np.shares_memory(first, second)
    del second  # its pinned block goes back to the cache and is reused below ...
    for _ in range(5):
        to_host(torch.zeros(720, 1280, device="cuda"))
    # ... but never the block that `first` still views
    np.testing.assert_array_equal(first, first_src.cpu().numpy())


def test_cpu_framed_buffer_comes_back_without_a_copy() -> None:
    from dpt_ros.core.codecs.transfer import HEADROOM, TAILROOM, framed_empty, host_frame

    buffer = framed_empty(40)
    buffer.view(torch.float32)[:] = torch.arange(10, dtype=torch.float32)
    array = to_host(buffer)
    assert array.ctypes.data == buffer.data_ptr()  # the same memory
    whole, offset = host_frame(array)
    assert offset == HEADROOM and whole.size == HEADROOM + 40 + TAILROOM
    np.testing.assert_array_equal(array.view(np.float32), np.arange(10, dtype=np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_results_land_in_pinned_framed_buffers() -> None:
    from dpt_ros.core.codecs.transfer import HEADROOM, host_frame

    src = torch.rand(720, 1280, 3, device="cuda")
    host = to_host(src)
    np.testing.assert_array_equal(host, src.cpu().numpy())
    assert torch.from_numpy(host).is_pinned()
    whole, offset = host_frame(host)
    assert offset == HEADROOM and np.shares_memory(whole, host)
    assert host_frame(host.copy()) is None
