"""Clip transforms on uint8 tensors (T, C, H, W); the same crop and flip for every frame of a clip.

Normalisation happens on the device, after the batch is moved there (``normalize``), so loaders
move uint8 (a quarter of the bytes) and corruptions can act on the raw frames.
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from ..core.runtime import device_constant

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    return TF.resize(clip, list(size), antialias=True)


def center_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    return TF.center_crop(clip, [size, size])


def three_crops(clip: torch.Tensor, size: int) -> list[torch.Tensor]:
    """TSN's three-crop test: ``size`` x ``size`` crops at the start, centre and end of the longer side,
    centred on the shorter one (left / centre / right of a landscape frame)."""
    H, W = clip.shape[-2:]
    if W >= H:
        y = (H - size) // 2
        return [TF.crop(clip, y, x, size, size) for x in (0, (W - size) // 2, W - size)]
    x = (W - size) // 2
    return [TF.crop(clip, y, x, size, size) for y in (0, (H - size) // 2, H - size)]


def random_scale_crop(clip: torch.Tensor, size: int, scales, rng: np.random.Generator) -> torch.Tensor:
    """TSN's multi-scale crop: side lengths from ``scales`` x the short side (width and height at most
    one scale step apart), a random position, then resized to ``size`` x ``size``."""
    H, W = clip.shape[-2:]
    base = min(H, W)
    sides = [int(base * s) for s in scales]
    pairs = [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= 1]
    ch, cw = pairs[rng.integers(len(pairs))]
    y = int(rng.integers(0, H - ch + 1))
    x = int(rng.integers(0, W - cw + 1))
    return TF.resize(clip[..., y : y + ch, x : x + cw], [size, size], antialias=True)


def clip_from_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (T, H, W, 3), as decoders and renderers give them -> a clip tensor (T, C, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()


def hflip(clip: torch.Tensor) -> torch.Tensor:
    return clip.flip(-1)


def normalize(batch: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 (..., C, H, W) -> float, ImageNet-normalised, on the batch's device."""
    m = device_constant(mean, batch.device, torch.float32).view(3, 1, 1)
    s = device_constant(std, batch.device, torch.float32).view(3, 1, 1)
    return (batch.float() / 255.0 - m) / s
