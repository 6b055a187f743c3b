"""MotionSqueeze (Kwon et al., ECCV 2020), as its authors' code computes it.

Follows arunos728/MotionSqueeze, ``resnet_TSM.py``: the channel reduction built in ``ResNet.__init__``
(``chnl_reduction``), ``Matching_layer_scs`` / ``Matching_layer_mm`` (correlation), ``match_to_flow_soft``
with ``apply_gaussian_kernel`` (flow), ``Flow_refinement`` (feature lifting), ``flow_computation`` and the
forward pass after ``layer2``. Their training scripts call it with temperature 100 (a softmax over the
similarities divided by 0.01).

The function, (B, T, C, H, W) -> same:

1. ``reduce``: 1x1 convolution (no bias) to C/2 channels, BN, ReLU (their 128 -> 64 at ResNet-18's res3,
   the only network their code builds with the module); both frames of a pair share it.
2. correlation of frame t with frame t+1: L2-normalised channels (eps 1e-6 inside the root), a 15 x 15 window
   of displacements, zeros outside the map, then a ReLU.
3. flow: the arg-max displacement, a Gaussian (sigma 5 displacement steps) around it multiplies the
   similarities, softmax at temperature 0.01 over all 225 displacements, the expected displacement divided by
   the window's radius (7), channels ordered (x, y); the confidence is the maximum of the ReLU'd correlation.
   Frame T-1 has no next frame and repeats the (T-2, T-1) flow.
4. ``lift``: four depthwise-separable stages 3 -> C/8 -> C/4 -> C/2 -> C (their 16-32-64-128 at C = 128), the
   first depthwise kernel 7x7 and the others 3x3, each depthwise and each pointwise convolution followed by
   BN and ReLU, no biases.
5. z = x + lift(...): the motion features, non-negative after the last ReLU, added to the features.

Choices their code leaves open or that this toolkit adds: the reduced width is C/2 so the module scales
with narrow backbones (``reduce_ratio``; 0 skips the reduction, the correlation then runs on x itself);
``zero_init`` (the toolkit's model option, default on) starts the last BN at weight 0 so the module is an
identity at init - their code starts every BN at 1 (``zero_init=False`` is theirs); the Gaussian's arg-max is
a hard index (no gradient through it), as theirs. ``correlation_relu=False`` drops the ReLU on the
correlation, ``flow_order="yx"`` orders the flow channels (dy, dx), ``lift="light"`` uses 3x3 depthwise
kernels without the BN + ReLU after them (the toolkit's earlier variant).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..extract import KernelSoftArgmaxConfidence
from ..layers import conv_bn_relu
from ..selfsim import stss_macs, stss_volumes
from .common import last_bn


class NextFrameCorrelation(nn.Module):
    """Cosine similarity of every position with a U x V window of the next frame (zeros outside the map):
    (B, T, C, H, W) -> (B, T, H, W, 1, U, V); frame T-1 has no next frame and takes frame T-2's."""

    def __init__(self, window: tuple[int, int]):
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = stss_volumes(x, (1,), self.window, "cosine")
        return torch.cat([s[:, :-1], s[:, -2:-1]], dim=1) if x.shape[1] > 1 else s

    def macs(self, inputs, output) -> int:
        B, T, C, H, W = inputs[0].shape
        return stss_macs(B, T, C, H, W, 1, *self.window)


def _lift(widths: list[int], first_kernel: int, full: bool, zero_init: bool) -> nn.Sequential:
    """Depthwise-separable stages widths[0] -> ... -> widths[-1]; ``full``: BN + ReLU after every convolution."""
    layers: list[nn.Module] = []
    last = len(widths) - 2
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        k = first_kernel if i == 0 else 3
        layers.append(nn.Conv2d(a, a, k, 1, k // 2, groups=a, bias=False))
        if full:
            layers += [nn.BatchNorm2d(a), nn.ReLU()]
        layers.append(nn.Conv2d(a, b, 1, bias=False))
        if i < last:
            layers += [nn.BatchNorm2d(b), nn.ReLU()]
        else:
            layers += [last_bn(b, zero_init), nn.ReLU()] if full else [last_bn(b, zero_init)]
    return nn.Sequential(*layers)


class MotionSqueeze(nn.Module):
    """The MS module: z = x + lift(flow and confidence of x's correlation with the next frame)."""

    # its --block-options; its other arguments are the contract's (channels, frames, stage), its widths and zero_init
    OPTIONS: tuple[str, ...] = ("reduce_ratio", "correlation_relu", "flow_order", "lift")

    def __init__(self, channels: int, *, frames: int = 8, stage: str = "res3", window: tuple[int, int] = (15, 15),
                 zero_init: bool = True, reduce_ratio: int = 2, correlation_relu: bool = True, flow_order: str = "xy",
                 lift: str = "full"):
        super().__init__()
        if flow_order not in ("xy", "yx"):
            raise ValueError(f"flow_order must be xy or yx, got {flow_order!r}")
        if lift not in ("full", "light"):
            raise ValueError(f"lift must be full or light, got {lift!r}")
        self.reduce = conv_bn_relu(channels, max(4, channels // reduce_ratio), 1) if reduce_ratio else nn.Identity()
        self.correlate = NextFrameCorrelation(window)
        self.relu = nn.ReLU() if correlation_relu else nn.Identity()
        self.squeeze = KernelSoftArgmaxConfidence(window, tau=0.01, sigma=window[0] / 3.0)
        self.flow_order = flow_order
        widths = [3, max(4, channels // 8), max(4, channels // 4), max(4, channels // 2), channels]
        self.lift = _lift(widths, 7 if lift == "full" else 3, lift == "full", zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        r = self.reduce(x.flatten(0, 1)).view(B, T, -1, H, W)
        s = self.relu(self.correlate(r))  # (B, T, H, W, 1, U, V)
        m = self.squeeze(s.flatten(0, 3))  # (B*T*H*W, 1, 3): (dy, dx, confidence)
        if self.flow_order == "xy":
            m = m[..., [1, 0, 2]]
        m = m.reshape(B * T, H, W, 3).permute(0, 3, 1, 2).contiguous()  # (B*T, 3, H, W)
        return x + self.lift(m).view(B, T, C, H, W)
