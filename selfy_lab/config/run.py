"""The configuration dataclasses (model, data, training, a run), their validation and a run's stable key.

The names a field may take live in :mod:`vocabulary`, the generic dataclass helpers in :mod:`frozen`, the
presets and :func:`~selfy_lab.config.presets.resolve` in :mod:`presets`. This module imports no torch, so the CLI can
validate input and print help instantly.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from ..core.frozen import KEY_IF_SET, NOT_IDENTITY, check_choice, check_number, identity
from .blocks import block_entry, is_outside_block
from .grammar import (
    EVERY, POSITIONS, format_offsets, format_positions, format_window, parse_block_options, parse_offsets,
    parse_positions, parse_window, position_stage,
)
from .vocabulary import (
    AUX_LOSSES, BACKBONE_EXAMPLES, BACKBONE_RE, BLOCKS, DATASETS, DEFAULT_REDUCE, EXTRACTORS, FLIPS, FUSE_HEADS,
    FUSIONS, HCML_PREDICTORS, HCML_TARGETS, HIERARCHIES, INTEGRATORS, LIST_FORMATS, MOTION_BLOCKS, OBJECTIVES,
    ON_MISSING, OPTIMIZERS, PRESET_NAMES, PREVIOUS_STAGE, REDUCE_CHOICES, RESIDUALS, SCHEDULES, SELFY_BLOCKS,
    SHIFT_PLACES, SIMILARITIES, STAGE_STRIDE, STSS_MEMORY,
)


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
            check_choice(self.block, BLOCKS, "block")
        check_choice(self.extractor, EXTRACTORS, "extractor")
        check_choice(self.integrator, INTEGRATORS, "integrator")
        check_choice(self.similarity, SIMILARITIES, "similarity")
        check_choice(self.fusion, FUSIONS, "fusion")
        check_choice(self.residual, RESIDUALS, "residual")
        check_choice(self.fuse, FUSE_HEADS, "fuse head")
        object.__setattr__(self, "offsets", parse_offsets(self.offsets))
        object.__setattr__(self, "window", parse_window(self.window))
        object.__setattr__(self, "position", parse_positions(self.position))
        object.__setattr__(self, "block_options", parse_block_options(self.block_options))
        if self.block_options and self.block in ("none", *SELFY_BLOCKS):
            raise ValueError(f"block options ({', '.join(self.block_options)}) are for the motion modules and your "
                             f"own module; block '{self.block}' takes none")
        if self.reduce and self.reduce not in REDUCE_CHOICES:
            raise ValueError(f"reduce must be 0 (per-position default) or one of {REDUCE_CHOICES}, got {self.reduce}")
        check_number(self.frames, "frames", 1, integer=True)
        check_number(self.num_classes, "num_classes", 2, integer=True)
        check_number(self.dropout, "dropout", 0, 1, hi_open=True)
        check_number(self.head_std, "head_std", 0, 1, lo_open=True)
        check_choice(self.hierarchy, HIERARCHIES, "hierarchy")
        check_number(self.shift_div, "shift_div", 2, integer=True)
        check_choice(self.shift_place, SHIFT_PLACES, "shift place")
        check_choice(self.stss_memory, STSS_MEMORY, "STSS memory mode")
        try:
            levels = parse_positions(self.hierarchy_levels)
        except ValueError:
            levels = (str(self.hierarchy_levels),)
        if not levels or any(p not in PREVIOUS_STAGE for p in levels):
            raise ValueError(f"hierarchy levels '{format_positions(levels)}': use stages among res2, res3, res4, res5 "
                             f"joined by + (each predicts the stage before it)")
        object.__setattr__(self, "hierarchy_levels", levels)
        check_number(self.hcml_delta, "hcml_delta", 1, integer=True)
        if self.hierarchy != "none" and self.hcml_delta >= self.frames:
            raise ValueError(f"hcml_delta {self.hcml_delta} looks past a {self.frames}-frame clip: use 1..{self.frames - 1}")
        check_number(self.hcml_tau, "hcml_tau", 0, lo_open=True)
        check_number(self.hcml_grid, "hcml_grid", 1, integer=True)
        check_choice(self.hcml_target, HCML_TARGETS, "hcml target")
        check_choice(self.hcml_predictor, HCML_PREDICTORS, "hcml predictor input")
        inside = self.block == "none" or bool(block_entry(self.block).inside)  # may it sit inside a residual block?
        if not inside and any(p.endswith(EVERY) for p in self.position):
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


@dataclass(frozen=True)
class DataConfig:
    """Where clips come from and how they are sampled and augmented."""

    dataset: str = "synthetic"
    data_root: str = ""
    train_list: str = ""  # "" = the dataset's convention, under data_root
    val_list: str = ""
    # a labelled test list (Diving-48, FineGym publish one): scored once, after the last epoch, never chosen on.
    # Scoring changes no weights, so it is not part of the run key
    test_list: str = field(default="", metadata=NOT_IDENTITY)
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
    # a listed clip that is not on disk: stop (one line naming the list's line) or skip (counted and printed; the
    # clips trained on then depend on the disk, so it is part of the run key when set)
    on_missing: str = field(default="stop", metadata=KEY_IF_SET)
    # the built-in benchmark
    synthetic_train: int = 2000
    synthetic_val: int = 800
    # the held-out test split (the generator's third split, disjoint from train and val): what reported tables
    # read; validation is what choices (recipes, presets, budgets) read. Scored after the last epoch only
    synthetic_test: int = field(default=800, metadata=NOT_IDENTITY)
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
        check_choice(self.on_missing, ON_MISSING, "on_missing")
        if self.flip and self.flip not in FLIPS:
            raise ValueError(f"unknown flip policy '{self.flip}': choose from {', '.join(FLIPS)}")
        if self.test_clips not in (1, 2):
            raise ValueError(f"test_clips must be 1 or 2, got {self.test_clips}")
        if self.test_crops not in (1, 3):
            raise ValueError(f"test_crops must be 1 (centre) or 3 (three-crop), got {self.test_crops}")
        check_number(self.size, "size (pixels)", 16, integer=True)
        check_number(self.workers, "workers", 0, integer=True)
        check_number(self.synthetic_train, "synthetic_train", 1, integer=True)
        check_number(self.synthetic_val, "synthetic_val", 1, integer=True)
        check_number(self.synthetic_test, "synthetic_test", 1, integer=True)
        check_number(self.synthetic_distractors, "synthetic_distractors", 0, integer=True)
        check_number(self.label_fraction, "label_fraction", 0, 1, lo_open=True)
        object.__setattr__(self, "resize", tuple(int(v) for v in self.resize))
        object.__setattr__(self, "scales", tuple(float(v) for v in self.scales))
        for v in self.resize:
            check_number(v, "resize", 1)
        for v in self.scales:
            check_number(v, "scales", 0, 1, lo_open=True)

    @property
    def conventions(self) -> dict[str, Any]:
        return DATASETS[self.dataset]

    @property
    def flip_policy(self) -> str:
        return self.flip or self.conventions["flip"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. Defaults are the paper's Something-Something recipe (Appendix A) and its reference script's."""

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
        check_number(self.epochs, "epochs", 1, integer=True)
        check_number(self.batch_size, "batch_size", 1, integer=True)
        check_number(self.lr, "lr", 0, lo_open=True)
        check_number(self.warmup, "warmup (epochs)", 0)
        check_number(self.momentum, "momentum", 0, 1, hi_open=True)
        check_number(self.weight_decay, "weight_decay", 0)
        check_number(self.clip_grad, "clip_grad", 0)
        check_number(self.seed, "seed", 0, integer=True)
        check_number(self.label_smoothing, "label_smoothing", 0, 1, hi_open=True)
        check_number(self.eval_every, "eval_every", 0, integer=True)
        check_choice(self.aux, AUX_LOSSES, "auxiliary loss")
        check_choice(self.objective, OBJECTIVES, "objective")
        if self.objective == "hcml" and self.aux != "none":
            raise ValueError("pretraining (objective hcml) has no labels to add an auxiliary loss to: drop --aux")
        check_number(self.aux_weight, "aux_weight", 0)
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
        self._check_window()
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

    def _check_window(self) -> None:
        """A SELFY block's matching window against its STSS map, before any allocation: a window wider than twice
        the map reaches only padding (and a far larger one would allocate for minutes)."""
        m = self.model
        if m.block not in SELFY_BLOCKS or not m.window:
            return
        for position in m.position:
            stage = position_stage(position)
            cells = math.ceil(math.ceil(self.data.size / STAGE_STRIDE[stage]) / m.reduce_at(stage))
            if max(m.window) > 2 * cells + 1:
                raise ValueError(f"window {format_window(m.window)} is larger than the STSS at {stage} can use: "
                                 f"{self.data.size}x{self.data.size} input makes it {cells}x{cells} cells, where "
                                 f"{2 * cells - 1}x{2 * cells - 1} reaches every displacement (at most "
                                 f"{2 * cells + 1}x{2 * cells + 1} is accepted)")

    @property
    def run_hash(self) -> str:
        """The run's key (its directory name and the ``run_id`` column): a hash of every field that changes
        the result, i.e. all but those marked ``NOT_IDENTITY``."""
        blob = json.dumps(identity(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]
