"""Class palettes, label colouring and overlays for semantic segmentation (on the device)."""

from __future__ import annotations

import numpy as np
import torch

# The 150-class ADE20K palette (RGB hex, class order of the ADE20K SceneParsing benchmark), as
# used by the DPT / SegFormer / mmsegmentation ADE20K models. Entries 6 and 48 are both grey 140.
_ADE20K_HEX = (
    "787878b4787806e6e650323204c8037878508c8c8ccc05ffe6e6e604fa07e005ffebff0796053d78784608ff33"
    "ff06528fff8cccff04ff3307cc46030066c83de6faff06330b66ffff0747ff09e00907e6dcdcdcff095c7009ff"
    "08ffd607ffe0ffb8060aff47ff290a07ffffe0ff086608ffff3d06ffc207ff7a0800ff14ff0829ff05990633ff"
    "eb0cffa0961400a3ff8c8c8cfa0a0f14ff001fff00ff1f00ffe00099ff000000ffff470000ebff00adff1f00ff"
    "0bc8c8ff520000fff5003dff00ff7000ff85ff0000ffa300ff6600c2ff00008fff33ff000052ff00ff2900ffad"
    "0a00ffadff0000ff99ff5c00ff00ffff00f5ff0066ffad00ff0014ffb8b8001fff00ff3d0047ffff00cc00ffc2"
    "00ff52000aff0070ff3300ff00c2ff007aff00ffa3ff990000ff0aff70008fff005200ffa3ff00ffeb0008b8aa"
    "8500ff00ff5cb800ffff001f00b8ff00d6ffff00705cff0000e0ff70e0ff46b8a0a300ff9900ff47ff00ff00a3"
    "ffcc00ff008f00ffeb85ff00ff00ebf500ffff007afff5000abed4d6ff0000ccff1400ffffff000099ff0029ff"
    "00ffcc2900ff29ff00ad00ff00f5ff4700ff7a00ff00ffb8005cffb8ff000085ffffd60019c2c266ff005c00ff"
)
MAX_CLASSES = 1 << 16  # labels are published as uint8 / uint16 images


def _ade20k_rgb() -> np.ndarray:
    return np.frombuffer(bytes.fromhex("".join(_ADE20K_HEX)), dtype=np.uint8).reshape(150, 3)


def _bit_interleaved_rgb(num_classes: int) -> np.ndarray:
    """PASCAL VOC's bit-interleaved palette for ids 1..N (id 0, black, is skipped).

    Each id's bits are spread over the high bits of R, G and B, so the map id → colour is
    injective and neighbouring ids get very different colours.
    """
    ids = np.arange(1, num_classes + 1, dtype=np.int64)
    rgb = np.zeros((num_classes, 3), dtype=np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (ids >> (3 * shift + channel)) & 1
            rgb[:, channel] |= bit << (7 - shift)
    return rgb.astype(np.uint8)


def palette(num_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, 3) uint8 BGR class colours: ADE20K's for 150 classes, else a stable generated set.

    Generated palettes are distinct and never black (black marks invalid labels).
    """
    if not 0 < num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in 1..{MAX_CLASSES}, got {num_classes}")
    rgb = _ade20k_rgb() if num_classes == 150 else _bit_interleaved_rgb(num_classes)
    return torch.from_numpy(np.ascontiguousarray(rgb[:, ::-1])).to(device)


def colorize_labels(labels: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """(H, W) integer labels → (H, W, 3) uint8 with `colors`; labels outside 0..N-1 are black.

    Black rows pad the table at both ends so clamp + index_select handles invalid labels
    (3x faster than boolean guards + advanced indexing on CPU).
    """
    colors = colors.to(labels.device)
    n = colors.shape[0]
    black = colors.new_zeros((1, 3))
    table = torch.cat([black, colors, black])
    index = labels.to(torch.int32).clamp(-1, n).add_(1)
    return table.index_select(0, index.reshape(-1)).reshape(*labels.shape, 3)


def overlay(image_bgr: torch.Tensor, color: torch.Tensor, alpha: float) -> torch.Tensor:
    """Blend `color` over `image_bgr` (both (H, W, 3) uint8): (1 - alpha) image + alpha color.

    int16 arithmetic with alpha in 1/128 steps (exact at 0 and 1, within 1.5 of the float
    blend elsewhere): 255 * 128 + 64 still fits, and it ran 4x faster than int32 on CPU.
    """
    if image_bgr.shape != color.shape:
        raise ValueError(f"image {tuple(image_bgr.shape)} and colours {tuple(color.shape)} differ")
    a = round(min(max(float(alpha), 0.0), 1.0) * 128)
    mixed = image_bgr.to(torch.int16).mul_(128 - a)
    mixed.add_(color.to(image_bgr.device, torch.int16).mul_(a)).add_(64)
    return mixed.bitwise_right_shift_(7).to(torch.uint8)


def label_dtype(num_classes: int) -> type[np.unsignedinteger]:
    """The smallest unsigned dtype holding labels 0..num_classes-1 (uint8 or uint16)."""
    if not 0 < num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in 1..{MAX_CLASSES}, got {num_classes}")
    return np.uint8 if num_classes <= 256 else np.uint16
