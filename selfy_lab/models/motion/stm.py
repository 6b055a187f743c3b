"""STM's channel-wise spatio-temporal and motion modules (CSTM + CMM; Jiang et al., ICCV 2019).

Its authors published no code; this follows the paper (CSTM: a channel-wise 1-D temporal convolution of
kernel 3, then a 2-D 3x3 convolution; CMM: a 1x1 channel reduction, frame t+1 through a 3x3 convolution minus
frame t, concatenated over time, a 1x1 convolution back; the STM block: a 1x1 convolution, CSTM + CMM summed,
a 1x1 convolution) and attributes to STM nothing its paper does not state. In STM the block replaces every
bottleneck of a ResNet-50.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers import conv_bn_relu
from .common import frame_difference, last_bn


class ChannelTemporalConv(nn.Module):
    """A channel-wise (depthwise) 1-D convolution over T at every position: (B, T, C, H, W) -> same."""

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, 1, kernel // 2, groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        y = self.conv(x.permute(0, 3, 4, 2, 1).reshape(B * H * W, C, T))
        return y.view(B, H, W, C, T).permute(0, 4, 3, 1, 2)


class STMBlock(nn.Module):
    """STM block (Jiang et al., ICCV 2019) as one residual insertion: a 1x1 reduction to C/4 (the
    bottleneck's width), then CSTM (a channel-wise temporal convolution of kernel 3, then a 3x3 2-D
    convolution) and CMM (a 1x1 reduction by 16, a 3x3 convolution of frame t+1 minus frame t, zero at the
    last frame, a 1x1 convolution back to C/4) summed, then a 1x1 convolution to C and a BN whose weight
    starts at zero: z = ReLU(x + BN(...)).

    Choices of this toolkit, which STM's paper does not state: the widths (C/4, and C/64 inside CMM); the zero
    map of the last frame in CMM; the residual form and the last BN; one block at an insertion point (in STM the
    block replaces every bottleneck of a ResNet-50; with an ImageNet backbone it here adds to, rather than
    replaces, a pretrained bottleneck); CSTM's temporal convolution starting as the identity (centre tap 1;
    ``temporal_init="default"`` keeps PyTorch's initialisation instead)."""

    # its --block-options; its other arguments are the contract's (channels, frames, stage), its widths and zero_init
    OPTIONS: tuple[str, ...] = ("temporal_init",)

    def __init__(self, channels: int, *, frames: int = 8, stage: str = "res3", ratio: int = 4, cmm_ratio: int = 16,
                 zero_init: bool = True, temporal_init: str = "identity"):
        super().__init__()
        cb = max(4, channels // ratio)
        cm = max(4, cb // cmm_ratio)
        self.reduce = conv_bn_relu(channels, cb, 1)
        self.temporal = ChannelTemporalConv(cb)
        if temporal_init not in ("identity", "default"):
            raise ValueError(f"temporal_init must be identity or default, got {temporal_init!r}")
        if temporal_init == "identity":
            with torch.no_grad():
                self.temporal.conv.weight.zero_()
                self.temporal.conv.weight[:, 0, 1] = 1.0
        self.spatial = conv_bn_relu(cb, cb, 3)
        self.cmm_reduce = conv_bn_relu(cb, cm, 1)
        self.cmm_transform = nn.Conv2d(cm, cm, 3, 1, 1, bias=False)
        self.cmm_expand = conv_bn_relu(cm, cb, 1)
        self.expand = nn.Conv2d(cb, channels, 1, bias=False)
        self.bn = last_bn(channels, zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        r = self.reduce(x.flatten(0, 1)).view(B, T, -1, H, W)
        cstm = self.spatial(self.temporal(r).flatten(0, 1))
        m = self.cmm_reduce(r.flatten(0, 1)).view(B, T, -1, H, W)
        cmm = self.cmm_expand(frame_difference(m, self.cmm_transform).flatten(0, 1))
        return F.relu(x + self.bn(self.expand(cstm + cmm)).view(B, T, C, H, W))
