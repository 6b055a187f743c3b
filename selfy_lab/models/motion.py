"""The field's other motion modules, built to be inserted where a SELFY block goes.

Every module maps a clip's feature map (B, T, C, H, W) to the same shape and is residual: its last
BatchNorm (or, for TEA's excitation, its last convolution) starts at zero, so an inserted module is an
identity at initialisation, as a SELFY block is; ``zero_init=False`` (the model option that SELFY blocks
share) starts it like every other layer. Hidden widths are ratios of C, so they scale with narrow
backbones as SELFY's widths do. Each class states the choices its paper leaves open.

* ``nonlocal``: :class:`NonLocal`, embedded Gaussian non-local block (Wang et al., CVPR 2018)
* ``ms``: :class:`MotionSqueeze`, the MS module (Kwon et al., ECCV 2020)
* ``tea``: :class:`MotionExcitation`, TEA's motion excitation (Li et al., CVPR 2020)
* ``tam``: :class:`TemporalAdaptive`, TANet's temporal adaptive module (Liu et al., ICCV 2021)
* ``stm``: :class:`STMBlock`, STM's CSTM + CMM block (Jiang et al., ICCV 2019)
* ``cost-a`` / ``cost-b``: :class:`CoSTBlock`, CoST's collaborative convolution (Li et al., CVPR 2019)
* ``cp``: :class:`CorrespondenceProposal`, CPNet's CP module (Liu et al., CVPR 2019)

Not here: TDN's short-term difference module (Wang et al., CVPR 2021). It does not see a feature map: for
each sampled frame it takes the RGB differences of the few consecutive frames around it (TDN samples a
5-frame window per segment), encodes them with its own small stem and adds the result to the backbone's stem
features. A single-position insertion receives one frame per segment, T = 8 frames spread over the whole
clip, so the "short-term" differences it could form are those between sampled frames, seconds apart on
Something-Something: TDN's long-term module, not the short-term one. Building it faithfully means a loader
that decodes a window around every sampled frame and a second stem, not a ``--block``.

``STAGE:every`` positions (``res3:every``) put one module inside every residual block of a stage, before its
second convolution (:class:`selfy_lab.models.net.BranchConv2d`), as STM, TEA and TANet place theirs.

Operations that are not a convolution or a linear layer (attention products, correlations, the adaptive
temporal kernels) run inside small modules with a ``macs`` method, so ``selfy-lab flops`` counts them.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import MOTION_BLOCKS
from .extract import KernelSoftArgmaxConfidence
from .selfsim import stss_macs, stss_volumes
from .selfy import _cbr


def _last_bn(c: int, zero_init: bool = True) -> nn.BatchNorm2d:
    """A module's last BatchNorm: weight 0 (the module starts as an identity) or, with ``zero_init=False``,
    1 like every other BN (the choice the quick preset makes for SELFY blocks trained from scratch)."""
    bn = nn.BatchNorm2d(c)
    if zero_init:
        nn.init.zeros_(bn.weight)
    return bn


class Attention(nn.Module):
    """softmax(q k^T) v over all positions: (B, N, Cq), (B, M, Cq), (B, M, Cv) -> (B, N, Cv)."""

    activation_product = True  # both products multiply two activations (see flops.count_macs)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v

    @staticmethod
    def macs(inputs, output) -> int:
        q, k, v = inputs
        return q.shape[0] * q.shape[1] * k.shape[1] * (q.shape[2] + v.shape[2])


class NonLocal(nn.Module):
    """Embedded Gaussian non-local block over the T*H*W positions of a clip (Wang et al., CVPR 2018):
    z = x + BN(W_z softmax(theta(x)^T phi(x)) g(x)), the BN's weight at zero (the paper's identity init).

    Choices: theta, phi, g and W_z are 1x1x1 convolutions (run as 1x1 2-D convolutions on every frame);
    the inner width is C/2 (the paper's; ``inner`` sets another); phi and g are not subsampled (SELFY: "the
    others do not [downsample]"). SELFY's Table 7a (24.8 G for TSM-R18 with one block after res3) counts the
    two attention products twice (see ``paper.FLOPS``); in MACs throughout the block adds 5.2 G (19.8 G)."""

    def __init__(self, channels: int, inner: int | None = None, zero_init: bool = True):
        super().__init__()
        ci = inner or max(4, channels // 2)
        self.theta, self.phi, self.g = (nn.Conv2d(channels, ci, 1) for _ in range(3))
        self.attend = Attention()
        self.out = nn.Conv2d(ci, channels, 1, bias=False)
        self.bn = _last_bn(channels, zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        f = x.flatten(0, 1)

        def tokens(conv):  # (B*T, Ci, H, W) -> (B, T*H*W, Ci)
            y = conv(f)
            return y.view(B, T, -1, H * W).permute(0, 1, 3, 2).reshape(B, T * H * W, -1)

        y = self.attend(tokens(self.theta), tokens(self.phi), tokens(self.g))  # (B, N, Ci)
        y = y.view(B, T, H, W, -1).permute(0, 1, 4, 2, 3).flatten(0, 1)
        return x + self.bn(self.out(y)).view(B, T, C, H, W)


class NextFrameCorrelation(nn.Module):
    """Cosine similarity of every position with a U x V window of the next frame: (B, T, C, H, W) ->
    (B, T, H, W, 1, U, V); frame T-1 has no next frame and takes frame T-2's correlation."""

    def __init__(self, window: tuple[int, int]):
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = stss_volumes(x, (1,), self.window, "cosine")
        return torch.cat([s[:, :-1], s[:, -2:-1]], dim=1) if x.shape[1] > 1 else s

    def macs(self, inputs, output) -> int:
        B, T, C, H, W = inputs[0].shape
        return stss_macs(B, T, C, H, W, 1, *self.window)


class MotionSqueeze(nn.Module):
    """MotionSqueeze module (Kwon et al., ECCV 2020): correlation of each frame with the next one over a
    15 x 15 window of displacements, kernel soft-argmax (softmax at temperature 0.01 of the similarities
    under a Gaussian of sigma 5 around the arg-max) giving a 2-D flow normalised by the window's radius, the
    top-1 similarity as a confidence map, and four depthwise-separable convolutions lifting these 3 channels
    to C, added to the features.

    Choices: the correlation runs on the block's input features at full resolution and width (no channel
    reduction); the last frame's flow repeats the one before (it has no next frame); the lift is
    3 -> C/8 -> C/4 -> C/2 -> C (MotionSqueeze's 16-32-64-C at C = 128), each depthwise 3x3 + pointwise 1x1,
    BN and ReLU except after the last BN, whose weight starts at zero (identity at init; MotionSqueeze adds
    the motion features without that).

    The same computation as a SELFY block with l in {1} and ``--extractor kscm`` (SELFY Appendix B), up to
    what follows the extraction: SELFY keeps the L x C_F features of every offset and integrates them with
    3x3 convolutions and a fusion layer on a reduced map, MotionSqueeze lifts the 3 channels of a single
    offset with per-channel convolutions at full resolution."""

    def __init__(self, channels: int, window: tuple[int, int] = (15, 15), zero_init: bool = True):
        super().__init__()
        self.correlate = NextFrameCorrelation(window)
        self.squeeze = KernelSoftArgmaxConfidence(window, tau=0.01, sigma=window[0] / 3.0)
        widths = [3, max(4, channels // 8), max(4, channels // 4), max(4, channels // 2), channels]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [nn.Conv2d(a, a, 3, 1, 1, groups=a, bias=False), nn.Conv2d(a, b, 1, bias=False)]
            layers += [nn.BatchNorm2d(b), nn.ReLU(inplace=True)] if i < 3 else [_last_bn(b, zero_init)]
        self.lift = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        s = self.correlate(x)  # (B, T, H, W, 1, U, V)
        m = self.squeeze(s.flatten(0, 3))  # (B*T*H*W, 1, 3)
        m = m.view(B * T, H, W, 3).permute(0, 3, 1, 2).contiguous()
        return x + self.lift(m).view(B, T, C, H, W)


def frame_difference(x: torch.Tensor, transform: nn.Module) -> torch.Tensor:
    """transform(x[t+1]) - x[t] for t < T-1 and zeros for the last frame: (B, T, C, H, W) -> same."""
    B, T, C, H, W = x.shape
    nxt = transform(x[:, 1:].flatten(0, 1)).view(B, T - 1, C, H, W)
    return torch.cat([nxt - x[:, :-1], torch.zeros_like(x[:, :1])], dim=1)


class MotionExcitation(nn.Module):
    """TEA's motion excitation (Li et al., CVPR 2020): a 1x1 reduction by 16, the difference between a
    depthwise 3x3 convolution of frame t+1 and frame t (zero at the last frame), global spatial pooling, a
    1x1 convolution back to C and x + x * (sigmoid(.) - 0.5).

    Choices: one module at the insertion point (TEA puts one in every bottleneck); the expanding 1x1
    convolution starts at zero, so sigmoid(0) - 0.5 = 0 and the module is an identity at init."""

    def __init__(self, channels: int, ratio: int = 16, zero_init: bool = True):
        super().__init__()
        cr = max(4, channels // ratio)
        self.reduce = nn.Sequential(nn.Conv2d(channels, cr, 1, bias=False), nn.BatchNorm2d(cr))
        self.transform = nn.Conv2d(cr, cr, 3, 1, 1, groups=cr, bias=False)
        self.expand = nn.Conv2d(cr, channels, 1)
        if zero_init:
            nn.init.zeros_(self.expand.weight)
            nn.init.zeros_(self.expand.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        r = self.reduce(x.flatten(0, 1))
        d = frame_difference(r.view(B, T, -1, H, W), self.transform)  # (B, T, Cr, H, W)
        a = torch.sigmoid(self.expand(d.mean((-2, -1)).flatten(0, 1)[..., None, None])) - 0.5
        return x + x * a.view(B, T, C, 1, 1)


class AdaptiveTemporalConv(nn.Module):
    """A depthwise temporal convolution whose kernel is given per clip and channel: x (B, C, T, H, W) and
    kernels (B, C, K) -> y[b, c, t] = sum_k kernels[b, c, k] x[b, c, t + k - K//2] (zero padding)."""

    def forward(self, x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        K = kernels.shape[-1]
        T = x.shape[2]
        pad = F.pad(x, (0, 0, 0, 0, K // 2, K // 2))
        return sum(kernels[:, :, k, None, None, None] * pad[:, :, k : k + T] for k in range(K))

    @staticmethod
    def macs(inputs, output) -> int:
        return output.numel() * inputs[1].shape[-1]


class TemporalAdaptive(nn.Module):
    """TANet's temporal adaptive module (Liu et al., ICCV 2021). From the spatially pooled (B, C, T) signal,
    a local branch (1-D conv over T, kernel 3, C -> C/4, BN, ReLU, 1-D conv C/4 -> C, sigmoid) gives a
    per-frame importance that re-weights x, and a global branch (per channel: FC T -> 2T, BN, ReLU,
    FC 2T -> 3, softmax) gives a temporal kernel of size 3 that convolves the re-weighted x along T.

    Choices: TANet puts the module inside every bottleneck; as a single insertion it is the residual
    branch z = x + BN(TAM(x)), the BN's weight at zero (identity at init); the number of frames is fixed
    at construction (the global branch's FC is T wide), as in TANet."""

    def __init__(self, channels: int, frames: int, kernel: int = 3, alpha: int = 2, beta: int = 4,
                 zero_init: bool = True):
        super().__init__()
        self.frames, self.kernel = frames, kernel
        cb = max(4, channels // beta)
        self.local = nn.Sequential(nn.Conv1d(channels, cb, 3, 1, 1, bias=False), nn.BatchNorm1d(cb),
                                   nn.ReLU(inplace=True), nn.Conv1d(cb, channels, 1, bias=False), nn.Sigmoid())
        self.globl = nn.Sequential(nn.Linear(frames, alpha * frames, bias=False), nn.BatchNorm1d(alpha * frames),
                                   nn.ReLU(inplace=True), nn.Linear(alpha * frames, kernel, bias=False),
                                   nn.Softmax(dim=-1))
        self.conv = AdaptiveTemporalConv()
        self.bn = _last_bn(channels, zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        if T != self.frames:
            raise ValueError(f"this TAM was built for {self.frames} frames, got clips of {T}")
        v = x.permute(0, 2, 1, 3, 4)  # (B, C, T, H, W)
        pooled = v.mean((-2, -1))  # (B, C, T)
        weighted = v * self.local(pooled)[..., None, None]
        kernels = self.globl(pooled.reshape(B * C, T)).view(B, C, self.kernel)
        y = self.conv(weighted, kernels).permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, C, H, W)
        return x + self.bn(y).view(B, T, C, H, W)


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

    Choices: in STM the block replaces every bottleneck of a ResNet-50; here it is one block at an insertion
    point (with an ImageNet backbone it then adds to, rather than replaces, a pretrained bottleneck);
    CSTM's temporal convolution starts as the identity (centre tap 1), as STM initialises it."""

    def __init__(self, channels: int, ratio: int = 4, cmm_ratio: int = 16, zero_init: bool = True):
        super().__init__()
        cb = max(4, channels // ratio)
        cm = max(4, cb // cmm_ratio)
        self.reduce = _cbr(channels, cb, 1)
        self.temporal = ChannelTemporalConv(cb)
        with torch.no_grad():
            self.temporal.conv.weight.zero_()
            self.temporal.conv.weight[:, 0, 1] = 1.0
        self.spatial = _cbr(cb, cb, 3)
        self.cmm_reduce = _cbr(cb, cm, 1)
        self.cmm_transform = nn.Conv2d(cm, cm, 3, 1, 1, bias=False)
        self.cmm_expand = _cbr(cm, cb, 1)
        self.expand = nn.Conv2d(cb, channels, 1, bias=False)
        self.bn = _last_bn(channels, zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        r = self.reduce(x.flatten(0, 1)).view(B, T, -1, H, W)
        cstm = self.spatial(self.temporal(r).flatten(0, 1))
        m = self.cmm_reduce(r.flatten(0, 1)).view(B, T, -1, H, W)
        cmm = self.cmm_expand(frame_difference(m, self.cmm_transform).flatten(0, 1))
        return F.relu(x + self.bn(self.expand(cstm + cmm)).view(B, T, C, H, W))


class CoSTConv(nn.Module):
    """CoST's collaborative convolution (Li et al., CVPR 2019): one 3x3 kernel applied to the three
    orthogonal views of the (T, H, W) volume, as 3-D kernels 1x3x3 (H-W), 3x1x3 (T-W) and 3x3x1 (T-H), the
    three responses summed with weights: ``variant="a"`` learns one softmax over the views per output
    channel; ``"b"`` predicts them from the globally pooled view responses (a shared FC layer over the
    channels, then a softmax over the views). (B, C, T, H, W) -> (B, C', T, H, W).

    Choices: in CoST(b) the FC layer is shared by the three views and C' x C' wide (its paper draws it
    without the widths); the view weights start equal (softmax of zeros) in CoST(a)."""

    def __init__(self, cin: int, cout: int, variant: str = "a"):
        super().__init__()
        if variant not in ("a", "b"):
            raise ValueError(f"unknown CoST variant '{variant}': choose a or b")
        self.variant = variant
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        if variant == "a":
            self.alpha = nn.Parameter(torch.zeros(cout, 3))
        else:
            self.predict = nn.Linear(cout, cout)

    def views(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 3, C', T, H, W): the H-W, T-W and T-H responses of the shared kernel."""
        w = self.weight
        return torch.stack([F.conv3d(x, w[:, :, None], padding=(0, 1, 1)),
                            F.conv3d(x, w[:, :, :, None], padding=(1, 0, 1)),
                            F.conv3d(x, w[..., None], padding=(1, 1, 0))], dim=1)

    def coefficients(self, v: torch.Tensor) -> torch.Tensor:
        """(B, 3, C', ...) view responses -> (B, 3, C') weights, a softmax over the views."""
        if self.variant == "a":
            return self.alpha.t().softmax(0).expand(v.shape[0], 3, -1)
        return self.predict(v.mean((-3, -2, -1))).softmax(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.views(x)
        return (self.coefficients(v)[..., None, None, None] * v).sum(1)

    def macs(self, inputs, output) -> int:
        B, C = inputs[0].shape[:2]
        fc = B * 3 * output.shape[1] ** 2 if self.variant == "b" else 0
        return 3 * output.numel() * C * 9 + fc


class CoSTBlock(nn.Module):
    """CoST as one residual insertion: the bottleneck CoST builds on (1x1 to C/4, BN, ReLU, the
    collaborative 3x3, BN, ReLU, 1x1 back to C, BN at zero), z = ReLU(x + ...). CoST replaces the 3x3
    convolution of every bottleneck of a 3-D ResNet; here it is one block at an insertion point."""

    def __init__(self, channels: int, variant: str = "a", ratio: int = 4, zero_init: bool = True):
        super().__init__()
        cb = max(4, channels // ratio)
        self.reduce = _cbr(channels, cb, 1)
        self.cost = CoSTConv(cb, cb, variant)
        self.post = nn.Sequential(nn.BatchNorm3d(cb), nn.ReLU(inplace=True))
        self.expand = nn.Conv2d(cb, channels, 1, bias=False)
        self.bn = _last_bn(channels, zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        r = self.reduce(x.flatten(0, 1)).view(B, T, -1, H, W).transpose(1, 2)  # (B, Cb, T, H, W)
        y = self.post(self.cost(r)).transpose(1, 2).flatten(0, 1)
        return F.relu(x + self.bn(self.expand(y)).view(B, T, C, H, W))


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


class CorrespondenceProposal(nn.Module):
    """CPNet's correspondence proposal module (Liu et al., CVPR 2019): for every position, its k nearest
    neighbours in feature space (L2) among the positions of the other frames; an MLP on each pair's
    [own feature, neighbour's feature, displacement (dt, dy, dx)], max-pooled over the k, a 1x1 layer back to
    C, added to the features: z = ReLU(x + BN(...)), the BN at zero (identity at init).

    Choices (from CPNet's ResNet-18 model at res3): k = 8, MLP widths C/4 and C/2 (each linear + BN + ReLU),
    displacements normalised by T, H and W; no spatial subsampling before the search (SELFY's Table 7a setup);
    the neighbour search is not differentiated (indices), the features are."""

    def __init__(self, channels: int, k: int = 8, zero_init: bool = True):
        super().__init__()
        self.k = k
        c1, c2 = max(4, channels // 4), max(4, channels // 2)
        self.distance = PairwiseDistance()
        self.mlp = nn.Sequential(nn.Linear(2 * channels + 3, c1, bias=False), nn.BatchNorm1d(c1), nn.ReLU(inplace=True),
                                 nn.Linear(c1, c2, bias=False), nn.BatchNorm1d(c2), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(c2, channels, 1, bias=False)
        self.bn = _last_bn(channels, zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        N, k = T * H * W, min(self.k, (T - 1) * H * W)
        f = x.permute(0, 1, 3, 4, 2).reshape(B, N, C)
        idx = other_frame_neighbours(f.detach(), T, k, self.distance)  # (B, N, k)
        nb = torch.gather(f, 1, idx.reshape(B, N * k, 1).expand(-1, -1, C)).view(B, N, k, C)
        axes = [torch.arange(n, device=x.device, dtype=x.dtype) / n for n in (T, H, W)]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(N, 3)
        disp = grid[idx] - grid[None, :, None]  # (B, N, k, 3)
        pair = torch.cat([f[:, :, None].expand(-1, -1, k, -1), nb, disp], dim=-1)
        g = self.mlp(pair.reshape(B * N * k, -1)).view(B, N, k, -1).amax(2)  # (B, N, C2)
        g = g.view(B, T, H, W, -1).permute(0, 1, 4, 2, 3).flatten(0, 1)
        return F.relu(x + self.bn(self.out(g)).view(B, T, C, H, W))


def build_motion_block(kind: str, channels: int, frames: int, zero_init: bool = True) -> nn.Module:
    """One of :data:`MOTION_BLOCKS` for a C = ``channels`` feature map of ``frames``-frame clips; ``zero_init``
    as for SELFY blocks (the module's last BN, TEA's last convolution, at zero: an identity at init)."""
    if kind == "nonlocal":
        return NonLocal(channels, zero_init=zero_init)
    if kind == "ms":
        return MotionSqueeze(channels, zero_init=zero_init)
    if kind == "tea":
        return MotionExcitation(channels, zero_init=zero_init)
    if kind == "tam":
        return TemporalAdaptive(channels, frames, zero_init=zero_init)
    if kind == "stm":
        return STMBlock(channels, zero_init=zero_init)
    if kind in ("cost-a", "cost-b"):
        return CoSTBlock(channels, kind[-1], zero_init=zero_init)
    if kind == "cp":
        return CorrespondenceProposal(channels, zero_init=zero_init)
    raise ValueError(f"unknown motion block '{kind}': choose from {', '.join(MOTION_BLOCKS)}")
