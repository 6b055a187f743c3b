"""Experiment files: YAML holding only what differs from the defaults, each field with a comment
saying why. Top-level keys: ``preset``, ``dataset``, ``model``, ``data``, ``train`` and, for sweeps,
``sweep`` (see ``selfy_lab.ablate``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import PRESET_NAMES, RunConfig, resolve
from .errors import SelfyError

_KEYS = ("preset", "dataset", "model", "data", "train", "sweep", "name", "paper_table", "presets")


@dataclass
class Experiment:
    name: str = ""
    preset: str | None = None
    dataset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # model / data / train sections
    sweep: dict[str, Any] = field(default_factory=dict)
    paper_table: str = ""  # the paper table this sweep reproduces (selfy_lab.paper.TABLES key)
    presets: dict[str, Any] = field(default_factory=dict)  # per-preset additions: model / data / train / sweep

    def for_preset(self, preset: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(overrides, sweep) with the section of ``preset`` applied on top."""
        extra = self.presets.get(preset) or {}
        overrides = merge_overrides(self.overrides, {k: v for k, v in extra.items() if k in ("model", "data", "train")})
        return overrides, {**self.sweep, **(extra.get("sweep") or {})}


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_file():
        raise SelfyError(f"experiment file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise SelfyError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise SelfyError(f"{path}: expected a mapping of sections (model, data, train, ...)")
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        raise SelfyError(f"{path}: unknown section '{unknown[0]}' (known: {', '.join(_KEYS)})")
    preset = data.get("preset")
    if preset is not None and preset not in PRESET_NAMES:
        raise SelfyError(f"{path}: unknown preset '{preset}' (known: {', '.join(PRESET_NAMES)})")
    overrides = {k: data[k] for k in ("model", "data", "train") if data.get(k)}
    presets = data.get("presets") or {}
    bad = [k for k in presets if k not in PRESET_NAMES]
    if bad:
        raise SelfyError(f"{path}: unknown preset section '{bad[0]}' (known: {', '.join(PRESET_NAMES)})")
    return Experiment(name=str(data.get("name") or path.stem), preset=preset, dataset=data.get("dataset"),
                      overrides=overrides, sweep=dict(data.get("sweep") or {}), paper_table=str(data.get("paper_table") or ""),
                      presets=presets)


def default_preset(dataset: str | None) -> str:
    """``quick`` on the built-in benchmark, ``paper`` on real datasets."""
    return "quick" if (dataset or "synthetic") == "synthetic" else "paper"


def build_run(preset: str | None, dataset: str | None, overrides: dict[str, Any], experiment: str = "") -> RunConfig:
    """Resolve a run config; unset preset means ``quick`` on the built-in benchmark, ``paper`` otherwise."""
    ds = dataset or (overrides.get("data") or {}).get("dataset") or "synthetic"
    try:
        return resolve(preset or ("quick" if ds == "synthetic" else "paper"), ds, overrides, experiment)
    except (ValueError, TypeError) as e:
        raise SelfyError(str(e)) from None


def merge_overrides(*layers: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in layers:
        for section, values in (layer or {}).items():
            if isinstance(values, dict):
                out.setdefault(section, {}).update({k: v for k, v in values.items()})
            else:
                out[section] = values
    return out
