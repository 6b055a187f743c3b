"""Pieces shared by the motion-module families: the last BatchNorm, the frame difference."""
from __future__ import annotations

import torch
import torch.nn as nn


def last_bn(c: int, zero_init: bool = True, dims: int = 2) -> nn.Module:
    """A module's last BatchNorm: weight 0 (the module starts as an identity) or, with ``zero_init=False``,
    1 like every other BN (the choice the quick preset makes for blocks trained from scratch)."""
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims](c)
    if zero_init:
        nn.init.zeros_(bn.weight)
    return bn


def frame_difference(x: torch.Tensor, transform: nn.Module) -> torch.Tensor:
    """transform(x[t+1]) - x[t] for t < T-1 and zeros for the last frame: (B, T, C, H, W) -> same."""
    B, T, C, H, W = x.shape
    nxt = transform(x[:, 1:].flatten(0, 1)).view(B, T - 1, C, H, W)
    return torch.cat([nxt - x[:, :-1], torch.zeros_like(x[:, :1])], dim=1)
