"""Hierarchical contrastive motion learning (HCML; Yang et al., 2020), built for SELFYNet backbones.

A :class:`MotionHierarchy` attaches to several stages of the backbone (default res2, res3, res4). At each
level k it

1. encodes motion features ``m_k`` from the stage's output ``x_k`` (and from ``m_{k-1}`` of the level
   below, when there is one), with one of two encoders: ``diff`` (:class:`DifferenceEncoder`: differences of
   adjacent frames' features, a 1x1 and a 3x3 convolution) or ``selfy`` (:class:`SelfyEncoder`: SELFY's own
   STSS branch, reduce -> STSS -> extract -> integrate -> fuse, ending in ``m_k``'s width);
2. fuses ``m_k`` back into the backbone, ``x_k + BN(W m_k)``, the BN's weight at zero (an identity at
   initialisation, like every block of the toolkit);
3. when its loss is used (``--aux hcml`` or pretraining), predicts the motion features of the level below
   ``delta`` frames ahead from ``m_k`` at time t, and scores the prediction with InfoNCE (:func:`info_nce`)
   against the true future features: the paper's "motion features at the current level ... predict the
   future ones at the previous level".

Our source documents give the idea, not the recipe; every choice below is ours and is an option where it
is a number:

* levels: the stages named in ``levels``; level k's "previous level" is the hierarchy's level below it.
* what is predicted (``target``): ``motion`` (default), the motion features of the level below at t + delta;
  the lowest level has no motion level below and predicts the backbone features of the stage before it (the
  stem's for res2). ``backbone``: every level predicts the backbone features of the stage before it (an
  option). Targets are detached (stop-gradient), so the objective trains the motion encoder, the predictor and
  the target projection, and does not pull the lower level towards being easy to predict.
* heads: the predictor is a 1x1 conv -> BN -> ReLU -> 1x1 conv from ``m_k`` (``predictor="motion"``,
  default) or from [m_k, x_k] (``"motion+appearance"``, an option: the appearance features are a shortcut
  the paper's objective does not offer) to ``dim`` = 64 channels (scaled with narrow backbones, at least
  16); the target projection one 1x1 conv to ``dim``; both embeddings are L2-normalised.
* positions: both maps are average-pooled to a ``grid`` x ``grid`` grid (default 4) before scoring, so the
  similarity matrix stays small ((B (T - delta) grid^2)^2 entries).
* negatives: every other (clip, time, cell) target of the batch, i.e. other cells of the same frame, other
  times of the same clip and every cell of the other clips; in a distributed run the targets of every
  process (gathered, the local ones keeping their gradient), as one process with the whole batch would.
* delta = 1 frame, temperature tau = 0.1; the loss is the mean over levels; motion width C_k / 8 (at
  least 8), so the diff hierarchy at res2-res4 of TSM-R50 adds about 1 GFLOP (``selfy-lab flops --hierarchy diff``).
* the last ``delta`` frames have no future and predict nothing.
* causality: the motion features look back only (backward frame differences; the SELFY encoder keeps the
  offsets l <= 0), so the hierarchy itself never shows a level the future it predicts. The backbone can: a
  TSM shift moves a share of frame t+1's channels into frame t in every residual block, and a SELFY (or
  non-local) block with positive offsets mixes later frames in; with such a backbone the prediction is partly
  visible (more so for the higher levels), and TSN without a block (or blocks with offsets <= 0) is the clean
  setting for the objective. Such a configuration is refused unless ``hcml_allow_leak`` is set
  (``selfy_lab.config.run.RunConfig``).
* the loss is computed only when something uses it (``loss_enabled``, set by the trainer).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from .layers import conv_bn_relu
from .selfy import BlockWidths, SelfyBranch

ENCODERS = ("diff", "selfy")


TARGETS = ("motion", "backbone")
PREDICTOR_INPUTS = ("motion", "motion+appearance")


def gather_targets(z: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Every process's targets, concatenated in rank order, the local ones keeping their gradient (others are
    constants), and the offset of the local rows: (N, D) -> (sum of N, D), offset. One process: z itself."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z, 0
    world, rank = dist.get_world_size(), dist.get_rank()
    sizes = [torch.zeros(1, dtype=torch.long, device=z.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([len(z)], device=z.device))
    n = [int(s.item()) for s in sizes]
    padded = torch.zeros(max(n), z.shape[1], dtype=z.dtype, device=z.device)
    padded[: len(z)] = z.detach()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    parts = [p[:k] for p, k in zip(parts, n)]
    parts[rank] = z  # the local rows keep their gradient
    return torch.cat(parts), sum(n[:rank])


def info_nce(pred: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE of N predictions against N targets, row i's positive being target i and its negatives every
    other target (of every process in a distributed run): mean_i -log softmax_j(<p_i, z_j> / tau)[i], with p
    and z L2-normalised. (N, D), (N, D)."""
    dtype = torch.promote_types(pred.dtype, torch.float32)  # fp32 at least, under autocast too
    p, z = F.normalize(pred.to(dtype), dim=1), F.normalize(target.to(dtype), dim=1)
    z, offset = gather_targets(z)
    logits = p @ z.t() / tau  # (N, N_all)
    return F.cross_entropy(logits, torch.arange(len(p), device=p.device) + offset)


def future_pairs(pred: torch.Tensor, target: torch.Tensor, delta: int, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-aligned (prediction at t, target at t + delta) pairs: both maps average-pooled to grid x grid cells,
    rows in (clip, time, cell) order. (B, T, D, H, W), (B, T, D, H', W') -> (N, D), (N, D), N = B (T-delta) grid^2."""
    B, T, D = pred.shape[:3]

    def cells(maps: torch.Tensor) -> torch.Tensor:  # (B, T', D, h, w) -> (B*T'*grid*grid, D)
        pooled = F.adaptive_avg_pool2d(maps.flatten(0, 1), grid)  # (B*T', D, grid, grid)
        return pooled.flatten(2).transpose(1, 2).reshape(-1, D)

    return cells(pred[:, : T - delta]), cells(target[:, delta:])


class DifferenceEncoder(nn.Module):
    """m_t from x_t - x_{t-1} (zero at the first frame): 1x1 conv-BN-ReLU to the motion width, then a
    depthwise 3x3 conv-BN-ReLU (lightweight: the encoder costs about two 1x1 layers at the motion width).
    Backward differences keep m_t causal: it never sees the frames it is asked to predict."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        depthwise = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        self.net = nn.Sequential(conv_bn_relu(channels, width, 1), depthwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], 1)  # (B, T, C, H, W): x_t - x_{t-1}
        return self.net(diff.flatten(0, 1)).view(B, T, -1, H, W)


class SelfyEncoder(nn.Module):
    """SELFY's STSS branch as a motion encoder, its output at the motion width (and not zero at init). Only the
    offsets l <= 0 of the given ones are kept (at least {0}), so m_t looks back, never ahead."""

    def __init__(self, channels: int, *, width: int, offsets: tuple[int, ...], window: tuple[int, int], reduce: int,
                 widths: BlockWidths):
        super().__init__()
        causal = tuple(o for o in offsets if o <= 0) or (0,)
        self.branch = SelfyBranch(channels, causal, window=window, reduce=reduce, widths=widths, zero_init=False,
                                  out_channels=width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.branch(x))  # (B, T, width, H, W)


class MotionLevel(nn.Module):
    """One level: motion encoder, fusion into the backbone, and the predictor / target heads of its loss."""

    def __init__(self, channels: int, prev_channels: int, *, below_width: int, encoder: nn.Module, width: int,
                 dim: int, zero_init: bool = True, target: str = "motion", predictor: str = "motion"):
        super().__init__()
        self.encoder = encoder
        self.from_below = nn.Conv2d(below_width, width, 1, bias=False) if below_width else None
        self.fuse = nn.Sequential(nn.Conv2d(width, channels, 1, bias=False), nn.BatchNorm2d(channels))
        if zero_init:
            nn.init.zeros_(self.fuse[1].weight)
        self.with_appearance = predictor == "motion+appearance"
        self.predictor = nn.Sequential(conv_bn_relu(width + (channels if self.with_appearance else 0), dim, 1),
                                       nn.Conv2d(dim, dim, 1))
        self.motion_target = target == "motion" and below_width > 0  # the lowest level: the stage before it
        self.target = nn.Conv2d(below_width if self.motion_target else prev_channels, dim, 1)


class MotionHierarchy(nn.Module):
    """The levels of :mod:`selfy_lab.models.hcml` and their contrastive loss.

    ``SELFYNet`` calls :meth:`level` on each stage output it names; in training mode the level keeps what
    its loss needs, and :meth:`loss` (after the forward pass) returns the mean InfoNCE over the levels.
    """

    def __init__(self, levels: dict[str, MotionLevel], *, frames: int, delta: int = 1, tau: float = 0.1, grid: int = 4):
        super().__init__()
        if not 1 <= delta < frames:
            raise ValueError(f"hcml delta must be in 1..{frames - 1} for {frames}-frame clips, got {delta}")
        self.levels = nn.ModuleDict(levels)
        self.delta, self.tau, self.grid = delta, tau, grid
        self.loss_enabled = False  # the trainer turns the loss on when it uses it (--aux hcml, pretraining)
        self._pending: list[torch.Tensor] = []
        self._below: torch.Tensor | None = None

    def start(self) -> None:
        """Forget the previous forward pass (called at the start of each one)."""
        self._pending, self._below = [], None

    def level(self, name: str, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """Level ``name`` on stage output ``x`` (B, T, C, H, W) whose previous stage gave ``prev``
        (B, T, C', H', W'); returns ``x`` with the motion features fused in."""
        lv = self.levels[name]
        B, T, C, H, W = x.shape
        m = lv.encoder(x)  # (B, T, Cm, H, W)
        below_m = self._below
        if lv.from_below is not None and below_m is not None:
            below = F.adaptive_avg_pool2d(below_m.flatten(0, 1), (H, W))  # (B*T, Cm', H, W)
            m = m + lv.from_below(below).view(B, T, -1, H, W)
        self._below = m
        out = x + lv.fuse(m.flatten(0, 1)).view(B, T, C, H, W)
        if self.training and self.loss_enabled:
            self._pending.append(self._level_loss(lv, m, x, below_m if lv.motion_target else prev))
        return out

    def _level_loss(self, lv: MotionLevel, m: torch.Tensor, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """``prev``: what the level predicts, the level below's motion features or the stage before's output."""
        B, T = x.shape[:2]
        src = torch.cat([m, x], 2) if lv.with_appearance else m
        pred = lv.predictor(src.flatten(0, 1))  # (B*T, D, H, W): each time's prediction
        target = lv.target(prev.detach().flatten(0, 1))  # (B*T, D, H', W'): the previous level, stop-gradient
        p, z = future_pairs(pred.view(B, T, *pred.shape[1:]), target.view(B, T, *target.shape[1:]), self.delta, self.grid)
        return info_nce(p, z, self.tau)

    def loss(self) -> torch.Tensor:
        """Mean InfoNCE over the levels of the last training-mode forward pass."""
        if not self._pending:
            raise RuntimeError("no contrastive terms: set loss_enabled and run a forward pass in training mode first")
        return torch.stack(self._pending).mean()


def build_hierarchy(encoder: str, levels: tuple[str, ...], *, channels: dict[str, int], prev_stage: dict[str, str],
                    frames: int, width_mult: float = 1.0, offsets: tuple[int, ...] = (-2, -1, 0, 1, 2),
                    window: tuple[int, int] = (9, 9), reduce: dict[str, int] | None = None, delta: int = 1,
                    tau: float = 0.1, grid: int = 4, zero_init: bool = True, target: str = "motion",
                    predictor: str = "motion") -> MotionHierarchy:
    """A hierarchy at ``levels`` (stage names in network order) of a backbone whose stages have
    ``channels``; ``prev_stage`` maps each stage to the one before it; ``width_mult`` scales the widths as
    narrow backbones scale SELFY's."""
    if encoder not in ENCODERS:
        raise ValueError(f"unknown hcml encoder '{encoder}': choose from {', '.join(ENCODERS)}")
    dim = max(16, round(64 * width_mult))
    widths = BlockWidths().scaled(width_mult)
    out, below = {}, 0
    for name in levels:
        c = channels[name]
        width = max(8, c // 8)
        if encoder == "diff":
            enc = DifferenceEncoder(c, width)
        else:
            enc = SelfyEncoder(c, width=width, offsets=offsets, window=window, reduce=(reduce or {}).get(name, 1),
                               widths=widths)
        out[name] = MotionLevel(c, channels[prev_stage[name]], below_width=below, encoder=enc, width=width, dim=dim,
                                zero_init=zero_init, target=target, predictor=predictor)
        below = width
    return MotionHierarchy(out, frames=frames, delta=delta, tau=tau, grid=grid)
