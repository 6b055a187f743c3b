"""The SELFY block (Sec. 3.2, Fig. 2), its ablation variants, STCB and the Table 5 combinations.

A block maps a clip feature map (B, T, C, H, W) to the same shape. Inside, a *branch* computes the
relational feature R; a :class:`ResidualBlock` fuses it with the visual feature V:

* ``residual="reference"`` (reference code): Z = ReLU(R + V)
* ``residual="paper"`` (Eq. 9): Z = ReLU(R) + V
* ``fusion="R"`` (Table 7e): Z = ReLU(R), no visual feature

R ends with a BatchNorm whose weight starts at zero (``zero_init``, the default), so R = 0 at initialisation
and a block with ``fusion="R+V"`` is an exact identity on the (non-negative) ResNet features it is inserted
after; with ``zero_init=False`` that BN starts at weight 1 like every other.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..config.vocabulary import FUSE_HEADS, FUSIONS, INTEGRATORS, RESIDUALS, SELFY_BLOCKS, SIMILARITIES, STSS_MEMORY
from .extract import DEFAULT_CHANNELS, build_extractor
from .layers import conv_bn_relu
from .selfsim import stss_macs, stss_volumes


@dataclass(frozen=True)
class BlockWidths:
    """Hidden widths of a block; the reference values, scaled down for narrow backbones."""

    hidden: int = 128  # channels of the reduced feature the STSS is computed on
    extract: tuple[int, ...] = DEFAULT_CHANNELS  # conv extraction stack
    integrate: int = 64  # integration / fusion channels

    def scaled(self, mult: float) -> "BlockWidths":
        if mult == 1:
            return self
        ext = tuple(max(4, round(c * mult)) for c in self.extract)
        return BlockWidths(max(8, round(self.hidden * mult)), ext, max(8, round(self.integrate * mult)))


class Reduce(nn.Module):
    """Reference-code projection before the STSS: conv (stride r) + BN + ReLU, e.g. res3's 28x28 -> 14x14."""

    def __init__(self, cin: int, cout: int, *, r: int):
        super().__init__()
        k = 3 if r <= 2 else r + 1
        self.net = conv_bn_relu(cin, cout, k, r, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Restore(nn.Module):
    """1x1 transposed conv (stride r) back to the input's channels and size, then a zero-initialised BN."""

    def __init__(self, cin: int, cout: int, *, r: int, zero_init: bool = True):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 1, stride=r, output_padding=r - 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        if zero_init:
            nn.init.zeros_(self.bn.weight)  # R = 0 at init: the block starts as an identity

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = self.conv(x)[..., : size[0], : size[1]]  # stride-r output is r*h >= H; crop odd sizes
        return self.bn(x)


class STSS(nn.Module):
    """Eq. (1) as a module, so FLOP counting sees it. (B, T, C, H, W) -> (B, T, H, W, L, U, V)."""

    def __init__(self, offsets: tuple[int, ...], window: tuple[int, int], *, similarity: str):
        super().__init__()
        self.offsets, self.window, self.similarity = tuple(offsets), tuple(window), similarity

    def forward(self, q: torch.Tensor, k: torch.Tensor | None = None) -> torch.Tensor:
        return stss_volumes(q, self.offsets, self.window, self.similarity, k)

    def macs(self, inputs, output) -> int:
        B, T, C, H, W = inputs[0].shape
        return stss_macs(B, T, C, H, W, len(self.offsets), *self.window)

    def extra_repr(self) -> str:
        return f"offsets={self.offsets}, window={self.window}, similarity={self.similarity}"


# ``stss_memory="auto"`` recomputes the STSS and its extraction in the backward pass once the volume of a
# batch (B*T*h*w*L*U*V elements in the compute dtype) would pass this size: the conv extraction keeps about 30
# times the volume for its backward pass, so this is where a block's saved activations reach gigabytes.
RECOMPUTE_ABOVE_BYTES = 256 * 2**20


@contextlib.contextmanager
def running_stats_frozen(module: nn.Module):
    """BatchNorm layers of ``module`` normalise as usual but leave their running statistics and batch count
    as they were: the recomputation of a checkpointed forward pass must not count its batch twice."""
    bns = [m for m in module.modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]
    kept = [(m, m.momentum, m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0  # running = 1 * running + 0 * batch: unchanged
    try:
        yield
    finally:
        for m, momentum, count in kept:
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)


class Integrator(nn.Module):
    """Per-offset layers over (y, x), shared across offsets (Eq. 7-8); Table 3b's FC / MLP / conv."""

    def __init__(self, kind: str, cin: int, *, width: int):
        super().__init__()
        if kind not in INTEGRATORS:
            raise ValueError(f"unknown integrator '{kind}': choose from {', '.join(INTEGRATORS)}")
        depth, k = {"conv": (3, 3), "mlp": (3, 1), "fc": (1, 1), "none": (0, 1)}[kind]
        layers, c = [], cin
        for _ in range(depth):
            layers.append(conv_bn_relu(c, width, k))
            c = width
        self.net = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SelfyBranch(nn.Module):
    """R of a SELFY block: reduce -> STSS -> extract -> integrate -> fuse offsets -> restore."""

    def __init__(
        self,
        in_channels: int,
        offsets: tuple[int, ...],
        *,
        window: tuple[int, int] = (9, 9),
        extractor: str = "conv",
        integrator: str = "conv",
        similarity: str = "cosine",
        reduce: int = 2,
        fuse: str = "reference",
        widths: BlockWidths = BlockWidths(),
        zero_init: bool = True,
        out_channels: int | None = None,  # default: the input's (a block's R); another width for HCML's encoder
        memory: str = "auto",
    ):
        """``memory``: ``save`` keeps the STSS volume and the extraction's activations for the backward pass,
        ``recompute`` recomputes them there (same outputs and gradients, less memory kept through the forward
        pass, more time), ``auto`` recomputes once the volume would pass :data:`RECOMPUTE_ABOVE_BYTES`. The
        block's own backward pass still holds the whole recomputed volume and extraction at once (the
        extraction's BatchNorm normalises over every position), so its peak is not lowered."""
        super().__init__()
        out_channels = out_channels or in_channels
        if memory not in STSS_MEMORY:
            raise ValueError(f"unknown STSS memory mode '{memory}': choose from {', '.join(STSS_MEMORY)}")
        self.memory = memory
        if similarity not in SIMILARITIES:
            raise ValueError(f"unknown similarity '{similarity}': choose from {', '.join(SIMILARITIES)}")
        if fuse not in FUSE_HEADS:
            raise ValueError(f"unknown fuse head '{fuse}': choose from {', '.join(FUSE_HEADS)}")
        L = len(offsets)
        self.reduce = Reduce(in_channels, widths.hidden, r=reduce)
        if similarity == "embedded_gaussian":
            # non-local style embeddings theta (queries) and phi (keys), half the channels
            self.theta = nn.Conv2d(widths.hidden, widths.hidden // 2, 1)
            self.phi = nn.Conv2d(widths.hidden, widths.hidden // 2, 1)
        self.stss = STSS(offsets, window, similarity=similarity)
        self.extract = build_extractor(extractor, window=window, channels=widths.extract)
        self.integrate = Integrator(integrator, self.extract.out_channels, width=widths.integrate)
        fused = L * self.integrate.out_channels
        if fuse == "reference":  # 3x3 conv over the L*C channels, then 1x1 back to C_in
            self.fuse = conv_bn_relu(fused, widths.integrate, 3)
            self.restore = Restore(widths.integrate, out_channels, r=reduce, zero_init=zero_init)
        else:  # Eq. 9: a single 1x1 layer from L*C to C_in
            self.fuse = nn.Identity()
            self.restore = Restore(fused, out_channels, r=reduce, zero_init=zero_init)

    def recomputes(self, r: torch.Tensor) -> bool:
        """Whether the backward pass recomputes the STSS and its extraction for the reduced feature ``r``."""
        if self.memory == "save" or not (torch.is_grad_enabled() and r.requires_grad):
            return False
        if self.memory == "recompute":
            return True
        L, (U, V) = len(self.stss.offsets), self.stss.window
        dtype = torch.get_autocast_dtype(r.device.type) if torch.is_autocast_enabled(r.device.type) else r.dtype
        return r.shape[0] * r.shape[-2] * r.shape[-1] * L * U * V * dtype.itemsize > RECOMPUTE_ABOVE_BYTES

    def relate(self, r: torch.Tensor, B: int, T: int) -> torch.Tensor:
        """The STSS of the reduced feature ``r`` (B*T, C_h, h, w) and its extraction: (B*T*h*w, L, C_F)."""
        h, w = r.shape[-2:]
        if hasattr(self, "theta"):
            q = self.theta(r).view(B, T, -1, h, w)
            k = self.phi(r).view(B, T, -1, h, w)
            vol = self.stss(q, k)
        else:
            vol = self.stss(r.view(B, T, -1, h, w))  # (B, T, h, w, L, U, V)
        L, U, V = vol.shape[-3:]
        return self.extract(vol.view(B * T * h * w, L, U, V))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        r = self.reduce(x.flatten(0, 1))  # (B*T, C_h, h, w)
        h, w = r.shape[-2:]
        L = len(self.stss.offsets)
        if self.recomputes(r):  # keep r and the extracted features only; the volume is rebuilt in backward
            f = checkpoint(self.relate, r, B, T, use_reentrant=False,
                           context_fn=lambda: (contextlib.nullcontext(), running_stats_frozen(self.extract)))
        else:
            f = self.relate(r, B, T)  # (B*T*h*w, L, C_F)
        if len(self.integrate.net):
            # per-offset maps, channels-last: storage (B, T, L, h, w, C_F) is NCHW (B*T*L, C_F, h, w)
            f = f.view(B, T, h, w, L, -1).permute(0, 1, 4, 2, 3, 5).reshape(B * T * L, h, w, -1)
            f = self.integrate(f.permute(0, 3, 1, 2))  # (B*T*L, C_I, h, w)
            f = f.permute(0, 2, 3, 1).reshape(B * T, L, h, w, -1).permute(0, 2, 3, 1, 4)  # (BT, h, w, L, C_I)
        # flatten (L, C) into channels; storage (B*T, h, w, L*C) is channels-last NCHW
        f = f.reshape(B * T, h, w, -1).permute(0, 3, 1, 2)  # (B*T, L*C, h, w)
        out = self.restore(self.fuse(f), (H, W))  # (B*T, C_out, H, W)
        return out.view(B, T, -1, H, W)


class STCBBranch(nn.Module):
    """Spatio-temporal convolution block (Fig. 4a): same reduce/fuse/restore as SELFY-s, but four
    (3,3,3)/(3,3,3)/(1,3,3)/(1,3,3) convolutions over (T, h, w) instead of the STSS path, giving a
    +-2 frame, 9x9 receptive field (that of an L=5, 9x9 SELFY-s) with a similar parameter count."""

    def __init__(self, in_channels: int, *, reduce: int = 2, widths: BlockWidths = BlockWidths(),
                 zero_init: bool = True):
        super().__init__()
        c_mid, c = max(4, widths.integrate // 2), widths.integrate
        self.reduce = Reduce(in_channels, widths.hidden, r=reduce)
        chans = [widths.hidden, c_mid, c, c, c]
        kernels = [(3, 3, 3), (3, 3, 3), (1, 3, 3), (1, 3, 3)]
        layers: list[nn.Module] = []
        for cin, cout, k in zip(chans[:-1], chans[1:], kernels):
            layers += [nn.Conv3d(cin, cout, k, 1, tuple(s // 2 for s in k), bias=False), nn.BatchNorm3d(cout),
                       nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.fuse = conv_bn_relu(c, c, 3)
        self.restore = Restore(c, in_channels, r=reduce, zero_init=zero_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        r = self.reduce(x.flatten(0, 1))  # (B*T, C_h, h, w)
        h, w = r.shape[-2:]
        r = r.view(B, T, -1, h, w).transpose(1, 2)  # (B, C_h, T, h, w)
        f = self.convs(r).transpose(1, 2).flatten(0, 1)  # (B*T, C, h, w)
        return self.restore(self.fuse(f), (H, W)).view(B, T, C, H, W)


class ResidualBlock(nn.Module):
    """Z from the branches' summed R and the visual feature V (see module docstring)."""

    def __init__(self, branches: list[nn.Module], *, fusion: str = "R+V", residual: str = "reference"):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion '{fusion}': choose from {', '.join(FUSIONS)}")
        if residual not in RESIDUALS:
            raise ValueError(f"unknown residual '{residual}': choose from {', '.join(RESIDUALS)}")
        self.branches = nn.ModuleList(branches)
        self.fusion, self.residual = fusion, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C, H, W)
        r = self.branches[0](x)
        for b in self.branches[1:]:
            r = r + b(x)
        if r.stride() != x.stride():
            # keep the backbone's memory layout (the branch ends channels-last), so that the layers
            # after the block run the same kernels with or without it
            r = torch.empty_like(x).copy_(r)
        if self.fusion == "R":
            return F.relu(r)
        if self.residual == "paper":
            return F.relu(r) + x
        return F.relu(r + x)


def build_block(
    kind: str,
    in_channels: int,
    *,
    offsets: tuple[int, ...] = (-2, -1, 0, 1, 2),
    window: tuple[int, int] = (9, 9),
    extractor: str = "conv",
    integrator: str = "conv",
    similarity: str = "cosine",
    fusion: str = "R+V",
    residual: str = "reference",
    fuse: str = "reference",
    reduce: int = 2,
    widths: BlockWidths = BlockWidths(),
    zero_init: bool = True,
    memory: str = "auto",
) -> nn.Module:
    """Build one insertion: ``selfy``, ``selfy-s`` (no spatial integration convs), ``stcb``, or a Table 5
    combination: ``stcb+stcb`` / ``selfy-s+selfy-s`` (two stacked), ``parallel`` (SELFY-s and STCB
    summed in one residual), ``sequential`` (SELFY-s then STCB)."""

    def selfy(integ: str) -> SelfyBranch:
        return SelfyBranch(in_channels, offsets, window=window, extractor=extractor, integrator=integ,
                           similarity=similarity, reduce=reduce, fuse=fuse, widths=widths, zero_init=zero_init,
                           memory=memory)

    def stcb() -> STCBBranch:
        return STCBBranch(in_channels, reduce=reduce, widths=widths, zero_init=zero_init)

    def res(*branches: nn.Module) -> ResidualBlock:
        return ResidualBlock(list(branches), fusion=fusion, residual=residual)

    if kind == "selfy":
        return res(selfy(integrator))
    if kind == "selfy-s":
        return res(selfy("none"))
    if kind == "stcb":
        return res(stcb())
    if kind == "stcb+stcb":
        return nn.Sequential(res(stcb()), res(stcb()))
    if kind == "selfy-s+selfy-s":
        return nn.Sequential(res(selfy("none")), res(selfy("none")))
    if kind == "parallel":
        return res(selfy("none"), stcb())
    if kind == "sequential":
        return nn.Sequential(res(selfy("none")), res(stcb()))
    raise ValueError(f"unknown block '{kind}': choose from {', '.join(SELFY_BLOCKS)}")


def selfy_block(channels: int, *, frames: int, stage: str, kind: str = "selfy", zero_init: bool = True,
                **fields) -> nn.Module:
    """The block registry's entry to :func:`build_block` (the contract's ``frames`` and ``stage`` are unused:
    SELFY's STSS takes its temporal offsets and its reduction among ``fields``)."""
    return build_block(kind, channels, zero_init=zero_init, **fields)

