"""Frozen configuration dataclasses, their vocabularies, validation, YAML load/save and a stable hash.

This module imports no torch, so the CLI can validate input and print help instantly.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .grammar import format_offsets, format_window, parse_offsets, parse_window

# ---- vocabularies (the models import these) ----
BACKBONE_RE = re.compile(r"^(tsn|tsm)-r(18|34|50)(?:-w(\d+))?$")
BACKBONE_EXAMPLES = ("tsn-r18", "tsm-r18", "tsn-r34", "tsm-r34", "tsn-r50", "tsm-r50", "tsn-r18-w16", "tsm-r18-w16")
BLOCKS = ("none", "selfy", "selfy-s", "stcb", "stcb+stcb", "selfy-s+selfy-s", "parallel", "sequential")
EXTRACTORS = ("smax", "kscm", "mlp", "conv", "conv3d")
INTEGRATORS = ("conv", "mlp", "fc", "none")
SIMILARITIES = ("cosine", "dot", "embedded_gaussian")
FUSIONS = ("R+V", "R")
RESIDUALS = ("reference", "paper")
FUSE_HEADS = ("reference", "paper")
POSITIONS = ("pool1", "res2", "res3", "res4", "res5")
# STSS resolution reduction per insertion point (reference code: res3's 28x28 -> 14x14 at 224 input)
DEFAULT_REDUCE = {"pool1": 4, "res2": 4, "res3": 2, "res4": 1, "res5": 1}
REDUCE_CHOICES = (1, 2, 4)


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} '{value}': choose from {', '.join(choices)}")
    return value


def parse_positions(spec: str | tuple | list) -> tuple[str, ...]:
    """``res3`` or ``res2+res3+res4`` -> positions in network order."""
    items = list(spec) if isinstance(spec, (tuple, list)) else [p.strip() for p in str(spec).split("+")]
    for p in items:
        _choice(p, POSITIONS, "position")
    if len(set(items)) != len(items):
        raise ValueError(f"position '{spec}' names a stage twice")
    return tuple(sorted(items, key=POSITIONS.index))


def format_positions(positions: tuple[str, ...]) -> str:
    return "+".join(positions)


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

    def __post_init__(self):
        m = BACKBONE_RE.match(self.backbone)
        if not m:
            raise ValueError(
                f"unknown backbone '{self.backbone}': use tsn|tsm-r18|r34|r50, optionally narrow as -wN "
                f"(e.g. {', '.join(BACKBONE_EXAMPLES)})"
            )
        if m.group(3) and int(m.group(3)) < 8:
            raise ValueError(f"backbone '{self.backbone}': the narrow width must be at least 8")
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
        if self.reduce and self.reduce not in REDUCE_CHOICES:
            raise ValueError(f"reduce must be 0 (per-position default) or one of {REDUCE_CHOICES}, got {self.reduce}")
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.block != "none" and max(abs(o) for o in self.offsets) >= self.frames:
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
        return self.reduce or DEFAULT_REDUCE[position]

    def variant(self) -> dict[str, Any]:
        """The fields that tell ablation variants apart, in canonical string form (tidy result columns)."""
        has_block = self.block != "none"
        return {
            "backbone": self.backbone,
            "frames": self.frames,
            "block": self.block,
            "offsets": format_offsets(self.offsets) if has_block else "none",
            "window": format_window(self.window) if has_block else "none",
            "extractor": self.extractor if has_block else "none",
            "integrator": self.integrator if has_block else "none",
            "similarity": self.similarity if has_block else "none",
            "fusion": self.fusion if has_block else "none",
            "position": format_positions(self.position) if has_block else "none",
        }


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


def merge(cfg, overrides: dict[str, Any] | None, where: str = "config"):
    """Return ``cfg`` with a partial nested dict of overrides applied."""
    if not overrides:
        return cfg
    kwargs = {}
    known = {f.name: f for f in fields(cfg)}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"{where}: unknown field '{key}' (known: {', '.join(known)})")
        cur = getattr(cfg, key)
        if dataclasses.is_dataclass(cur) and isinstance(value, dict):
            kwargs[key] = merge(cur, value, f"{where}.{key}")
        else:
            kwargs[key] = value
    return replace(cfg, **kwargs)


def config_hash(cfg, length: int = 10) -> str:
    """Stable short hash of a config's resolved values."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]

