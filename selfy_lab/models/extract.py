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

from ..config.vocabulary import EXTRACTORS
from ..core.runtime import device_constant
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


def soft_argmax(s: torch.Tensor, tau: float = 0.01) -> torch.Tensor:
    """Soft-argmax displacement (Eq. 2): [E u; E v] under softmax(S / tau) over the U x V window of
    similarities ``s`` (..., U, V) -> (..., 2), (u, v) in window cells from its centre."""
    U, V = s.shape[-2:]
    p = torch.softmax(upcast(s).flatten(-2) / tau, dim=-1).unflatten(-1, (U, V))
    return _expected_displacement(p).to(s.dtype)


def soft_argmax_flow(S, tau: float = 0.05):
    """Soft-argmax displacement (Eq. 2) of one clip's STSS as a numpy array (T, L, U, V, h, w): (T, L, 2, h, w),
    (du, dv) in window cells, for drawing it as flow."""
    s = torch.from_numpy(S).float().permute(0, 1, 4, 5, 2, 3)  # (T, L, h, w, U, V)
    return soft_argmax(s, tau).permute(0, 1, 4, 2, 3).numpy()  # (T, L, h, w, 2) -> (T, L, 2, h, w)


class SoftArgmax(nn.Module):
    """Soft-argmax extraction: (N, L, U, V) -> (N, L, 2)."""

    def __init__(self, window: tuple[int, int], tau: float = 0.01):
        super().__init__()
        self.window, self.tau = window, tau
        self.out_channels = 2

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return soft_argmax(s, self.tau)


class KernelSoftArgmaxConfidence(nn.Module):
    """MotionSqueeze's KS + CM: Gaussian around the arg-max, soft-argmax, plus the max similarity.

    The Gaussian's sigma is a third of the window side (MotionSqueeze: 5 on a 15x15 patch); the
    displacement is divided by the window radius as in MotionSqueeze.
    """

    def __init__(self, window: tuple[int, int], *, tau: float = 0.01, sigma: float | None = None):
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
        disp = _expected_displacement(p) / device_constant((max(U // 2, 1), max(V // 2, 1)), s.device, p.dtype)
        return torch.cat([disp, conf[..., None]], dim=-1).to(s.dtype)  # (N, L, 3)


def _grid(U: int, V: int, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.arange(-(U // 2), U // 2 + 1, device=device, dtype=dtype).view(U, 1).expand(U, V)
    v = torch.arange(-(V // 2), V // 2 + 1, device=device, dtype=dtype).view(1, V).expand(U, V)
    return u, v


def _expected_displacement(p: torch.Tensor) -> torch.Tensor:
    U, V = p.shape[-2:]
    u, v = _grid(U, V, p.device, p.dtype)
    return torch.stack([(p * u).sum((-2, -1)), (p * v).sum((-2, -1))], dim=-1)  # (..., U, V) -> (..., 2)


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
    peak on CPUs, so each layer runs in the formulation and memory layout measured fastest for its
    shape (see ``selfy-lab bench``); all are exact re-expressions of the same layers:

    * ``dense``: one matrix product with the layer's (C_in*u*v x C_out*u'*v') matrix, built from its
      kernel. Used for the single-input-channel first layer, for layers whose dense form costs at most
      1.5x the convolution's MACs, and for layers with <= 4 output channels (where convolutions are
      slowest). Outputs with <= 4 channels are NCHW (where their BatchNorm is faster), others
      channels-last.
    * ``conv``: a channels-last convolution.
    * ``linear``: the last layer, whose kernel covers the whole remaining map.

    Channels-last outputs run BatchNorm on the free (maps * positions, C) view.
    """

    DENSE_MAX_TAPS = 144  # a dense first layer multiplies U*V x U*V*C0
    DENSE_FREE_EXPANSION = 1.5  # dense whenever it costs at most this many times the convolution
    DENSE_SMALL_EXPANSION = 12  # ... and up to this for layers with <= 4 output channels

    def __init__(self, window: tuple[int, int], channels=DEFAULT_CHANNELS):
        super().__init__()
        self.window = window
        self.plan = list(zip(conv_plan(window[0]), conv_plan(window[1])))
        cins = (1, *channels[:-1])
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        self.modes = []
        su, sv = window
        for i, (cin, cout, (pu, pv)) in enumerate(zip(cins, channels, self.plan)):
            self.convs.append(nn.Conv2d(cin, cout, (pu[0], pv[0]), (pu[1], pv[1]), (pu[2], pv[2]), bias=False))
            self.bns.append(nn.BatchNorm2d(cout))
            ou, ov = _out_size(su, *pu), _out_size(sv, *pv)
            expansion = (cin * su * sv * cout * ou * ov) / (cin * cout * pu[0] * pv[0] * ou * ov)
            if i == 3:
                self.modes.append("linear")
            elif (i == 0 and su * sv <= self.DENSE_MAX_TAPS) or (i > 0 and (
                    expansion <= self.DENSE_FREE_EXPANSION or (cout <= 4 and expansion <= self.DENSE_SMALL_EXPANSION))):
                self.modes.append("dense")
            else:
                self.modes.append("conv")
            su, sv = ou, ov
        self.out_channels = channels[-1]

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        N, L, U, V = s.shape
        M = N * L
        x, cl = s.reshape(M, 1, U, V), False  # (maps, C, u, v); cl: stored channels-last
        for conv, bn, mode in zip(self.convs, self.bns, self.modes):
            cin, u, v = x.shape[1:]
            if mode == "linear":  # flatten in memory order; the kernel is permuted to match
                flat = x.permute(0, 2, 3, 1).reshape(M, -1) if cl else x.reshape(M, -1)
                w = conv.weight.permute(0, 2, 3, 1) if cl else conv.weight
                x = F.relu(_bn(bn, flat @ w.reshape(conv.out_channels, -1).t().to(flat.dtype)), inplace=True)
                break
            if mode == "dense":
                out_cl = conv.out_channels > 4
                flat = x.permute(0, 2, 3, 1).reshape(M, -1) if cl else x.reshape(M, -1)
                ou, ov = conv_out(conv, u, v)
                y = flat @ dense_matrix(conv, cin, u, v, cl, out_cl).to(flat.dtype)  # (M, C_out*u'*v')
                y = y.view(M, ou, ov, -1).permute(0, 3, 1, 2) if out_cl else y.view(M, -1, ou, ov)
                cl = out_cl
            else:
                y = conv(x.contiguous(memory_format=torch.channels_last) if not cl else x)
                cl = True
            if cl:  # BatchNorm on the (maps * positions, C) view of channels-last storage
                C, ou, ov = y.shape[1:]
                y2 = F.relu(_bn(bn, y.permute(0, 2, 3, 1).reshape(-1, C)), inplace=True)
                x = y2.view(M, ou, ov, C).permute(0, 3, 1, 2)
            else:
                x = F.relu(_bn(bn, y), inplace=True)
        return x.view(N, L, -1)

    def macs(self, inputs, output) -> int:
        """Multiply-accumulates of the convolutions themselves (not of the dense re-expressions)."""
        N, L = inputs[0].shape[:2]
        return N * L * _stack_macs(self.convs, self.plan, self.window)


def dense_matrix(conv: nn.Conv2d, cin: int, u: int, v: int, in_cl: bool, out_cl: bool) -> torch.Tensor:
    """The layer as a matrix: row j is its response to the j-th one-hot input, with inputs and outputs
    flattened in NCHW (c, u, v) or channels-last (u, v, c) order."""
    eye = torch.eye(cin * u * v, device=conv.weight.device, dtype=conv.weight.dtype)
    basis = eye.view(-1, u, v, cin).permute(0, 3, 1, 2) if in_cl else eye.view(-1, cin, u, v)
    out = conv(basis)  # (cin*u*v, C_out, u', v')
    return (out.permute(0, 2, 3, 1) if out_cl else out).reshape(cin * u * v, -1)


def conv_out(conv: nn.Conv2d, u: int, v: int) -> tuple[int, int]:
    return (_out_size(u, conv.kernel_size[0], conv.stride[0], conv.padding[0]),
            _out_size(v, conv.kernel_size[1], conv.stride[1], conv.padding[1]))


def _bn(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """The module's BatchNorm on any view with channels in dim 1 ((N, C) or (N, C, H, W))."""
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                        bn.training or not bn.track_running_stats, bn.momentum, bn.eps)


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


def build_extractor(name: str, *, window: tuple[int, int], channels=DEFAULT_CHANNELS) -> nn.Module:
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
