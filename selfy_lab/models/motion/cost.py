"""CoST's collaborative spatio-temporal convolution (Li et al., CVPR 2019), as its authors' code computes it.

Follows hikvision-research/cost, ``cost/models/common/conv_cost.py`` (``conv3v``, ``CoSTa``, ``CoSTb``) and
the bottleneck around them in ``cost/models/backbones/resnet3d_cost.py`` (``Bottleneck3dCoST``).

One 3x3 kernel (Cout, Cin, 3, 3), shared by the three views of the (T, H, W) volume: as 3-D kernels 1x3x3
(H-W), 3x1x3 (T-W; the kernel's first index runs over T) and 3x3x1 (T-H), each padded to keep the size, no
bias. The three responses are summed with weights, a softmax over the views for every output channel:

* CoST(a): learned coefficients (3, Cout), initialised to (0.7, -0.7, -0.7) - the H-W view first;
* CoST(b): predicted per clip: each view's response max-pooled over T, H and W (global max), a linear layer
  C -> C without bias shared by the views, then a linear layer 3 -> 3 without bias that mixes the three views
  of each channel, both initialised N(0, 0.01); no nonlinearity between them.

Around it, as in their bottleneck: a 1x1 reduction to C/4 (no bias) + BN + ReLU, the collaborative
convolution + BN + ReLU, a 1x1 expansion back to C + BN, added to x, then ReLU. CoST replaces the 3x3
convolution of the inflated bottlenecks of a 3-D ResNet; inserted at one place here, it is one such bottleneck.
The BN after the expansion starts at weight 0 with ``zero_init`` (the toolkit's model option; theirs at 1).

Options (the toolkit's earlier variants): ``alpha_init="equal"`` starts CoST(a)'s coefficients at 0 (equal
views); ``pool="mean"`` averages instead of max-pooling in CoST(b); ``mix_views=False`` drops its 3 -> 3 layer
and gives the C -> C layer a bias.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers import conv_bn_relu
from .common import last_bn

ALPHA_INIT = (0.7, -0.7, -0.7)  # CoSTa's H-W, T-W, T-H coefficients before the softmax


class CoSTConv(nn.Module):
    """The collaborative convolution: (B, C, T, H, W) -> (B, C', T, H, W)."""

    def __init__(self, cin: int, cout: int, *, variant: str = "a", alpha_init: str = "authors", pool: str = "max",
                 mix_views: bool = True):
        super().__init__()
        if variant not in ("a", "b"):
            raise ValueError(f"unknown CoST variant '{variant}': choose a or b")
        if alpha_init not in ("authors", "equal"):
            raise ValueError(f"alpha_init must be authors or equal, got {alpha_init!r}")
        if pool not in ("max", "mean"):
            raise ValueError(f"pool must be max or mean, got {pool!r}")
        self.variant, self.pool, self.mix_views = variant, pool, mix_views
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        if variant == "a":
            self.alpha = nn.Parameter(torch.zeros(3, cout))
            if alpha_init == "authors":
                with torch.no_grad():
                    self.alpha.copy_(torch.tensor(ALPHA_INIT)[:, None].expand(3, cout))
        else:
            self.predict = nn.Linear(cout, cout, bias=not mix_views)
            nn.init.normal_(self.predict.weight, 0, 0.01)
            if mix_views:
                self.mix = nn.Linear(3, 3, bias=False)
                nn.init.normal_(self.mix.weight, 0, 0.01)

    def views(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 3, C', T, H, W): the H-W, T-W and T-H responses of the shared kernel."""
        w = self.weight
        return torch.stack([F.conv3d(x, w[:, :, None], padding=(0, 1, 1)),
                            F.conv3d(x, w[:, :, :, None], padding=(1, 0, 1)),
                            F.conv3d(x, w[..., None], padding=(1, 1, 0))], dim=1)

    def coefficients(self, v: torch.Tensor) -> torch.Tensor:
        """(B, 3, C', ...) view responses -> (B, 3, C') weights, a softmax over the views."""
        if self.variant == "a":
            return self.alpha.softmax(0).expand(v.shape[0], 3, -1)
        pooled = v.amax((-3, -2, -1)) if self.pool == "max" else v.mean((-3, -2, -1))  # (B, 3, C')
        a = self.predict(pooled)  # the C' -> C' layer, shared by the views
        if self.mix_views:
            a = self.mix(a.transpose(1, 2)).transpose(1, 2)  # each channel's three views mixed: (B, C', 3)
        return a.softmax(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.views(x)
        return (self.coefficients(v)[..., None, None, None] * v).sum(1)

    def macs(self, inputs, output) -> int:
        B, C = inputs[0].shape[:2]
        c = output.shape[1]
        fc = 0
        if self.variant == "b":  # the C' -> C' layer on three views, the 3 -> 3 layer on every channel
            fc = B * 3 * c * c + (B * c * 9 if self.mix_views else 0)
        return 3 * output.numel() * C * 9 + fc


class CoSTBlock(nn.Module):
    """CoST's bottleneck as one residual insertion: z = ReLU(x + BN(expand(CoST(reduce(x)))))."""

    # its --block-options; its other arguments are the contract's (channels, frames, stage), its widths and zero_init
    OPTIONS: tuple[str, ...] = ("alpha_init", "pool", "mix_views")

    def __init__(self, channels: int, *, frames: int = 8, stage: str = "res3", variant: str = "a", ratio: int = 4,
                 zero_init: bool = True, alpha_init: str = "authors", pool: str = "max", mix_views: bool = True):
        super().__init__()
        cb = max(4, channels // ratio)
        self.reduce = conv_bn_relu(channels, cb, 1)
        self.cost = CoSTConv(cb, cb, variant=variant, alpha_init=alpha_init, pool=pool, mix_views=mix_views)
        self.post = nn.Sequential(nn.BatchNorm3d(cb), nn.ReLU(inplace=True))
        self.expand = nn.Conv2d(cb, channels, 1, bias=False)
        self.bn = last_bn(channels, zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        r = self.reduce(x.flatten(0, 1)).view(B, T, -1, H, W).transpose(1, 2)  # (B, Cb, T, H, W)
        y = self.post(self.cost(r)).transpose(1, 2).flatten(0, 1)  # (B*T, Cb, H, W)
        return F.relu(x + self.bn(self.expand(y)).view(B, T, C, H, W))
