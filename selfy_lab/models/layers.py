"""Small layers shared by the block families (SELFY, HCML, the field's motion modules)."""
from __future__ import annotations

import torch.nn as nn


def conv_bn_relu(cin: int, cout: int, k: int = 3, s: int = 1, p: int | None = None) -> nn.Sequential:
    """k x k convolution (no bias), BatchNorm, ReLU: (N, cin, H, W) -> (N, cout, H', W')."""
    p = k // 2 if p is None else p
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
