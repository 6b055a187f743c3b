"""Models by name, the way timm and the Hugging Face conventions offer them::

    import selfy_lab
    selfy_lab.list_models("selfynet-*")              # ['selfynet-tsm-r18', 'selfynet-tsm-r34', ...]
    model = selfy_lab.create_model("selfynet-tsm-r50", num_classes=174, pretrained="imagenet")
    model = selfy_lab.from_pretrained("models/selfy-tsn-r18")   # an export of `selfy-lab export`, ready for eval

A name is ``[BLOCK-]FAMILY-rDEPTH``: ``tsm-r50`` the plain backbone, ``selfynet-tsm-r50`` with the SELFY block
(the paper's default settings of :class:`~selfy_lab.config.run.ModelConfig`), ``tea-tsn-r50`` with another motion
module. They are built from the same configuration as every command (``selfy-lab train --backbone tsm-r50
--block selfy``), so a model made here and one trained there have the same parameters in the same order.
"""
from __future__ import annotations

import fnmatch
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..config.run import ModelConfig
from ..config.vocabulary import MOTION_BLOCKS
from ..core.errors import SelfyError
from ..data.datasets import class_names_of
from ..engine.checkpoint import load_run
from ..engine.weights import load_pretrained
from ..models import build_model

FAMILIES, DEPTHS = ("tsn", "tsm"), (18, 34, 50)
PREFIXES = {"": "none", "selfynet-": "selfy", **{f"{b}-": b for b in MOTION_BLOCKS}}


def list_models(pattern: str = "*") -> list[str]:
    """Every model name :func:`create_model` builds that matches the shell ``pattern`` (``*``, ``selfynet-*``)."""
    names = [f"{p}{f}-r{d}" for p in PREFIXES for f in FAMILIES for d in DEPTHS]
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def model_config(name: str, **overrides: Any):
    """The :class:`~selfy_lab.config.run.ModelConfig` of a model name, with ``overrides`` (any of its fields, e.g.
    ``num_classes=174``, ``frames=16``, ``offsets="-2..2"``); a wrong name or field is one line."""
    if name not in list_models():
        close = list_models(f"*{name.split('-')[-1]}*") or list_models("selfynet-*")
        raise SelfyError(f"no model named '{name}': e.g. {', '.join(close[:6])} (selfy_lab.list_models() lists all)")
    prefix = next(p for p in sorted(PREFIXES, key=len, reverse=True) if name.startswith(p))
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SelfyError(f"create_model: ModelConfig has no field {unknown[0]} (its fields: {', '.join(sorted(known))})")
    try:
        return ModelConfig(**{"backbone": name[len(prefix):], "block": PREFIXES[prefix], **overrides})
    except (ValueError, TypeError) as e:
        raise SelfyError(f"create_model('{name}'): {e}") from None


def create_model(name: str, pretrained: str = "none", **overrides: Any):
    """A model by name (:func:`list_models`), randomly initialised, or with ``pretrained`` backbone weights
    (``imagenet``, a state-dict file, a selfy-lab run or export folder); ``overrides`` set any model field.
    The model is in training mode, as torchvision and timm return theirs; ``model.selfy_config`` holds its
    configuration."""
    cfg = model_config(name, pretrained=pretrained, **overrides)
    model = build_model(cfg)
    if pretrained not in ("", "none"):
        load_pretrained(model, pretrained, cfg.depth, cfg.width)
    model.selfy_config = cfg
    return model


def from_pretrained(path: str | Path, device: str = "cpu"):
    """A trained model from an export folder (or a run folder, or its checkpoint), in eval mode on ``device``,
    with ``model.class_names`` (its dataset's classes, index order) and ``model.selfy_config`` (the run's
    whole configuration)."""
    run, model = load_run(path, device)
    try:
        model.class_names = class_names_of(run)
    except SelfyError:  # a real dataset whose categories file is not on this machine
        model.class_names = [str(i) for i in range(run.model.num_classes)]
    model.selfy_config = run
    return model
