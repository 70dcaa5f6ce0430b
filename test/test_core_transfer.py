"""to_host: device outputs to numpy, through pinned memory on CUDA, never aliased."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpt_ros.core.transfer import to_host


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
