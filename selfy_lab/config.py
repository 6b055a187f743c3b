"""Frozen configuration dataclasses, their vocabularies, validation, YAML load/save and a stable hash.

This module imports no torch, so the CLI can validate input and print help instantly.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
from dataclasses import dataclass, field, fields
from typing import Any

from .grammar import (EVERY, POSITIONS, format_offsets, format_positions, format_window, parse_block_options,  # noqa: F401
                      parse_offsets, parse_positions, parse_window, position_stage)

# ---- vocabularies (the models import these) ----
BACKBONE_RE = re.compile(r"^(tsn|tsm)-r(18|34|50)(?:-w(\d+))?$")
BACKBONE_EXAMPLES = ("tsn-r18", "tsm-r18", "tsn-r34", "tsm-r34", "tsn-r50", "tsm-r50", "tsn-r18-w16", "tsm-r18-w16")
SELFY_BLOCKS = ("selfy", "selfy-s", "stcb", "stcb+stcb", "selfy-s+selfy-s", "parallel", "sequential")
MOTION_BLOCKS = ("nonlocal", "ms", "tea", "tam", "stm", "cost-a", "cost-b", "cp")  # the field's other modules (models/motion/)
BLOCKS = ("none", *SELFY_BLOCKS, *MOTION_BLOCKS)
# a module written outside the package: --block PACKAGE.MODULE:CLASS (models/outside.py builds it)
OUTSIDE_BLOCK_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def is_outside_block(block: str) -> bool:
    """``PACKAGE.MODULE:CLASS`` names the user's own module."""
    return bool(OUTSIDE_BLOCK_RE.match(str(block)))
EXTRACTORS = ("smax", "kscm", "mlp", "conv", "conv3d")
INTEGRATORS = ("conv", "mlp", "fc", "none")
SIMILARITIES = ("cosine", "dot", "embedded_gaussian")
FUSIONS = ("R+V", "R")
RESIDUALS = ("reference", "paper")
FUSE_HEADS = ("reference", "paper")
STSS_MEMORY = ("auto", "save", "recompute")  # keep the STSS volume for the backward pass, or recompute it there
SHIFT_PLACES = ("residual", "inplace")  # where TSM shifts: each residual branch, or each block's input
# STSS resolution reduction per insertion point (reference code: res3's 28x28 -> 14x14 at 224 input)
DEFAULT_REDUCE = {"pool1": 4, "res2": 4, "res3": 2, "res4": 1, "res5": 1}
REDUCE_CHOICES = (1, 2, 4)
LIST_FORMATS = ("auto", "tsn", "two-column", "ssv2-json", "diving48-json")  # data/lists.py reads each
HIERARCHIES = ("none", "diff", "selfy")  # HCML's motion encoder (models/hcml.py)
AUX_LOSSES = ("none", "hcml")
HCML_TARGETS = ("motion", "backbone")  # what a level predicts (models/hcml.py)
HCML_PREDICTORS = ("motion", "motion+appearance")
OBJECTIVES = ("supervised", "hcml")  # hcml: self-supervised pretraining of the motion hierarchy, labels unread
PREVIOUS_STAGE = {"res2": "pool1", "res3": "res2", "res4": "res3", "res5": "res4"}


# Fields marked ``NOT_IDENTITY`` do not change what a run computes (how many loader processes, whether
# the data is checked up front, how often it is validated, the names it is filed under): they are left
# out of the run key, so changing them re-uses a finished run.
NOT_IDENTITY = {"identity": False}
# Fields marked ``KEY_IF_SET`` key a run only when they differ from their default: a run that does not use an
# option keeps the key (and the directory) it would have without it, so adding an option re-keys no run.
KEY_IF_SET = {"identity": "if_set"}


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} '{value}': choose from {', '.join(choices)}")
    return value


def _number(value, what: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
            hi_open: bool = False, integer: bool = False):
    """Check a numeric field at the edge: finite, of the right type, within [lo, hi] (or open ends)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ValueError(f"{what} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value}")
    below = lo is not None and (value <= lo if lo_open else value < lo)
    above = hi is not None and (value >= hi if hi_open else value > hi)
    if below or above:
        left = "" if lo is None else ("(" if lo_open else "[") + f"{lo:g}"
        right = "" if hi is None else f"{hi:g}" + (")" if hi_open else "]")
        rng = f"in {left}, {right}" if lo is not None and hi is not None else (
            f"{'above' if lo_open else 'at least'} {lo:g}" if lo is not None else f"{'below' if hi_open else 'at most'} {hi:g}")
        raise ValueError(f"{what} must be {rng}, got {value}")
    return value


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a network. Defaults: the paper's SELFYNet-TSM-R18 (res3, -2..2, 9x9)."""

    backbone: str = "tsm-r18"
    frames: int = 8
    num_classes: int = 174
    block: str = "selfy"  # "none" is the plain backbone (the baseline rows)
    offsets: tuple[int, ...] = (-2, -1, 0, 1, 2)
    window: tuple[int, int] = (9, 9)
    extractor: str = "conv"
    integrator: str = "conv"
    similarity: str = "cosine"
    fusion: str = "R+V"
    position: tuple[str, ...] = ("res3",)
    reduce: int = 0  # STSS resolution reduction; 0 = per-position default (DEFAULT_REDUCE)
    residual: str = "reference"  # reference: ReLU(R + V); paper (Eq. 9): ReLU(R) + V
    fuse: str = "reference"  # reference: 3x3 conv over L*C then 1x1 up; paper: one 1x1 layer
    dropout: float = 0.5
    pretrained: str = "none"  # none | imagenet | path to a torchvision-format state dict
    # the block's last BatchNorm starts at weight 0 (the reference code: the block is an identity when it is
    # inserted into a pretrained backbone), or at 1 like every other BN (a choice for training from scratch)
    zero_init: bool = True
    # std of the classifier's normal initialisation: 0.001 is TSN/TSM's (a head on pretrained features); from
    # scratch, so small a head lets some seeds sit at the uniform prediction for epochs (results/tuning)
    head_std: float = 0.001
    # hierarchical contrastive motion learning (models/hcml.py): the motion encoder of its levels (none = no
    # hierarchy), the stages it attaches to, and its contrastive objective (frames ahead, temperature, grid)
    hierarchy: str = field(default="none", metadata=KEY_IF_SET)
    hierarchy_levels: tuple[str, ...] = field(default=("res2", "res3", "res4"), metadata=KEY_IF_SET)
    hcml_delta: int = field(default=1, metadata=KEY_IF_SET)
    hcml_tau: float = field(default=0.1, metadata=KEY_IF_SET)
    hcml_grid: int = field(default=4, metadata=KEY_IF_SET)
    # what a level predicts (the level below's motion features; "backbone": the stage before's output) and
    # from what (its motion features; "motion+appearance" adds the stage's own output)
    hcml_target: str = field(default="motion", metadata=KEY_IF_SET)
    hcml_predictor: str = field(default="motion", metadata=KEY_IF_SET)
    # train the contrastive objective on a backbone that shows a level the future it predicts (TSM, a block
    # that mixes later frames in before a level): refused unless set
    hcml_allow_leak: bool = field(default=False, metadata=NOT_IDENTITY)
    # named options of a motion module (NAME=VALUE, e.g. "subsample=false"): each a deviation from its
    # authors' code that the module offers (models/motion/), or an argument of the user's own module
    block_options: tuple[str, ...] = field(default=(), metadata=KEY_IF_SET)
    # TSM's shift: 1/shift_div of the channels each way (TSM: 8), on each residual branch (TSM's default) or
    # on each block's input ("inplace", both branches)
    shift_div: int = field(default=8, metadata=KEY_IF_SET)
    shift_place: str = field(default="residual", metadata=KEY_IF_SET)
    # a SELFY block's STSS and extraction kept for the backward pass (save) or recomputed there (recompute);
    # auto recomputes above a volume size (models/selfy.py). Same results either way, so not in the run key
    stss_memory: str = field(default="auto", metadata=NOT_IDENTITY)

    def __post_init__(self):
        m = BACKBONE_RE.match(self.backbone)
        if not m:
            raise ValueError(
                f"unknown backbone '{self.backbone}': use tsn|tsm-r18|r34|r50, optionally narrow as -wN "
                f"(e.g. {', '.join(BACKBONE_EXAMPLES)})"
            )
        if m.group(3) and int(m.group(3)) < 8:
            raise ValueError(f"backbone '{self.backbone}': the narrow width must be at least 8")
        if not is_outside_block(self.block):
            if ":" in str(self.block):
                raise ValueError(f"block '{self.block}': your own module is PACKAGE.MODULE:CLASS (e.g. mymodules.shift:Shift)")
            _choice(self.block, BLOCKS, "block")
        _choice(self.extractor, EXTRACTORS, "extractor")
        _choice(self.integrator, INTEGRATORS, "integrator")
        _choice(self.similarity, SIMILARITIES, "similarity")
        _choice(self.fusion, FUSIONS, "fusion")
        _choice(self.residual, RESIDUALS, "residual")
        _choice(self.fuse, FUSE_HEADS, "fuse head")
        object.__setattr__(self, "offsets", parse_offsets(self.offsets))
        object.__setattr__(self, "window", parse_window(self.window))
        object.__setattr__(self, "position", parse_positions(self.position))
        object.__setattr__(self, "block_options", parse_block_options(self.block_options))
        if self.block_options and self.block in ("none", *SELFY_BLOCKS):
            raise ValueError(f"block options ({', '.join(self.block_options)}) are for the motion modules and your "
                             f"own module; block '{self.block}' takes none")
        if self.reduce and self.reduce not in REDUCE_CHOICES:
            raise ValueError(f"reduce must be 0 (per-position default) or one of {REDUCE_CHOICES}, got {self.reduce}")
        _number(self.frames, "frames", 1, integer=True)
        _number(self.num_classes, "num_classes", 2, integer=True)
        _number(self.dropout, "dropout", 0, 1, hi_open=True)
        _number(self.head_std, "head_std", 0, 1, lo_open=True)
        _choice(self.hierarchy, HIERARCHIES, "hierarchy")
        _number(self.shift_div, "shift_div", 2, integer=True)
        _choice(self.shift_place, SHIFT_PLACES, "shift place")
        _choice(self.stss_memory, STSS_MEMORY, "STSS memory mode")
        try:
            levels = parse_positions(self.hierarchy_levels)
        except ValueError:
            levels = (str(self.hierarchy_levels),)
        if not levels or any(p not in PREVIOUS_STAGE for p in levels):
            raise ValueError(f"hierarchy levels '{format_positions(levels)}': use stages among res2, res3, res4, res5 "
                             f"joined by + (each predicts the stage before it)")
        object.__setattr__(self, "hierarchy_levels", levels)
        _number(self.hcml_delta, "hcml_delta", 1, integer=True)
        if self.hierarchy != "none" and self.hcml_delta >= self.frames:
            raise ValueError(f"hcml_delta {self.hcml_delta} looks past a {self.frames}-frame clip: use 1..{self.frames - 1}")
        _number(self.hcml_tau, "hcml_tau", 0, lo_open=True)
        _number(self.hcml_grid, "hcml_grid", 1, integer=True)
        _choice(self.hcml_target, HCML_TARGETS, "hcml target")
        _choice(self.hcml_predictor, HCML_PREDICTORS, "hcml predictor input")
        if self.block in SELFY_BLOCKS and any(p.endswith(EVERY) for p in self.position):
            raise ValueError(f"position '{format_positions(self.position)}': ':every' (a module inside every residual "
                             f"block) is for the motion modules ({', '.join(MOTION_BLOCKS)}); {self.block} goes after a stage")
        if self.block in SELFY_BLOCKS and max(abs(o) for o in self.offsets) >= self.frames:
            raise ValueError(
                f"offsets {format_offsets(self.offsets)} reach beyond a {self.frames}-frame clip: "
                f"use offsets within +-{self.frames - 1}"
            )

    @property
    def tsm(self) -> bool:
        return self.backbone.startswith("tsm")

    @property
    def depth(self) -> int:
        return int(BACKBONE_RE.match(self.backbone).group(2))

    @property
    def width(self) -> int:
        """Stem width: 64 for the torchvision ResNets, N for the narrow ``-wN`` variants."""
        w = BACKBONE_RE.match(self.backbone).group(3)
        return int(w) if w else 64

    def reduce_at(self, position: str) -> int:
        position = position_stage(position)
        return self.reduce or DEFAULT_REDUCE[position]

    def hierarchy_label(self) -> str:
        """``diff@res2+res3+res4``, with the contrastive objective's settings where they are not the defaults."""
        if self.hierarchy == "none":
            return "none"
        defaults = {f.name: f.default for f in fields(ModelConfig)}
        extra = "".join(f" {k.removeprefix('hcml_')}={getattr(self, k)}" for k in
                        ("hcml_tau", "hcml_delta", "hcml_grid", "hcml_target", "hcml_predictor")
                        if getattr(self, k) != defaults[k])
        return f"{self.hierarchy}@{format_positions(self.hierarchy_levels)}{extra}"

    def variant(self) -> dict[str, Any]:
        """The fields that tell ablation variants apart, in canonical string form (tidy result columns)."""
        has_block, stss = self.block != "none", self.block in SELFY_BLOCKS  # the STSS fields mean nothing elsewhere
        return {
            "backbone": self.backbone,
            "frames": self.frames,
            "block": self.block,
            "offsets": format_offsets(self.offsets) if stss else "none",
            "window": format_window(self.window) if stss else "none",
            "extractor": self.extractor if stss else "none",
            "integrator": self.integrator if stss else "none",
            "similarity": self.similarity if stss else "none",
            "fusion": self.fusion if stss else "none",
            "position": format_positions(self.position) if has_block else "none",
            "hierarchy": self.hierarchy_label(),
            "options": ",".join(self.block_options) if self.block_options else "none",
        }


FLIPS = ("none", "skip", "swap")
SCHEDULES = ("step", "cosine")
OPTIMIZERS = ("sgd", "adamw")
PRESET_NAMES = ("smoke", "quick", "paper")

# Dataset conventions (``--data-root``, ``--train-list``, ``--val-list``, ``--categories`` and
# ``--frame-template`` override them). List files hold ``<folder or video> <num_frames> <label>``.
DATASETS: dict[str, dict[str, Any]] = {
    "synthetic": dict(num_classes=16, flip="none", metric="top1"),
    # any folder of video files and frame folders, searched recursively, no list and no labels: for pretraining
    # (the classifier it builds is never used; fine-tune the result on a labelled dataset)
    "videos": dict(num_classes=2, flip="none", metric="top1"),
    "something-v1": dict(num_classes=174, template="{:05d}.jpg", train_list="train_videofolder.txt",
                         val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="top1",
                         list_format="tsn"),  # SS-V1 ships frames only: its lists are TSN lists
    "something-v2": dict(num_classes=174, template="{:06d}.jpg", train_list="train_videofolder.txt",
                         val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="top1"),
    "diving48": dict(num_classes=48, template="img_{:05d}.jpg", train_list="train_videofolder.txt",
                     val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="top1"),
    "gym99": dict(num_classes=99, template="img_{:05d}.jpg", train_list="train_videofolder.txt",
                  val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="mean_class"),
    "gym288": dict(num_classes=288, template="img_{:05d}.jpg", train_list="train_videofolder.txt",
                   val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="mean_class"),
}


@dataclass(frozen=True)
class DataConfig:
    """Where clips come from and how they are sampled and augmented."""

    dataset: str = "synthetic"
    data_root: str = ""
    train_list: str = ""  # "" = the dataset's convention, under data_root
    val_list: str = ""
    categories: str = ""
    frame_template: str = ""
    # the lists' format (auto: told from the file): tsn, two-column, ssv2-json, diving48-json (data/lists.py)
    list_format: str = field(default="auto", metadata=NOT_IDENTITY)
    size: int = 224  # crop side fed to the network
    resize: tuple[int, int] = (240, 320)  # frames are first resized to (H, W)
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)  # random scale crop (TSN)
    flip: str = ""  # none | skip (never flip direction classes) | swap (flip, swap to the mirrored class)
    test_clips: int = 1  # 1 or 2 clips averaged at test time
    # 1 (centre) or 3 crops (left / centre / right along the longer side, TSN's three-crop) per test clip
    test_crops: int = field(default=1, metadata=KEY_IF_SET)
    workers: int = field(default=4, metadata=NOT_IDENTITY)  # loader processes: items are seeded, so any count gives the same clips
    check: bool = field(default=True, metadata=NOT_IDENTITY)  # check every listed folder and its last frame before training
    # the built-in benchmark
    synthetic_train: int = 2000
    synthetic_val: int = 800
    synthetic_seed: int = 0
    synthetic_distractors: int = 1  # static extra objects per clip: 0..N (besides the actor and the second object)
    # the share of the training clips (and labels) used: the same clips for every seed, the same share of
    # every class (label-efficiency experiments)
    label_fraction: float = field(default=1.0, metadata=KEY_IF_SET)

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset '{self.dataset}': choose from {', '.join(DATASETS)}")
        if self.list_format not in LIST_FORMATS:
            raise ValueError(f"unknown list format '{self.list_format}': choose from {', '.join(LIST_FORMATS)}")
        if self.flip and self.flip not in FLIPS:
            raise ValueError(f"unknown flip policy '{self.flip}': choose from {', '.join(FLIPS)}")
        if self.test_clips not in (1, 2):
            raise ValueError(f"test_clips must be 1 or 2, got {self.test_clips}")
        if self.test_crops not in (1, 3):
            raise ValueError(f"test_crops must be 1 (centre) or 3 (three-crop), got {self.test_crops}")
        _number(self.size, "size (pixels)", 16, integer=True)
        _number(self.workers, "workers", 0, integer=True)
        _number(self.synthetic_train, "synthetic_train", 1, integer=True)
        _number(self.synthetic_val, "synthetic_val", 1, integer=True)
        _number(self.synthetic_distractors, "synthetic_distractors", 0, integer=True)
        _number(self.label_fraction, "label_fraction", 0, 1, lo_open=True)
        object.__setattr__(self, "resize", tuple(int(v) for v in self.resize))
        object.__setattr__(self, "scales", tuple(float(v) for v in self.scales))
        for v in self.resize:
            _number(v, "resize", 1)
        for v in self.scales:
            _number(v, "scales", 0, 1, lo_open=True)

    @property
    def conventions(self) -> dict[str, Any]:
        return DATASETS[self.dataset]

    @property
    def flip_policy(self) -> str:
        return self.flip or self.conventions["flip"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. Defaults are SPEC §5's Something-Something recipe."""

    epochs: int = 50
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd (paper: momentum, Nesterov) | adamw (fast from-scratch CPU presets)
    lr: float = 0.01
    schedule: str = "step"  # step | cosine
    lr_steps: tuple[int, ...] = (30, 40)
    warmup: int = 0  # epochs of linear warm-up (cosine recipe: 10)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    clip_grad: float = 20.0  # gradient-norm clipping; 0 disables
    seed: int = 0
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16)
    channels_last: bool = True
    label_smoothing: float = 0.0
    # validate every N epochs (the last epoch always); 0 = only after the last. Validation draws no random
    # numbers and changes no weights, so it is not part of the run key.
    eval_every: int = field(default=1, metadata=NOT_IDENTITY)
    # also write TensorBoard event files (RUN/tensorboard): scalars per epoch, the config as hparams
    tensorboard: bool = field(default=False, metadata=NOT_IDENTITY)
    # an auxiliary loss added to the classification loss: hcml = the motion hierarchy's InfoNCE
    aux: str = field(default="none", metadata=KEY_IF_SET)
    aux_weight: float = field(default=1.0, metadata=KEY_IF_SET)
    # the training step under torch.compile (inductor, static shapes; validation stays eager). Compiled kernels
    # round differently, so a compiled run has its own run key. `selfy-lab bench --compile` measures what it
    # buys on a device (results/README.md for the CPU).
    compile: bool = field(default=False, metadata=KEY_IF_SET)
    # PyTorch's deterministic kernels only (torch.use_deterministic_algorithms), so that a CUDA run repeats to
    # the bit on the same machine; slower there. CPU runs repeat without it, on the same thread count. Its
    # kernels may round differently, so such a run has its own run key.
    deterministic: bool = field(default=False, metadata=KEY_IF_SET)
    # supervised (labels, cross-entropy) or hcml (`selfy-lab pretrain`: the hierarchy's InfoNCE alone)
    objective: str = field(default="supervised", metadata=KEY_IF_SET)
    # a linear probe: the pretrained parts (backbone, hierarchy) stay fixed, BatchNorm statistics included
    freeze_backbone: bool = field(default=False, metadata=KEY_IF_SET)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer '{self.optimizer}': choose from {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule '{self.schedule}': choose from {', '.join(SCHEDULES)}")
        _number(self.epochs, "epochs", 1, integer=True)
        _number(self.batch_size, "batch_size", 1, integer=True)
        _number(self.lr, "lr", 0, lo_open=True)
        _number(self.warmup, "warmup (epochs)", 0)
        _number(self.momentum, "momentum", 0, 1, hi_open=True)
        _number(self.weight_decay, "weight_decay", 0)
        _number(self.clip_grad, "clip_grad", 0)
        _number(self.seed, "seed", 0, integer=True)
        _number(self.label_smoothing, "label_smoothing", 0, 1, hi_open=True)
        _number(self.eval_every, "eval_every", 0, integer=True)
        _choice(self.aux, AUX_LOSSES, "auxiliary loss")
        _choice(self.objective, OBJECTIVES, "objective")
        if self.objective == "hcml" and self.aux != "none":
            raise ValueError("pretraining (objective hcml) has no labels to add an auxiliary loss to: drop --aux")
        _number(self.aux_weight, "aux_weight", 0)
        object.__setattr__(self, "lr_steps", tuple(int(v) for v in self.lr_steps))


def future_leak(model: ModelConfig) -> str:
    """Why a motion level's input already holds frames after its own (so "predict the future" can be solved by
    copying), or "" when it does not: a TSM backbone, or a block that mixes later frames in before (or inside)
    the highest level's stage. SELFY blocks whose offsets are all <= 0 look back only."""
    if model.tsm:
        return "the TSM backbone shifts frame t+1's channels into frame t in every residual block"
    if model.block == "none" or (model.block in SELFY_BLOCKS and max(model.offsets) <= 0):
        return ""
    top = max(POSITIONS.index(p) for p in model.hierarchy_levels)
    for pos in model.position:
        stage = POSITIONS.index(position_stage(pos))
        if stage < top or (stage == top and pos.endswith(EVERY)):
            return f"the {model.block} block at {pos} mixes later frames into the features of the levels after it"
    return ""


@dataclass(frozen=True)
class RunConfig:
    """One training run: what was trained, on what, how. Saved resolved in every run directory."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = field(default="paper", metadata=NOT_IDENTITY)  # where the values came from; the values count
    experiment: str = field(default="", metadata=NOT_IDENTITY)  # the name results are filed under

    def __post_init__(self):
        if "hcml" in (self.train.aux, self.train.objective) and self.model.hierarchy == "none":  # the loss needs its hierarchy
            object.__setattr__(self, "model", dataclasses.replace(self.model, hierarchy="diff"))
        if self.data.dataset == "videos" and self.train.objective == "supervised":
            raise ValueError("--dataset videos holds no labels: pretrain on it (selfy-lab pretrain --dataset videos "
                             "--data-root DIR), then fine-tune with selfy-lab train --pretrained RUN on a labelled dataset")
        if self.train.freeze_backbone and self.train.aux != "none":
            raise ValueError("--freeze-backbone (a linear probe) keeps the motion hierarchy fixed: it has no "
                             "contrastive loss to add, drop --aux")
        if self.train.freeze_backbone and self.model.pretrained in ("", "none"):
            raise ValueError("--freeze-backbone (a linear probe) needs pretrained weights: pass --pretrained with a "
                             "run of selfy-lab pretrain, imagenet or a weights file")
        if "hcml" in (self.train.aux, self.train.objective) and not self.model.hcml_allow_leak:
            leak = future_leak(self.model)
            if leak:
                raise ValueError(f"the contrastive objective predicts the future, and {leak}: the prediction can be "
                                 f"copied; use TSN with causal blocks, or set hcml_allow_leak (--hcml-allow-leak) to "
                                 f"train it anyway")
        if self.preset not in PRESET_NAMES:
            raise ValueError(f"unknown preset '{self.preset}': choose from {', '.join(PRESET_NAMES)}")
        if self.model.num_classes != self.data.conventions["num_classes"] and self.data.dataset == "synthetic":
            raise ValueError(f"the built-in benchmark has {self.data.conventions['num_classes']} classes, "
                             f"the model has {self.model.num_classes}")

    def variant(self) -> dict[str, Any]:
        """The model's variant fields, the auxiliary loss, where its weights started (scratch, imagenet or a
        file, ``-probe`` when they stayed fixed) and the share of training labels (tidy result columns)."""
        src = self.model.pretrained
        init = "scratch" if src in ("", "none") else "imagenet" if src == "imagenet" else "file"
        return {**self.model.variant(), "aux": self.train.aux,
                "init": init + ("-probe" if self.train.freeze_backbone else ""), "labels": f"{self.data.label_fraction:g}"}

    @property
    def run_hash(self) -> str:
        """The run's key (its directory name and the ``run_id`` column): a hash of every field that changes
        the result, i.e. all but those marked ``NOT_IDENTITY``."""
        blob = json.dumps(identity(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


# Presets: partial configs applied on top of the defaults (then dataset conventions, YAML, flags).
PRESETS: dict[str, dict[str, Any]] = {
    # seconds: for tests and for checking an installation
    "smoke": dict(
        model=dict(backbone="tsn-r18-w8", frames=4, window=(5, 5), reduce=1, dropout=0.0),
        data=dict(size=32, synthetic_train=64, synthetic_val=32, workers=0, synthetic_distractors=1),
        train=dict(epochs=1, batch_size=16, optimizer="adamw", lr=0.002, weight_decay=0.05, schedule="cosine",
                   warmup=0, lr_steps=()),
    ),
    # the CPU default on the built-in benchmark (tuned on seeds >= 100, results/tuning/): narrow TSN-R18 from
    # scratch at 64x64. The STSS takes the reference code's per-position reduction (res3's 8x8 -> 4x4, as
    # 28x28 -> 14x14 at 224) with a 3x3 window (+-25% of the frame, as 9x9 on 14x14). From scratch, the
    # block's last BN starts at 1 (zero_init false): it learns from the first step, and the classifier starts
    # at std 0.01 (TSN's 0.001 left some seeds at the uniform prediction for epochs; results/tuning/README.md). Learning follows the clips seen, and a batch of 32 costs less per clip
    # than 16 on a CPU; no dropout; validation after the last epoch only.
    "quick": dict(
        model=dict(backbone="tsn-r18-w16", frames=8, reduce=0, window=(3, 3), dropout=0.0, zero_init=False,
                   head_std=0.01),
        data=dict(size=64, workers=0, synthetic_distractors=0),
        train=dict(epochs=6, batch_size=32, optimizer="adamw", lr=0.004, weight_decay=0.05, schedule="cosine",
                   warmup=1, lr_steps=(), eval_every=0),
    ),
    # SPEC §5: SGD + Nesterov, lr 0.01, x0.1 at 30/40 of 50 epochs, dropout 0.5, clip 20, batch 64
    "paper": dict(model=dict(pretrained="imagenet", dropout=0.5), data=dict(size=224), train=dict()),
}
# SPEC §5: Diving-48 and FineGym use a cosine schedule with 10 warm-up epochs, 30 / 40 epochs
PAPER_DATASET_TRAIN = {
    "diving48": dict(schedule="cosine", warmup=10, epochs=30, lr_steps=()),
    "gym99": dict(schedule="cosine", warmup=10, epochs=40, lr_steps=()),
    "gym288": dict(schedule="cosine", warmup=10, epochs=40, lr_steps=()),
}


def resolve(preset: str = "paper", dataset: str | None = None, overrides: dict[str, Any] | None = None,
            experiment: str = "") -> RunConfig:
    """defaults -> preset -> dataset conventions -> ``overrides`` (YAML, then flags) -> RunConfig."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}': choose from {', '.join(PRESETS)}")
    layers: list[dict[str, Any]] = [PRESETS[preset]]
    overrides = dict(overrides or {})
    ds = dataset or (overrides.get("data") or {}).get("dataset") or "synthetic"
    if ds not in DATASETS:
        raise ValueError(f"unknown dataset '{ds}': choose from {', '.join(DATASETS)}")
    layers.append(dict(model=dict(num_classes=DATASETS[ds]["num_classes"]), data=dict(dataset=ds)))
    if preset == "paper" and ds in PAPER_DATASET_TRAIN:
        layers.append(dict(train=PAPER_DATASET_TRAIN[ds]))
    if preset != "paper" and ds != "synthetic":
        layers.append(dict(data=dict(size=112)))  # real frames: keep the CPU presets small, not 64
    layers.append(overrides)
    merged = deep_merge(*layers)
    merged["preset"] = preset
    merged["experiment"] = experiment
    return from_dict(RunConfig, merged)


def deep_merge(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Nested dicts merged left to right: a later layer's value wins, sub-dicts merge key by key.
    The one merge of the package (presets, experiment files, flags, sweep variants)."""
    out: dict[str, Any] = {}
    for layer in layers:
        for k, v in (layer or {}).items():
            out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---- generic helpers for nested frozen dataclasses ----

def to_dict(cfg) -> dict[str, Any]:
    """Plain dict (tuples as lists) suitable for YAML/JSON."""

    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in fields(v)}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v

    return conv(cfg)


def from_dict(cls, data: dict[str, Any] | None, where: str = "config"):
    """Build a (nested) dataclass from a partial dict; unknown keys are an error naming the key."""
    data = dict(data or {})
    kwargs = {}
    known = {f.name: f for f in fields(cls)}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{where}: unknown field '{key}' (known: {', '.join(known)})")
        f = known[key]
        sub = _dataclass_type(cls, f)
        kwargs[key] = from_dict(sub, value, f"{where}.{key}") if sub and isinstance(value, dict) else value
    return cls(**kwargs)


def _dataclass_type(cls, f):
    t = typing.get_type_hints(cls).get(f.name)
    return t if isinstance(t, type) and dataclasses.is_dataclass(t) else None


def override(cfg, changes: dict[str, Any] | None, where: str = "config"):
    """``cfg`` (a config dataclass) with a partial nested dict of changes applied, validated like a new one."""
    if not changes:
        return cfg
    return from_dict(type(cfg), deep_merge(to_dict(cfg), changes), where)


def identity(cfg) -> dict[str, Any]:
    """``to_dict(cfg)`` without the fields marked ``NOT_IDENTITY`` and the ``KEY_IF_SET`` fields at their
    default: what keys a run."""
    if not dataclasses.is_dataclass(cfg):
        return cfg
    return {f.name: identity(getattr(cfg, f.name)) if dataclasses.is_dataclass(getattr(cfg, f.name))
            else to_dict(getattr(cfg, f.name)) for f in fields(cfg) if _keys_run(cfg, f)}


def _keys_run(cfg, f) -> bool:
    key = f.metadata.get("identity", True)
    if key == "if_set":
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        return getattr(cfg, f.name) != default
    return key
