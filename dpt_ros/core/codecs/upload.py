"""Host → device: a batch of frames as one (B, H, W, 3) uint8 RGB tensor on the model's device.

Frames come as host RGB or as a camera's own YUV 4:2:2 / Bayer bytes (1-2 bytes per pixel
instead of 3). Every frame's bytes are copied once into one staging buffer, grouped by
encoding, and cross to the device in one transfer (pinned memory and an async copy on CUDA);
each group of sensor frames is then converted there in one call (`color_convert`). On the
CPU the staging buffer is the batch itself, fresh per call, so no result aliases another.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dpt_ros.core.codecs.color_convert import BYTES_PER_PIXEL, to_rgb

HOST_RGB = "rgb8"  # the encoding name of host-decoded RGB frames


class Uploader:
    """Uploads batches to `device`, reusing one pinned staging buffer on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._pinned: torch.Tensor | None = None
        self._staged: torch.cuda.Event | None = None  # the last copy out of `_pinned`

    def __call__(self, frames: Sequence[tuple[np.ndarray, str]]) -> torch.Tensor:
        """(pixels, encoding) per frame, all of one size: RGB (H, W, 3) with encoding 'rgb8',
        or sensor rows (H, W * bytes per pixel) with their encoding → (B, H, W, 3) uint8."""
        groups: dict[str, list[int]] = {}
        for i, (_, encoding) in enumerate(frames):
            groups.setdefault(encoding, []).append(i)
        total = sum(int(pixels.size) for pixels, _ in frames)
        staging = self._staging(total)
        host = staging.numpy()
        spans: dict[str, tuple[int, tuple[int, ...]]] = {}  # encoding -> (offset, shape)
        offset = 0
        for encoding, idx in groups.items():
            shape = (len(idx), *frames[idx[0]][0].shape)
            block = host[offset : offset + int(np.prod(shape))].reshape(shape)
            for j, i in enumerate(idx):
                block[j] = frames[i][0]
            spans[encoding] = (offset, shape)
            offset += block.size
        device = staging[:total]
        if self.device.type == "cuda":
            device = device.to(self.device, non_blocking=True)
            self._staged = torch.cuda.Event()
            self._staged.record()

        def group_rgb(encoding: str) -> torch.Tensor:
            start, shape = spans[encoding]
            rows = device[start : start + int(np.prod(shape))].view(shape)
            return rows if encoding == HOST_RGB else to_rgb(rows, encoding)

        if len(groups) == 1:
            return group_rgb(next(iter(groups)))
        pixels, encoding = frames[0]
        height = pixels.shape[0]
        width = pixels.shape[1] // BYTES_PER_PIXEL.get(encoding, 1)  # RGB: (H, W, 3)
        out = torch.empty((len(frames), height, width, 3), dtype=torch.uint8, device=self.device)
        for encoding, idx in groups.items():
            out[idx] = group_rgb(encoding)
        return out

    def _staging(self, nbytes: int) -> torch.Tensor:
        """A flat uint8 host buffer of at least `nbytes`: the pinned one on CUDA, once the
        previous upload out of it has finished; a fresh one on the CPU."""
        if self.device.type != "cuda":
            return torch.empty(nbytes, dtype=torch.uint8)
        if self._staged is not None:
            self._staged.synchronize()
        if self._pinned is None or self._pinned.numel() < nbytes:
            self._pinned = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
        return self._pinned
