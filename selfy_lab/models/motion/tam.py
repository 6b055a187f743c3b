"""TANet's temporal adaptive module (TAM; Liu et al., ICCV 2021), as its authors' code computes it.

Follows liu-zhy/temporal-adaptive-module, ``ops/temporal_module.py``, ``TAM``: from the spatially pooled
(B, C, T) signal, a local branch (1-D convolution over T, kernel 3, C -> C/4, BN, ReLU, 1-D convolution
C/4 -> C, sigmoid) gives a per-frame importance that re-weights x, and a global branch (per channel: linear
T -> 2T, BN, ReLU, linear 2T -> 3, softmax) gives a temporal kernel of size 3 that convolves the re-weighted x
along T. TANet returns TAM(x) inside the bottleneck, after its first 1x1 convolution (``STAGE:every``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import last_bn


class AdaptiveTemporalConv(nn.Module):
    """A depthwise temporal convolution whose kernel is given per clip and channel: x (B, C, T, H, W) and
    kernels (B, C, K) -> y[b, c, t] = sum_k kernels[b, c, k] x[b, c, t + k - K//2] (zero padding)."""

    def forward(self, x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        K = kernels.shape[-1]
        T = x.shape[2]
        pad = F.pad(x, (0, 0, 0, 0, K // 2, K // 2))
        return sum(kernels[:, :, k, None, None, None] * pad[:, :, k : k + T] for k in range(K))

    @staticmethod
    def macs(inputs, output) -> int:
        return output.numel() * inputs[1].shape[-1]


class TemporalAdaptive(nn.Module):
    """TANet's temporal adaptive module (Liu et al., ICCV 2021). From the spatially pooled (B, C, T) signal,
    a local branch (1-D conv over T, kernel 3, C -> C/4, BN, ReLU, 1-D conv C/4 -> C, sigmoid) gives a
    per-frame importance that re-weights x, and a global branch (per channel: FC T -> 2T, BN, ReLU,
    FC 2T -> 3, softmax) gives a temporal kernel of size 3 that convolves the re-weighted x along T.

    Choices of this toolkit: the module is the residual branch z = x + BN(TAM(x)), the BN's weight at zero
    with ``zero_init`` (identity at init); the number of frames is fixed at construction (the global
    branch's FC is T wide), as in TANet."""

    # its --block-options; its other arguments are the contract's (channels, frames, stage), its widths and zero_init
    OPTIONS: tuple[str, ...] = ()

    def __init__(self, channels: int, *, frames: int, stage: str = "res3", kernel: int = 3, alpha: int = 2,
                 beta: int = 4, zero_init: bool = True):
        super().__init__()
        self.frames, self.kernel = frames, kernel
        cb = max(4, channels // beta)
        self.local = nn.Sequential(nn.Conv1d(channels, cb, 3, 1, 1, bias=False), nn.BatchNorm1d(cb),
                                   nn.ReLU(inplace=True), nn.Conv1d(cb, channels, 1, bias=False), nn.Sigmoid())
        self.globl = nn.Sequential(nn.Linear(frames, alpha * frames, bias=False), nn.BatchNorm1d(alpha * frames),
                                   nn.ReLU(inplace=True), nn.Linear(alpha * frames, kernel, bias=False),
                                   nn.Softmax(dim=-1))
        self.conv = AdaptiveTemporalConv()
        self.bn = last_bn(channels, zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        if T != self.frames:
            raise ValueError(f"this TAM was built for {self.frames} frames, got clips of {T}")
        v = x.permute(0, 2, 1, 3, 4)  # (B, C, T, H, W)
        pooled = v.mean((-2, -1))  # (B, C, T)
        weighted = v * self.local(pooled)[..., None, None]
        kernels = self.globl(pooled.reshape(B * C, T)).view(B, C, self.kernel)
        y = self.conv(weighted, kernels).permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, C, H, W)
        return x + self.bn(y).view(B, T, C, H, W)
