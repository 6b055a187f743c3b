"""Experiment files and the resolution of a run's config from an experiment file and flags.

An experiment file is YAML holding only what differs from the defaults, each field with a comment saying
why. Top-level keys: ``name``, ``paper_table``, ``preset``, ``dataset``, ``model``, ``data``, ``train``,
``sweep`` (see :func:`selfy_lab.studies.ablate.plan_sweep`), ``report`` (what the sweep reports, one of
:data:`selfy_lab.config.vocabulary.REPORTS`; recorded in its sweep.yaml) and ``presets`` (per-preset additions of
model / data / train / sweep sections).

Resolution, later layers winning: defaults -> preset -> dataset conventions -> experiment file (its
``presets`` section of the chosen preset included) -> flags. Flags are named like the config fields they
set (``--lr`` sets ``train.lr``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..core.errors import SelfyError
from ..core.frozen import deep_merge, override
from ..core.textfiles import load_yaml, read_text
from .presets import resolve
from .run import DataConfig, ModelConfig, RunConfig, TrainConfig
from .schema import check_experiment
from .vocabulary import PRESET_NAMES

_SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
# flag name -> config section, from the dataclasses themselves (no field name is used twice)
SECTION_OF = {f.name: section for section, cls in _SECTIONS.items() for f in fields(cls)}


@dataclass
class Experiment:
    name: str = ""
    preset: str | None = None
    dataset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # model / data / train sections
    sweep: dict[str, Any] = field(default_factory=dict)
    paper_table: str = ""  # the paper table this sweep reproduces (selfy_lab.core.paper.TABLES key)
    report: str = ""  # what the sweep reports (vocabulary.REPORTS); empty: not declared
    presets: dict[str, Any] = field(default_factory=dict)  # per-preset additions: model / data / train / sweep

    def for_preset(self, preset: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(overrides, sweep) with the section of ``preset`` applied on top."""
        extra = self.presets.get(preset) or {}
        overrides = deep_merge(self.overrides, {k: v for k, v in extra.items() if k in _SECTIONS})
        return overrides, deep_merge(self.sweep, extra.get("sweep"))


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_file():
        raise SelfyError(f"experiment file {path} does not exist")
    data = load_yaml(read_text(path), str(path)) or {}
    check_experiment(path, data)
    preset = data.get("preset")
    if preset is not None and preset not in PRESET_NAMES:
        raise SelfyError(f"{path}: unknown preset '{preset}' (known: {', '.join(PRESET_NAMES)})")
    presets = data.get("presets") or {}
    bad = [k for k in presets if k not in PRESET_NAMES]
    if bad:
        raise SelfyError(f"{path}: unknown preset section '{bad[0]}' (known: {', '.join(PRESET_NAMES)})")
    return Experiment(name=str(data.get("name") or path.stem), preset=preset, dataset=data.get("dataset"),
                      overrides={k: data[k] for k in _SECTIONS if data.get(k)}, sweep=dict(data.get("sweep") or {}),
                      paper_table=str(data.get("paper_table") or ""), report=str(data.get("report") or ""),
                      presets=presets)


def default_preset(dataset: str | None) -> str:
    """``quick`` on the built-in benchmark, ``paper`` on real datasets."""
    return "quick" if (dataset or "synthetic") == "synthetic" else "paper"


def build_run(preset: str | None, dataset: str | None, *, overrides: dict[str, Any], experiment: str = "") -> RunConfig:
    """Resolve a run config (unset preset: :func:`default_preset`); bad values become one-line errors."""
    ds = dataset or (overrides.get("data") or {}).get("dataset") or "synthetic"
    try:
        return resolve(preset or default_preset(ds), ds, overrides, experiment)
    except (ValueError, TypeError) as e:
        raise SelfyError(str(e)) from None


def flag_overrides(flags: dict[str, Any]) -> dict[str, Any]:
    """The flags that name a config field (and are set) as a nested override dict."""
    out: dict[str, Any] = {}
    for k, v in flags.items():
        if k in SECTION_OF and v is not None:
            out.setdefault(SECTION_OF[k], {})[k] = v
    return out


_SET = re.compile(r"^\s*([a-z]+)\.([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$", re.S)


def set_overrides(items: list[str] | None) -> dict[str, Any]:
    """``--set SECTION.FIELD=VALUE`` items as a nested override dict: any field of the model, data or train
    section, the value read as a YAML scalar or list (``0.01``, ``true``, ``[res2, res3]``) and then typed and
    checked like an experiment file's. A wrong section or field is one line naming the choices."""
    out: dict[str, Any] = {}
    for item in items or []:
        m = _SET.match(str(item))
        if not m or m.group(1) not in _SECTIONS:
            raise SelfyError(f"--set {str(item)[:60]}: expected SECTION.FIELD=VALUE, SECTION one of "
                             f"{', '.join(_SECTIONS)} (e.g. --set train.weight_decay=0.01)")
        section, name, text = m.groups()
        names = [f.name for f in fields(_SECTIONS[section])]
        if name not in names:
            close = [n for n in names if n.startswith(name[:3])] or names
            raise SelfyError(f"--set {section}.{name}: {section} has no field {name} (its fields include "
                             f"{', '.join(close[:8])}; `selfy-lab config` prints them all)")
        out.setdefault(section, {})[name] = load_yaml(text, f"--set {section}.{name}") if text.strip() else ""
    return out


def run_from_flags(flags: dict[str, Any], default_name: str = "") -> tuple[RunConfig, Experiment]:
    """The run a command line describes: ``flags`` maps flag names to values (None = not given);
    ``flags["experiment"]`` is an optional experiment file, ``flags["settings"]`` the ``--set`` items (applied
    last: over the file and the other flags). Returns the run (its experiment name: the
    file's, else ``default_name``) and the experiment, whose ``sweep`` is that of the chosen preset."""
    exp = load_experiment(flags["experiment"]) if flags.get("experiment") else Experiment()
    dataset = flags.get("dataset") or exp.dataset
    preset = flags.get("preset") or exp.preset or default_preset(dataset)
    exp_overrides, exp.sweep = exp.for_preset(preset) if preset in PRESET_NAMES else ({}, exp.sweep)
    overrides = deep_merge(deep_merge(exp_overrides, flag_overrides(flags)), set_overrides(flags.get("settings")))
    return build_run(preset, dataset, overrides=overrides, experiment=exp.name or default_name), exp


def model_from_flags(flags: dict[str, Any], base: ModelConfig | None = None) -> ModelConfig:
    """``base`` (default: the paper's SELFYNet-TSM-R18) with the set model flags applied."""
    changes = {k: v for k, v in flags.items() if SECTION_OF.get(k) == "model" and v is not None}
    try:
        return override(base or ModelConfig(), changes, "model")
    except (ValueError, TypeError) as e:
        raise SelfyError(str(e)) from None
