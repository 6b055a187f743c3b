"""Feature extraction F: STSS volumes (N, L, U, V) -> features (N, L, C_F), Sec. 3.2.1.

N = B*T*H*W query positions. Every extractor keeps the temporal-offset axis L.

* ``smax``   soft-argmax displacement (Eq. 2), tau = 0.01 -> C_F = 2
* ``kscm``   MotionSqueeze's kernel soft-argmax + confidence map -> C_F = 3
* ``mlp``    four FC layers on the flattened U*V similarities (Eq. 3-4)
* ``conv``   four 1x3x3 convolutions over (U, V) (Eq. 5-6), the default
* ``conv3d`` four 3x3x3 convolutions over (L, U, V) (Table 7c)
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import EXTRACTORS
from .selfsim import upcast

DEFAULT_CHANNELS = (4, 16, 64, 64)


def conv_plan(size: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of the four extraction layers along one window side.

    The reference stack for 9 is 9 -> 9 -> 5 -> 3 -> 1: strides 1, 2, 2 and a last unpadded 3x3.
    For other sizes a stride-2 layer is kept only while its output stays >= 3, and the last layer's
    kernel covers whatever remains, so every odd window reduces to 1 (5 -> 5 -> 3 -> 3 -> 1,
    13 -> 13 -> 7 -> 4 -> 1, 17 -> 17 -> 9 -> 5 -> 1).
    """
    plan = [(3, 1, 1)]
    s = size
    for _ in range(2):
        halved = (s - 1) // 2 + 1
        stride = 2 if halved >= 3 else 1
        plan.append((3, stride, 1))
        s = halved if stride == 2 else s
    plan.append((s, 1, 0))
    return plan


def _out_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


class SoftArgmax(nn.Module):
    """Soft-argmax displacement [E u; E v] under softmax(S / tau) over the window (Eq. 2)."""

    def __init__(self, window: tuple[int, int], tau: float = 0.01):
        super().__init__()
        self.window, self.tau = window, tau
        self.out_channels = 2

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        N, L, U, V = s.shape
        p = torch.softmax(upcast(s).reshape(N, L, U * V) / self.tau, dim=-1).view(N, L, U, V)
        return _expected_displacement(p).to(s.dtype)  # (N, L, 2)


class KernelSoftArgmaxConfidence(nn.Module):
    """MotionSqueeze's KS + CM: Gaussian around the arg-max, soft-argmax, plus the max similarity.

    The Gaussian's sigma is a third of the window side (MotionSqueeze: 5 on a 15x15 patch); the
    displacement is divided by the window radius as in MotionSqueeze.
    """

    def __init__(self, window: tuple[int, int], tau: float = 0.01, sigma: float | None = None):
        super().__init__()
        self.window, self.tau = window, tau
        self.sigma = sigma if sigma is not None else window[0] / 3.0
        self.out_channels = 3

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        N, L, U, V = s.shape
        sf = upcast(s)
        flat = sf.reshape(N, L, U * V)
        conf, arg = flat.max(dim=-1)  # (N, L)
        au = torch.div(arg, V, rounding_mode="floor").to(sf.dtype) - U // 2
        av = (arg % V).to(sf.dtype) - V // 2
        u, v = _grid(U, V, s.device, sf.dtype)
        gauss = torch.exp(-((u - au[..., None, None]) ** 2 + (v - av[..., None, None]) ** 2) / (2 * self.sigma**2))
        p = torch.softmax((sf * gauss).reshape(N, L, U * V) / self.tau, dim=-1).view(N, L, U, V)
        disp = _expected_displacement(p) / torch.tensor([max(U // 2, 1), max(V // 2, 1)], device=s.device, dtype=p.dtype)
        return torch.cat([disp, conf[..., None]], dim=-1).to(s.dtype)  # (N, L, 3)


def _grid(U: int, V: int, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.arange(-(U // 2), U // 2 + 1, device=device, dtype=dtype).view(U, 1).expand(U, V)
    v = torch.arange(-(V // 2), V // 2 + 1, device=device, dtype=dtype).view(1, V).expand(U, V)
    return u, v


def _expected_displacement(p: torch.Tensor) -> torch.Tensor:
    U, V = p.shape[-2:]
    u, v = _grid(U, V, p.device, p.dtype)
    return torch.stack([(p * u).sum((-2, -1)), (p * v).sum((-2, -1))], dim=-1)  # (N, L, 2)


class MLPExtractor(nn.Module):
    """Four FC + BN + ReLU layers on the U*V similarities of each (position, offset)."""

    def __init__(self, window: tuple[int, int], widths=(64, 64, 64, 64)):
        super().__init__()
        dims = [window[0] * window[1], *widths]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)
        self.out_channels = dims[-1]

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        N, L, U, V = s.shape
        return self.net(s.reshape(N * L, U * V)).view(N, L, -1)  # (N, L, C_F)


class ConvExtractor(nn.Module):
    """Four 1x3x3 conv + BN + ReLU layers that reduce each (U, V) map to 1x1 with C_F channels.

    Computed per (position, offset) map, so it equals the reference Conv3d with kernel (1, 3, 3). The
    maps are tiny (9x9) and many (B*T*H*W*L), where direct convolutions and BatchNorm run far below
    peak on CPUs, so each layer uses the formulation and memory layout measured fastest
    (``selfy-lab bench``); all are exact re-expressions of the same layers:

    * layer 0 (one input channel) is one dense matrix product built from its kernel, NCHW output
      (BatchNorm over 4 channels is ~4x faster in NCHW than channels-last);
    * layers 1-2 are convolutions on channels-last maps; layer 2's BatchNorm runs on the
      (maps * positions, C) view;
    * layer 3, whose kernel covers the whole remaining map, is a linear layer.
    """

    # a dense first layer multiplies U*V x U*V*C0; past this many taps the redundancy costs more
    DENSE_MAX_TAPS = 144

    def __init__(self, window: tuple[int, int], channels=DEFAULT_CHANNELS):
        super().__init__()
        self.window = window
        plan_u, plan_v = conv_plan(window[0]), conv_plan(window[1])
        self.plan = list(zip(plan_u, plan_v))
        cins = (1, *channels[:-1])
        self.convs = nn.ModuleList()
        for cin, cout, (pu, pv) in zip(cins, channels, self.plan):
            self.convs.append(nn.Conv2d(cin, cout, (pu[0], pv[0]), (pu[1], pv[1]), (pu[2], pv[2]), bias=False))
        c = channels
        self.bns = nn.ModuleList([nn.BatchNorm2d(c[0]), nn.BatchNorm2d(c[1]), nn.BatchNorm1d(c[2]), nn.BatchNorm1d(c[3])])
        self.out_channels = channels[-1]
        self.dense_first = window[0] * window[1] <= self.DENSE_MAX_TAPS

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        N, L, U, V = s.shape
        M = N * L
        c0, c1, c2, c3 = self.convs
        if self.dense_first:
            # row j of D is layer 0's response to the j-th one-hot map, flattened (c, u, v)
            eye = torch.eye(U * V, device=s.device, dtype=c0.weight.dtype).view(U * V, 1, U, V)
            D = c0(eye).reshape(U * V, -1)  # (UV, C0*U*V)
            x = (s.reshape(M, U * V) @ D.to(s.dtype)).view(M, -1, U, V)  # (M, C0, U, V) NCHW
        else:
            x = c0(s.reshape(M, 1, U, V))
        x = F.relu(self.bns[0](x), inplace=True).contiguous(memory_format=torch.channels_last)
        x = F.relu(self.bns[1](c1(x)), inplace=True)  # (M, C1, u1, v1) channels-last
        x = c2(x)  # (M, C2, u2, v2) channels-last
        u2, v2 = x.shape[-2:]
        x = x.permute(0, 2, 3, 1).reshape(M * u2 * v2, -1)  # free view: (maps * positions, C2)
        x = F.relu(self.bns[2](x), inplace=True).view(M, -1)  # (M, u2*v2*C2) in (u, v, c) order
        w = c3.weight.permute(0, 2, 3, 1).reshape(c3.out_channels, -1)  # same (u, v, c) order
        x = F.relu(self.bns[3](x @ w.t().to(x.dtype)), inplace=True)  # (M, C_F)
        return x.view(N, L, -1)

    def macs(self, inputs, output) -> int:
        """Multiply-accumulates of the convolutions themselves (not of the dense re-expression)."""
        N, L = inputs[0].shape[:2]
        return N * L * _stack_macs(self.convs, self.plan, self.window)


class Conv3dExtractor(nn.Module):
    """Four 3x3x3 conv + BN + ReLU layers over (L, U, V); L is padded so it is kept (Table 7c)."""

    def __init__(self, window: tuple[int, int], channels=DEFAULT_CHANNELS):
        super().__init__()
        self.window = window
        self.plan = list(zip(conv_plan(window[0]), conv_plan(window[1])))
        cins = (1, *channels[:-1])
        layers: list[nn.Module] = []
        for cin, cout, (pu, pv) in zip(cins, channels, self.plan):
            layers += [
                nn.Conv3d(cin, cout, (3, pu[0], pv[0]), (1, pu[1], pv[1]), (1, pu[2], pv[2]), bias=False),
                nn.BatchNorm3d(cout),
                nn.ReLU(inplace=True),
            ]
        self.net = nn.Sequential(*layers)
        self.out_channels = channels[-1]

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        N, L, U, V = s.shape
        x = self.net(s.unsqueeze(1))  # (N, 1, L, U, V) -> (N, C_F, L, 1, 1)
        return x.view(N, -1, L).transpose(1, 2)  # (N, L, C_F)


def _stack_macs(convs, plan, window) -> int:
    su, sv = window
    total = 0
    for conv, (pu, pv) in zip(convs, plan):
        su, sv = _out_size(su, *pu), _out_size(sv, *pv)
        k = conv.kernel_size[0] * conv.kernel_size[1]
        total += su * sv * conv.in_channels * conv.out_channels * k
    return total


def build_extractor(name: str, window: tuple[int, int], channels=DEFAULT_CHANNELS) -> nn.Module:
    if name == "smax":
        return SoftArgmax(window)
    if name == "kscm":
        return KernelSoftArgmaxConfidence(window)
    if name == "mlp":
        return MLPExtractor(window, widths=(channels[-1],) * 4)
    if name == "conv":
        return ConvExtractor(window, channels)
    if name == "conv3d":
        return Conv3dExtractor(window, channels)
    raise ValueError(f"unknown extractor '{name}': choose from {', '.join(EXTRACTORS)}")
