"""CPNet's correspondence proposal (CP) module (Liu et al., CVPR 2019), as its authors' code computes it.

Follows xingyul/cpnet, ``utils/net_utils.py`` (``cp_module``, ``get_coord``, the kNN op it imports) and its
placement in ``models/c2d_resnet18_cp_224.py``. Their code is TensorFlow 1.x; this is a reading of it.

The function, (B, T, C, H, W) -> (B, T, C, H, W), the CP output alone (the caller adds it):

1. at res3 the map is first shrunk by 2 with TensorFlow 1's bilinear resize without half-pixel centres
   (``shrink_ratio``; at 28 -> 14 it takes every second pixel), elsewhere it is used as it is;
2. for every position, its k = 8 nearest positions by squared L2 distance of the raw features among the
   positions of all *other* frames (the same frame is masked; the search is not differentiated);
3. each pair's feature [coordinate difference (dt, dy, dx), own feature, neighbour's feature], the
   coordinates being (t / T, y / H, x / W) of the (shrunk) map;
4. two 1x1 layers with bias, each + BN + ReLU, widths C/4 and C/2; the maximum over the k pairs;
5. a 1x1 layer back to C with bias, then a BN whose weight starts at 0;
6. back to the input's size with the same bilinear resize.

Their network adds it inside every residual block of res3 and res4, to the block's sum before its ReLU:
``relu(s + CP(s))`` with ``s = shortcut + branch`` (``STAGE:every`` positions, :class:`SumBlock`). After a
stage (SELFY's Table 7a places one after res3) the module is ``z = x + CP(x)`` on the stage's output.

Choices their code leaves open or that this toolkit adds: ``shrink`` 0 (the default) means their placement's
ratio, 2 at res3 and 1 elsewhere; SELFY's Table 7a states that its non-local and CP modules do not
downsample (``shrink=1``). ``zero_init`` is the toolkit's model option: with it off the last BN starts at 1
(their code starts it at 0). ``pair_order="own-first"`` orders the pair features [own, neighbour, difference]
(the toolkit's earlier variant, with bias-free MLP layers). Their BN epsilon (1e-3) and TensorFlow's weight
initialisation are not reproduced; PyTorch's are used.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet as tvr

from .common import last_bn


class PairwiseDistance(nn.Module):
    """Negative squared L2 distances between all positions of a clip: (B, N, C) -> (B, N, N)."""

    activation_product = True

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        sq = f.pow(2).sum(-1)
        return 2 * f @ f.transpose(1, 2) - sq[:, :, None] - sq[:, None, :]

    @staticmethod
    def macs(inputs, output) -> int:
        B, N, C = inputs[0].shape
        return B * N * N * C


def other_frame_neighbours(f: torch.Tensor, frames: int, k: int, distance: nn.Module | None = None) -> torch.Tensor:
    """Indices (B, N, k) of the k nearest positions (L2 distance of the features f, (B, N, C), N = T*H*W in
    (t, y, x) order) that lie in other frames than the query's."""
    B, N, _ = f.shape
    d = (distance or PairwiseDistance())(f)
    t = torch.arange(N, device=f.device) // (N // frames)
    d = d.masked_fill(t[:, None] == t[None, :], float("-inf"))
    return d.topk(k, dim=-1).indices


def legacy_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize without half-pixel centres (TensorFlow 1's ``resize_images``): output index j reads
    the input at j * in / out, clamped at the last pixel. (N, C, H, W) -> (N, C, *size)."""
    for dim, out in ((-2, size[0]), (-1, size[1])):
        n = x.shape[dim]
        if n == out:
            continue
        src = torch.arange(out, device=x.device, dtype=torch.float64) * (n / out)
        i0 = src.floor().long().clamp(max=n - 1)
        i1 = (i0 + 1).clamp(max=n - 1)
        w = (src - i0).to(x.dtype)
        shape = [1] * x.dim()
        shape[dim] = out
        w = w.view(shape)
        x = x.index_select(dim, i0) * (1 - w) + x.index_select(dim, i1) * w
    return x


class CorrespondenceProposal(nn.Module):
    """The CP module's output for a (B, T, C, H, W) map (see the module docstring); ``forward`` adds it."""

    # its --block-options; its other arguments are the contract's (channels, frames, stage), its widths and zero_init
    OPTIONS: tuple[str, ...] = ("shrink", "pair_order")

    def __init__(self, channels: int, *, frames: int = 8, stage: str = "res3", k: int = 8, zero_init: bool = True,
                 shrink: int = 0, pair_order: str = "difference-first"):
        super().__init__()
        if pair_order not in ("difference-first", "own-first"):
            raise ValueError(f"pair_order must be difference-first or own-first, got {pair_order!r}")
        self.k, self.pair_order = k, pair_order
        self.shrink = shrink or (2 if stage == "res3" else 1)
        c1, c2 = max(4, channels // 4), max(4, channels // 2)
        bias = pair_order == "difference-first"
        self.distance = PairwiseDistance()
        self.mlp = nn.Sequential(nn.Linear(2 * channels + 3, c1, bias=bias), nn.BatchNorm1d(c1), nn.ReLU(inplace=True),
                                 nn.Linear(c1, c2, bias=bias), nn.BatchNorm1d(c2), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(c2, channels, 1, bias=bias)
        self.bn = last_bn(channels, zero_init)

    def proposal(self, x: torch.Tensor) -> torch.Tensor:
        """CP(x) alone: (B, T, C, H, W) -> same."""
        B, T, C, H0, W0 = x.shape
        if self.shrink > 1:
            x = legacy_resize(x.flatten(0, 1), (max(1, H0 // self.shrink), max(1, W0 // self.shrink)))
            x = x.view(B, T, C, *x.shape[-2:])
        H, W = x.shape[-2:]
        N, k = T * H * W, min(self.k, (T - 1) * H * W)
        f = x.permute(0, 1, 3, 4, 2).reshape(B, N, C)  # (B, N, C) in (t, y, x) order
        idx = other_frame_neighbours(f.detach(), T, k, self.distance)  # (B, N, k)
        nb = torch.gather(f, 1, idx.reshape(B, N * k, 1).expand(-1, -1, C)).view(B, N, k, C)
        axes = [torch.arange(n, device=x.device, dtype=x.dtype) / n for n in (T, H, W)]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(N, 3)
        disp = grid[idx] - grid[None, :, None]  # (B, N, k, 3): neighbour minus own
        own = f[:, :, None].expand(-1, -1, k, -1)
        parts = [disp, own, nb] if self.pair_order == "difference-first" else [own, nb, disp]
        g = self.mlp(torch.cat(parts, dim=-1).reshape(B * N * k, -1)).view(B, N, k, -1).amax(2)  # (B, N, C2)
        g = g.view(B, T, H, W, -1).permute(0, 1, 4, 2, 3).flatten(0, 1)  # (B*T, C2, H, W)
        y = self.bn(self.out(g))
        if (H, W) != (H0, W0):
            y = legacy_resize(y, (H0, W0))
        return y.view(B, T, C, H0, W0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proposal(x)


class SumBlock:
    """Turns a torchvision residual block into one that runs a module on its sum before the last ReLU,
    ``relu(module(s))`` with ``s = shortcut + branch``; a CP module returns ``s + CP(s)`` (CPNet's placement). The block keeps its
    class's parameters and names; the module is referenced outside the module tree (``SELFYNet.blocks`` owns
    it), as :class:`selfy_lab.models.net.BranchConv2d` does."""

    @staticmethod
    def wrap(block: nn.Module, module: nn.Module, frames: int) -> nn.Module:
        kind = {tvr.BasicBlock: _SumBasicBlock, tvr.Bottleneck: _SumBottleneck}.get(type(block))
        if kind is None:
            raise ValueError(f"cannot add a module to the sum of a {type(block).__name__}")
        block.__class__ = kind
        block.frames = frames
        object.__setattr__(block, "motion", module)
        return block


def _add_module(block: nn.Module, s: torch.Tensor) -> torch.Tensor:
    BT, C, H, W = s.shape
    return F.relu(block.motion(s.view(BT // block.frames, block.frames, C, H, W)).flatten(0, 1))


class _SumBasicBlock(tvr.BasicBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return _add_module(self, out + (x if self.downsample is None else self.downsample(x)))


class _SumBottleneck(tvr.Bottleneck):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        out = self.bn3(self.conv3(out))
        return _add_module(self, out + (x if self.downsample is None else self.downsample(x)))
