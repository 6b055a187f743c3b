"""TEA's motion excitation (ME) module (Li et al., CVPR 2020), as its authors' code computes it.

Follows Phoenix1327/tea-action-recognition, ``ops/tea50_8f.py``, ``MEModule`` (the committed file does not
parse as it stands - a missing comma in ``model_urls`` - so the module is read from its class, which is
complete). The function, (B, T, C, H, W) -> same, with Cr = C/16:

1. r = BN(conv1x1(x)), no bias, no ReLU;
2. d[t] = conv3x3_depthwise(r[t+1]) - r[t] for t < T-1 (the depthwise convolution, no bias, transforms the
   *next* frame), and a zero map appended for the last frame;
3. global average pooling over space, a 1x1 convolution (no bias) back to C, a BN (over the B*T pooled
   vectors, the appended zeros included), a sigmoid minus 0.5;
4. z = x + x * (sigmoid(.) - 0.5).

TEA puts one module inside every bottleneck, after its first 1x1 convolution + BN + ReLU and before its
3x3 convolutions (``STAGE:every``). Options: ``excite_bn=False`` is the toolkit's earlier variant (a biased
expanding convolution and no BN before the sigmoid). ``zero_init`` is the toolkit's model option: the BN
before the sigmoid starts at weight 0, so the gate is 0 and the module an identity at init; their code
starts every BN at 1 (``zero_init=False``).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .common import frame_difference, last_bn


class MotionExcitation(nn.Module):
    """z = x + x * (sigmoid(BN(conv(pool(ME difference)))) - 0.5) (see the module docstring)."""

    # its --block-options; its other arguments are the contract's (channels, frames, stage), its widths and zero_init
    OPTIONS: tuple[str, ...] = ("excite_bn",)

    def __init__(self, channels: int, *, frames: int = 8, stage: str = "res3", ratio: int = 16, zero_init: bool = True,
                 excite_bn: bool = True):
        super().__init__()
        cr = max(4, channels // ratio)
        self.reduce = nn.Sequential(nn.Conv2d(channels, cr, 1, bias=False), nn.BatchNorm2d(cr))
        self.transform = nn.Conv2d(cr, cr, 3, 1, 1, groups=cr, bias=False)
        if excite_bn:
            self.expand = nn.Conv2d(cr, channels, 1, bias=False)
            self.bn = last_bn(channels, zero_init)
        else:
            self.expand = nn.Conv2d(cr, channels, 1)
            self.bn = nn.Identity()
            if zero_init:
                nn.init.zeros_(self.expand.weight)
                nn.init.zeros_(self.expand.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        r = self.reduce(x.flatten(0, 1))  # (B*T, Cr, H, W)
        d = frame_difference(r.view(B, T, -1, H, W), self.transform)  # (B, T, Cr, H, W)
        pooled = d.mean((-2, -1)).flatten(0, 1)[..., None, None]  # (B*T, Cr, 1, 1)
        a = torch.sigmoid(self.bn(self.expand(pooled))) - 0.5
        return x + x * a.view(B, T, C, 1, 1)
