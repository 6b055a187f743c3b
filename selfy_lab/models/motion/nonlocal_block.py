"""The embedded Gaussian non-local block (Wang et al., CVPR 2018), as its authors' code computes it.

Follows facebookresearch/video-nonlocal-net, ``lib/models/nonlocal_helper.py`` (``spacetime_nonlocal``)
with the defaults of ``lib/core/config.py`` (the ``NONLOCAL`` section) and the widths of
``lib/models/resnet_helper.py``. Their code is Caffe2; this is a reading of it.

The function, (B, T, C, H, W) -> same, over the N = T*H*W positions of a clip:

* theta on x, phi and g on x max-pooled 2x2 (stride 2) in space (``USE_MAXPOOL``, applied to the block's
  input before the convolutions): 1x1x1 convolutions with bias to C/2 channels, weights N(0, 0.01), bias 0;
* softmax over the M keys of theta^T phi / sqrt(C/2) (``USE_SCALE``);
* y = the softmax-weighted sum of g, a 1x1x1 convolution with bias back to C (N(0, 0.01)), a BN whose
  weight starts at 0 (``BN_INIT_GAMMA``);
* z = x + BN(...), the block's input being the output of the stage before it.

Options for what their code leaves open or changes through its configuration: ``subsample=False`` keeps
phi and g at full resolution (SELFY's Table 7a: its non-local and CP modules "do not" downsample, and its
24.8 G matches only without the pooling); ``scale=False`` drops the 1/sqrt(C/2) (their ``USE_SCALE``
switched off, the toolkit's earlier variant); ``init_std=0`` keeps PyTorch's default convolution
initialisation. ``zero_init`` is the toolkit's model option: off, the last BN starts at 1 (their code: 0).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import last_bn


class Attention(nn.Module):
    """softmax(q k^T * scale) v over all positions: (B, N, Cq), (B, M, Cq), (B, M, Cv) -> (B, N, Cv)."""

    activation_product = True  # both products multiply two activations (see flops.count_macs)

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        logits = q @ k.transpose(1, 2)  # (B, N, M)
        if self.scale != 1.0:
            logits = logits * self.scale
        return torch.softmax(logits, dim=-1) @ v

    @staticmethod
    def macs(inputs, output) -> int:
        q, k, v = inputs
        return q.shape[0] * q.shape[1] * k.shape[1] * (q.shape[2] + v.shape[2])


class NonLocal(nn.Module):
    """z = x + BN(W_z softmax(theta(x)^T phi(pool(x)) / sqrt(Ci)) g(pool(x))) (see the module docstring)."""

    # its --block-options; its other arguments are the contract's (channels, frames, stage), its widths and zero_init
    OPTIONS: tuple[str, ...] = ("subsample", "scale", "init_std")

    def __init__(self, channels: int, *, frames: int = 8, stage: str = "res3", inner: int | None = None,
                 zero_init: bool = True, subsample: bool = True, scale: bool = True, init_std: float = 0.01):
        super().__init__()
        ci = inner or max(4, channels // 2)
        self.subsample = subsample
        self.theta, self.phi, self.g = (nn.Conv2d(channels, ci, 1) for _ in range(3))
        self.attend = Attention(1 / math.sqrt(ci) if scale else 1.0)
        self.out = nn.Conv2d(ci, channels, 1)
        if init_std:
            for conv in (self.theta, self.phi, self.g, self.out):
                nn.init.normal_(conv.weight, 0, init_std)
                nn.init.zeros_(conv.bias)
        self.bn = last_bn(channels, zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        f = x.flatten(0, 1)  # (B*T, C, H, W)
        pooled = F.max_pool2d(f, 2, 2) if self.subsample and min(H, W) >= 2 else f

        def tokens(conv, inp):  # (B*T, C, h, w) -> (B, T*h*w, Ci)
            y = conv(inp)
            return y.view(B, T, -1, y.shape[-2] * y.shape[-1]).permute(0, 1, 3, 2).reshape(B, -1, y.shape[1])

        y = self.attend(tokens(self.theta, f), tokens(self.phi, pooled), tokens(self.g, pooled))  # (B, N, Ci)
        y = y.view(B, T, H, W, -1).permute(0, 1, 4, 2, 3).flatten(0, 1)  # (B*T, Ci, H, W)
        return x + self.bn(self.out(y)).view(B, T, C, H, W)
