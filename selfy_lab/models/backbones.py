"""TSN / TSM ResNets on torchvision's ResNet (the layers are torchvision's; nothing is rewritten).

* TSN: the 2-D ResNet applied to every frame of (B*T, C, H, W); consensus happens in the head.
* TSM: additionally a residual temporal shift (Lin et al., 2019) at the start of every residual
  branch: 1/8 of the channels move one frame back, 1/8 one frame forward, zero-padded at the ends.
  It is done by :class:`ShiftConv2d`, a ``Conv2d`` that shifts its input, so the parameter names
  stay torchvision's and torchvision state dicts load strictly.
* Narrow variants (``-wN``) build the same ResNet through torchvision's ``_make_layer`` with stage
  widths N, 2N, 4N, 8N, for CPU presets.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.models import resnet as tvr

ARCHS = {18: (tvr.BasicBlock, [2, 2, 2, 2]), 34: (tvr.BasicBlock, [3, 4, 6, 3]), 50: (tvr.Bottleneck, [3, 4, 6, 3])}
# the paper's stage names -> torchvision's ResNet attributes (pool1 is the stem's output, after maxpool)
STAGES = {"res2": "layer1", "res3": "layer2", "res4": "layer3", "res5": "layer4"}


def stage_sizes(size: int) -> dict[str, int]:
    """Side of each insertion point's feature map for a ``size`` x ``size`` input (the stem: 7x7 conv stride 2
    and 3x3 max-pool stride 2; every later stage halves the side with a padded 3x3 stride-2 convolution)."""
    out = {"pool1": _halve(_halve(size, 7, 3), 3, 1)}
    side = out["res2"] = out["pool1"]
    for name in ("res3", "res4", "res5"):
        side = out[name] = _halve(side, 3, 1)
    return out


def _halve(side: int, k: int, p: int) -> int:
    return (side + 2 * p - k) // 2 + 1


def stages(net: tvr.ResNet) -> dict[str, nn.Sequential]:
    """The residual stages of ``net`` by the paper's names, in network order."""
    return {name: getattr(net, attr) for name, attr in STAGES.items()}


def temporal_shift(x: torch.Tensor, frames: int, fold_div: int = 8) -> torch.Tensor:
    """Shift 1/fold_div of the channels one frame each way with zero padding. (B*T, C, H, W) -> same."""
    BT, C, H, W = x.shape
    x5 = x.view(BT // frames, frames, C, H, W)
    fold = C // fold_div
    out = torch.zeros_like(x5)
    out[:, :-1, :fold] = x5[:, 1:, :fold]  # frame t sees frame t+1
    out[:, 1:, fold : 2 * fold] = x5[:, :-1, fold : 2 * fold]  # frame t sees frame t-1
    out[:, :, 2 * fold :] = x5[:, :, 2 * fold :]
    return out.view(BT, C, H, W)


class ShiftConv2d(nn.Conv2d):
    """A Conv2d whose input is temporally shifted first; same parameters as the conv it replaces."""

    frames: int = 8
    fold_div: int = 8

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, frames: int, fold_div: int = 8) -> "ShiftConv2d":
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                  conv.dilation, conv.groups, conv.bias is not None, device=conv.weight.device)
        new.weight = conv.weight
        new.bias = conv.bias
        new.frames, new.fold_div = frames, fold_div
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(temporal_shift(x, self.frames, self.fold_div))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", temporal_shift(frames={self.frames}, fold_div={self.fold_div})"


class NarrowResNet(tvr.ResNet):
    """torchvision's ResNet with stage widths (w, 2w, 4w, 8w), built by its own ``_make_layer``."""

    def __init__(self, block, layers: list[int], *, width: int = 16, num_classes: int = 1000):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


class BlockInputShift:
    """A forward pre-hook that shifts a residual block's input, for both its branch and its shortcut (TSM's
    "in-place" shift, which its paper compares with the residual one)."""

    def __init__(self, frames: int, fold_div: int):
        self.frames, self.fold_div = frames, fold_div

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        return (temporal_shift(args[0], self.frames, self.fold_div), *args[1:])


def build_resnet(depth: int, *, width: int = 64, tsm: bool = False, frames: int = 8, shift_div: int = 8,
                 shift_place: str = "residual") -> tvr.ResNet:
    """A torchvision ResNet-{18,34,50} (narrow when width != 64), TSM-shifted when ``tsm``: 1/``shift_div`` of
    the channels each way, at the start of every residual branch (``residual``, TSM's default) or on every
    block's input (``inplace``)."""
    if depth not in ARCHS:
        raise ValueError(f"ResNet depth must be one of {sorted(ARCHS)}, got {depth}")
    block, layers = ARCHS[depth]
    net = tvr.ResNet(block, layers) if width == 64 else NarrowResNet(block, layers, width=width)
    if tsm:
        for stage in stages(net).values():
            for blk in stage:
                if shift_place == "residual":
                    blk.conv1 = ShiftConv2d.from_conv(blk.conv1, frames, shift_div)
                else:
                    blk.register_forward_pre_hook(BlockInputShift(frames, shift_div))
    return net


def stage_channels(net: tvr.ResNet) -> dict[str, int]:
    """Channels of the feature map after each insertion point."""
    exp = net.layer1[0].expansion  # planes = conv1's output channels in both block types
    return {"pool1": net.conv1.out_channels, **{k: s[0].conv1.out_channels * exp for k, s in stages(net).items()}}
