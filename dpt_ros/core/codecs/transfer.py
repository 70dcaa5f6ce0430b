"""Device → host copies of the outputs, into host buffers with room for a message header.

On CUDA, copies into pageable memory took 3.1 of the 5.6 ms of device time of a 720p
Depth Anything frame on an H100 (4 outputs, 0.77 ms each); through pinned buffers the frame
got 2.1 ms faster (docs/benchmarks.md). Pinned buffers come from PyTorch's caching host
allocator, so after the first frames no new pinned memory is registered; a buffer returns
to the cache only when the array viewing it is freed, so results never alias each other.

Framed buffers: a host payload that is about to be published is, on the wire, a small header
+ the payload (+ a byte or two). Each pinned buffer (and the CPU point-cloud buffer, see
`framed_empty`) is allocated with `HEADROOM` bytes before and `TAILROOM` after the payload,
which no array views, so the serialized message can be laid out around the payload in place
(`dpt_ros.messages.cdr`) and handed to the middleware without copying the payload again.
`host_frame` tells whether an array is such a payload; anything else is copied as before.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import torch

HEADROOM = 4096  # bytes before a framed payload: a serialized header with a long frame_id
TAILROOM = 64  # bytes after it (PointCloud2 has one field after `data`)

# payload address -> (weak reference to the payload array, the whole uint8 buffer, offset)
_FRAMES: dict[int, tuple[weakref.ref, np.ndarray, int]] = {}
_LOCK = threading.Lock()


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _forget(address: int, ref: weakref.ref) -> None:
    with _LOCK:
        if address in _FRAMES and _FRAMES[address][0] is ref:
            del _FRAMES[address]


def _framed_array(shape: tuple[int, ...], dtype: torch.dtype, pin: bool) -> np.ndarray:
    """An uninitialised array of `shape` inside a host buffer with head- and tailroom."""
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    nbytes = np_dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    whole = torch.empty(HEADROOM + nbytes + TAILROOM, dtype=torch.uint8, pin_memory=pin).numpy()
    payload = whole[HEADROOM:HEADROOM + nbytes].view(np_dtype).reshape(shape)
    address = _address(payload)
    ref = weakref.ref(payload, lambda r, address=address: _forget(address, r))
    with _LOCK:
        _FRAMES[address] = (ref, whole, HEADROOM)
    return payload


def host_frame(array: object) -> tuple[np.ndarray, int] | None:
    """(whole uint8 buffer, payload byte offset) when `array` is exactly a framed payload
    (the very object `to_host` returned, not a view or copy of it), else None."""
    if not isinstance(array, np.ndarray):
        return None
    with _LOCK:
        entry = _FRAMES.get(_address(array))
    if entry is None or entry[0]() is not array:
        return None
    return entry[1], entry[2]


def framed_empty(nbytes: int) -> torch.Tensor:
    """A flat uint8 CPU tensor inside a framed host buffer. Fill it (through dtype views),
    then `to_host` of the whole of it returns the framed array without a copy: the CPU
    point cloud is built this way."""
    return torch.from_numpy(_framed_array((int(nbytes),), torch.uint8, pin=False))


def to_host(t: torch.Tensor) -> np.ndarray:
    """A numpy array holding `t` (contiguous), through a framed pinned buffer on CUDA.

    On the CPU no copy is made; a tensor that is all of a `framed_empty` buffer comes back
    as that buffer's framed array."""
    if t.device.type != "cuda":
        if t.dtype == torch.uint8 and t.dim() == 1 and t.is_contiguous():
            with _LOCK:
                entry = _FRAMES.get(t.data_ptr())
            framed = entry[0]() if entry is not None else None
            if framed is not None and framed.dtype == np.uint8 and framed.size == t.numel():
                return framed
        return t.contiguous().cpu().numpy()
    host = _framed_array(tuple(t.shape), t.dtype, pin=True)
    torch.from_numpy(host).copy_(t, non_blocking=True)
    torch.cuda.current_stream(t.device).synchronize()
    return host
