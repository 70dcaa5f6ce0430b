"""Device → host copies of the outputs.

On CUDA a copy into pageable memory runs at about a third of the bandwidth of one into
pinned memory (profiled on an H100: 0.77 ms per 3.7 MB depth image, 55 % of a 720p frame's
device time). Pinned buffers come from PyTorch's caching host allocator, so after the first
frames no new pinned memory is registered; a buffer returns to the cache when the array
that views it is freed, so results never alias each other.
"""

from __future__ import annotations

import numpy as np
import torch


def to_host(t: torch.Tensor) -> np.ndarray:
    """A numpy array holding `t` (contiguous), through a pinned buffer on CUDA."""
    if t.device.type != "cuda":
        return t.contiguous().cpu().numpy()
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    torch.cuda.current_stream(t.device).synchronize()
    return host.numpy()
