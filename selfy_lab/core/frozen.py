"""Generic helpers for nested frozen dataclasses (the configurations): the field markers that decide what keys
a run, validation at the edge, dict <-> dataclass, the package's one deep merge, and a config's identity."""
from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import fields
from typing import Any

# Fields marked ``NOT_IDENTITY`` do not change what a run computes (how many loader processes, whether
# the data is checked up front, how often it is validated, the names it is filed under): they are left
# out of the run key, so changing them re-uses a finished run.
NOT_IDENTITY = {"identity": False}
# Fields marked ``KEY_IF_SET`` key a run only when they differ from their default: a run that does not use an
# option keeps the key (and the directory) it would have without it, so adding an option re-keys no run.
KEY_IF_SET = {"identity": "if_set"}


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} '{value}': choose from {', '.join(choices)}")
    return value


def check_number(value, what: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
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


def deep_merge(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Nested dicts merged left to right: a later layer's value wins, sub-dicts merge key by key.
    The one merge of the package (presets, experiment files, flags, sweep variants)."""
    out: dict[str, Any] = {}
    for layer in layers:
        for k, v in (layer or {}).items():
            out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


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
    t = type_hints(cls).get(f.name)
    return t if isinstance(t, type) and dataclasses.is_dataclass(t) else None


@functools.lru_cache(maxsize=None)
def type_hints(cls) -> dict[str, Any]:
    """A class's resolved annotations, once: resolving them compiles every annotation string again (135 ms a
    run config, paid by every run folder a table or a sweep reads)."""
    return typing.get_type_hints(cls)


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
