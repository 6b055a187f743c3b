"""The shape of an experiment file, checked in one place before anything reads it.

Each model / data / train field is checked against its config dataclass's type (text, integer, number,
true/false, or a list where a field holds several values); the sweep section against the keys
:func:`selfy_lab.studies.ablate.plan_sweep` reads. Values are checked further (ranges, vocabularies) where the
configs are built. Every error names the file, the field and what is expected, on one line.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from ..core.errors import SelfyError
from ..core.frozen import type_hints
from .run import DataConfig, ModelConfig, TrainConfig
from .vocabulary import REPORTS

SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
TOP_KEYS = ("preset", "dataset", "model", "data", "train", "sweep", "name", "paper_table", "report", "presets")
SWEEP_KEYS = ("offsets", "ladder", "baseline", "axes", "variants", "base_offsets", "seeds")
# tuple fields whose one-value forms a parser reads ("-3..3", "9x9", "res2+res3", "subsample=false")
_SPEC_FIELDS = {"offsets", "window", "position", "hierarchy_levels", "block_options"}
_MAY_BE_EMPTY = {"lr_steps", "block_options"}


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    return {int: "an integer", float: "a number", str: "text", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__)


def check_field(where: str, cls: type, name: str, value: Any) -> None:
    """``value`` may stand for field ``name`` of the config dataclass ``cls``; else a one-line error."""
    hint = type_hints(cls)[name]
    origin = typing.get_origin(hint)
    if value is None:
        raise SelfyError(f"{where}.{name} has no value: give one or remove the line")
    if origin is tuple:
        if isinstance(value, dict) and name == "block_options":
            return
        if isinstance(value, list):
            if not value and name not in _MAY_BE_EMPTY:
                raise SelfyError(f"{where}.{name} is an empty list: give at least one value")
            bad = [v for v in value if isinstance(v, (list, dict)) or v is None]
            if bad:
                raise SelfyError(f"{where}.{name} holds {_kind(bad[0])} ({bad[0]!r}) among its values")
            return
        if name in _SPEC_FIELDS and isinstance(value, (str, int)) and not isinstance(value, bool):
            return
        raise SelfyError(f"{where}.{name} must be a list, got {_kind(value)} ({value!r})")
    if hint is bool and not isinstance(value, bool):
        raise SelfyError(f"{where}.{name} must be true or false, got {_kind(value)} ({value!r})")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise SelfyError(f"{where}.{name} must be an integer, got {_kind(value)} ({value!r})")
    if hint is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise SelfyError(f"{where}.{name} must be a number, got {_kind(value)} ({value!r})")
    if hint is str and not isinstance(value, str):
        raise SelfyError(f"{where}.{name} must be text, got {_kind(value)} ({value!r})")


def check_section(where: str, section: str, value: Any) -> None:
    """A model / data / train section: a mapping of that config's fields."""
    if not isinstance(value, dict):
        raise SelfyError(f"{where}: must be a mapping of {section} fields (e.g. 'backbone: tsm-r18'), got "
                         f"{_kind(value)} ({value!r})")
    cls = SECTIONS[section]
    known = [f.name for f in dataclasses.fields(cls)]
    for name, v in value.items():
        if name not in known:
            raise SelfyError(f"{where}: unknown field '{name}' (known: {', '.join(known)})")
        check_field(where, cls, name, v)


def _one_or_list(where: str, value: Any, what: str) -> None:
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise SelfyError(f"{where} is an empty list: give at least one {what}")
    for v in items:
        if v is None or isinstance(v, (bool, list, dict)) or not isinstance(v, (str, int, float)):
            raise SelfyError(f"{where} must be {what}s (text or numbers), got {_kind(v)} ({v!r})")


def check_sweep(where: str, sweep: Any) -> None:
    if not isinstance(sweep, dict):
        raise SelfyError(f"{where}: must be a mapping (offsets, axes, variants, seeds, ...), got {_kind(sweep)}")
    for k, v in sweep.items():
        w = f"{where}.{k}"
        if k not in SWEEP_KEYS:
            raise SelfyError(f"{where}: unknown sweep key '{k}' (known: {', '.join(SWEEP_KEYS)})")
        if k in ("ladder", "baseline") and not isinstance(v, bool):
            raise SelfyError(f"{w} must be true or false, got {_kind(v)} ({v!r})")
        if k in ("offsets", "base_offsets"):
            _one_or_list(w, v, "offset set")
        if k == "seeds" and not (isinstance(v, int) and not isinstance(v, bool)) and not (
                isinstance(v, list) and v and all(isinstance(s, int) and not isinstance(s, bool) for s in v)):
            raise SelfyError(f"{w}: seeds must be a count, or the list of seeds must hold non-negative integers; "
                             f"got {_kind(v)} ({v!r})")
        if k == "axes":
            if not isinstance(v, dict):
                raise SelfyError(f"{w} must be a mapping of axis: values, got {_kind(v)} ({v!r})")
            for axis, values in v.items():
                _one_or_list(f"{w}.{axis}", values, "value")
        if k == "variants":
            if not isinstance(v, list) or not v:
                raise SelfyError(f"{w} must be a non-empty list of mappings (e.g. - {{block: tea}}), got {_kind(v)}")
            for i, variant in enumerate(v):
                if not isinstance(variant, dict):
                    raise SelfyError(f"{w}[{i}] must be a mapping of fields (e.g. {{block: tea}}), got {_kind(variant)}")
                for name, value in variant.items():
                    cls = next((c for c in SECTIONS.values() if name in {f.name for f in dataclasses.fields(c)}), None)
                    if cls is None:
                        raise SelfyError(f"{w}[{i}]: unknown field '{name}'")
                    check_field(f"{w}[{i}]", cls, name, value)


def check_experiment(path: Path, data: Any) -> None:
    """The whole file: its top-level keys, sections, presets and sweep."""
    if not isinstance(data, dict):
        raise SelfyError(f"{path}: expected a mapping of sections (model, data, train, sweep, ...), got {_kind(data)}")
    for key, value in data.items():
        if key not in TOP_KEYS:
            raise SelfyError(f"{path}: unknown section '{key}' (known: {', '.join(TOP_KEYS)})")
        if key in SECTIONS and value is not None:
            check_section(f"{path}: {key}", key, value)
        elif key == "sweep" and value is not None:
            check_sweep(f"{path}: sweep", value)
        elif key in ("name", "paper_table", "preset", "dataset", "report") and value is not None and not isinstance(value, str):
            raise SelfyError(f"{path}: {key} must be text, got {_kind(value)} ({value!r})")
        elif key == "report" and value is not None and value not in REPORTS:
            raise SelfyError(f"{path}: unknown report '{value}' (known: {', '.join(REPORTS)})")
        elif key == "presets" and value is not None:
            if not isinstance(value, dict):
                raise SelfyError(f"{path}: presets must be a mapping of preset: sections, got {_kind(value)}")
            for preset, sections in value.items():
                if not isinstance(sections, dict):
                    raise SelfyError(f"{path}: presets.{preset} must be a mapping of sections, got {_kind(sections)}")
                for sec, v in sections.items():
                    if sec in SECTIONS:
                        check_section(f"{path}: presets.{preset}.{sec}", sec, v)
                    elif sec == "sweep":
                        check_sweep(f"{path}: presets.{preset}.sweep", v)
                    else:
                        raise SelfyError(f"{path}: presets.{preset}: unknown section '{sec}' "
                                         f"(known: model, data, train, sweep)")
