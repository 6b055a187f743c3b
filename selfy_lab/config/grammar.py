"""Parsers and canonical forms for the small languages shared by every command.

Offsets (one set): ``0``, ``1``, ``-2,0,2`` or an inclusive range ``-3..3``.
Windows: ``9x9`` or ``9``. Severities (and other positive integer lists): ``3``, ``1-6`` (or ``1..6``), ``1,3,5``.
Lists of things to run or show: comma lists, or the flag repeated (each value a comma list).
Errors are ``ValueError`` with a message meant for the user; the CLI prints it on one line.
"""
from __future__ import annotations

import re
from typing import Iterable

_INT = re.compile(r"^[+-]?\d+$")
_RANGE = re.compile(r"^\s*([+-]?\d+)\s*\.\.\s*([+-]?\d+)\s*$")


def parse_offsets(spec: str | int | tuple | list) -> tuple[int, ...]:
    """Parse one set of temporal offsets into a sorted tuple of distinct ints."""
    if isinstance(spec, int):
        return (spec,)
    if isinstance(spec, (tuple, list)):
        values = [int(v) for v in spec]
        return _check_offsets(values, str(spec))
    text = str(spec).strip().strip("{}")
    if not text:
        raise ValueError("empty offsets: use e.g. 0, 1, -2,0,2 or -3..3")
    m = _RANGE.match(text)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        if b < a:
            raise ValueError(f"reversed offsets range '{spec}': write the smaller end first, e.g. {b}..{a}")
        return tuple(range(a, b + 1))
    parts = [p.strip() for p in text.split(",")]
    bad = [p for p in parts if not _INT.match(p)]
    if bad:
        raise ValueError(f"offsets '{spec}' contain '{bad[0]}', which is not an integer: use e.g. 0, 1, -2,0,2 or -3..3")
    return _check_offsets([int(p) for p in parts], str(spec))


def _check_offsets(values: list[int], spec: str) -> tuple[int, ...]:
    if not values:
        raise ValueError("empty offsets: use e.g. 0, 1, -2,0,2 or -3..3")
    if len(set(values)) != len(values):
        dup = next(v for v in values if values.count(v) > 1)
        raise ValueError(f"offsets '{spec}' list {dup} twice: each temporal offset may appear once")
    return tuple(sorted(values))


def format_offsets(offsets: tuple[int, ...] | None) -> str:
    """Canonical string: ``none`` (no block), ``{1}``, ``{-2,0,2}`` or ``-3..3``."""
    if not offsets:
        return "none"
    offs = tuple(sorted(offsets))
    if len(offs) > 1 and offs == tuple(range(offs[0], offs[-1] + 1)):
        return f"{offs[0]}..{offs[-1]}"
    return "{" + ",".join(str(o) for o in offs) + "}"


def parse_window(spec: str | int | tuple | list) -> tuple[int, int]:
    """Parse a spatial window ``UxV`` (or ``U`` for square); both sides odd and >= 3."""
    if isinstance(spec, (tuple, list)):
        u, v = (int(spec[0]), int(spec[1])) if len(spec) == 2 else (int(spec[0]),) * 2
    else:
        text = str(spec).strip().lower()
        m = re.match(r"^(\d+)\s*(?:x\s*(\d+))?$", text)
        if not m:
            raise ValueError(f"window '{spec}' is not of the form UxV, e.g. 9x9")
        u = int(m.group(1))
        v = int(m.group(2)) if m.group(2) else u
    for side in (u, v):
        if side < 3 or side % 2 == 0:
            raise ValueError(f"window '{spec}': each side must be odd and at least 3 (e.g. 5x5, 9x9, 13x13)")
    return (u, v)


def format_window(window: tuple[int, int]) -> str:
    return f"{window[0]}x{window[1]}"


def parse_int_list(spec: str, what: str, lo: int, hi: int | None = None) -> tuple[int, ...]:
    """Parse ``3``, ``1-6`` (or ``1..6``) or ``1,3,5`` into sorted distinct ints within [lo, hi] (``hi`` None:
    no upper bound, and a range spans at most 10,000 values). Bounds are checked before a range is expanded."""
    text = str(spec).strip()
    valid = f"valid {what} values are {lo}-{hi}" if hi is not None else f"{what} values start at {lo}"
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.match(r"^(\d+)\s*(?:\.\.|-)\s*(\d+)$", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ValueError(f"reversed {what} range '{part}': {valid}")
            for v in (a, b):
                if v < lo or (hi is not None and v > hi):
                    raise ValueError(f"{what} {v} is out of range: {valid}")
            if hi is None and b - a >= 10_000:
                raise ValueError(f"{what} range '{part}' spans {b - a + 1} values: at most 10000")
            values.extend(range(a, b + 1))
        elif re.match(r"^\d+$", part):
            values.append(int(part))
        else:
            raise ValueError(f"{what} '{spec[:40]}' is not a number, a range a-b (or a..b) or a comma list: {valid}")
    out = sorted(set(values))
    bad = [v for v in out if v < lo or (hi is not None and v > hi)]
    if bad:
        raise ValueError(f"{what} {bad[0]} is out of range: {valid}")
    return tuple(out)


_OPTION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S(?:.*\S)?)\s*$")


def option_value(text: str) -> bool | int | float | str:
    """``true`` / ``false`` (also ``yes`` / ``no``), an integer, a number, or the text itself."""
    low = text.lower()
    if low in ("true", "false", "yes", "no"):
        return low in ("true", "yes")
    if _INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def parse_block_options(spec) -> tuple[str, ...]:
    """Named module options: ``scale=false,subsample=true``, a list of ``NAME=VALUE`` or a mapping -> the
    canonical sorted tuple of ``NAME=VALUE`` strings (values as :func:`option_value` reads them)."""
    if spec is None or spec == "" or spec == ():
        return ()
    if isinstance(spec, dict):
        items = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in spec.items()]
    elif isinstance(spec, (tuple, list)):
        items = [str(v) for v in spec]
    elif isinstance(spec, str):
        items = [p for p in spec.split(",") if p.strip()]
    else:
        raise ValueError(f"block options must be NAME=VALUE pairs (e.g. scale=false), got {spec!r}")
    out: dict[str, str] = {}
    for item in items:
        m = _OPTION.match(item)
        if not m:
            raise ValueError(f"block option '{item}' is not NAME=VALUE (e.g. scale=false, shrink=1)")
        name, value = m.group(1), option_value(m.group(2))
        if name in out:
            raise ValueError(f"block option '{name}' is given twice")
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return tuple(f"{k}={v}" for k, v in sorted(out.items()))


def block_options_dict(options: tuple[str, ...]) -> dict[str, bool | int | float | str]:
    """The canonical tuple of :func:`parse_block_options` -> keyword arguments."""
    return {k: option_value(v) for k, v in (o.split("=", 1) for o in options)}


def parse_list(value: str | Iterable[str] | None) -> list[str]:
    """A comma list, or the values of a repeated flag, each of them a comma list: ``a,b, c`` or ``['a', 'b,c']``
    -> ['a', 'b', 'c'] (empty items dropped; None or '' -> [])."""
    if not value:
        return []
    values = [value] if isinstance(value, str) else list(value)
    return [v.strip() for part in values for v in str(part).split(",") if v.strip()]


def parse_query(spec: str | None) -> tuple[int, int, int] | None:
    """An STSS query ``t,y,x`` (integers, cells) -> (t, y, x); None -> None."""
    if spec is None:
        return None
    try:
        q = tuple(int(v) for v in spec.split(","))
    except ValueError:
        q = ()
    if len(q) != 3:
        raise ValueError(f"query '{spec}' must be t,y,x (integers)")
    return q


POSITIONS = ("pool1", "res2", "res3", "res4", "res5")  # where a block goes
EVERY = ":every"  # ``res3:every``: one module inside every residual block of res3 (motion modules)


def position_stage(position: str) -> str:
    """The stage a position names: ``res3`` for both ``res3`` and ``res3:every``."""
    return position.removesuffix(EVERY)


def parse_positions(spec: str | tuple | list) -> tuple[str, ...]:
    """``res3``, ``res2+res3+res4`` or ``res2:every+res3:every`` -> positions in network order. A plain stage
    name puts one block after the stage's output; ``STAGE:every`` puts one inside every residual block of the
    stage (before its second convolution, where STM, TEA and TANet put theirs)."""
    items = list(spec) if isinstance(spec, (tuple, list)) else [p.strip() for p in str(spec).split("+")]
    for p in items:
        if not isinstance(p, str):
            raise ValueError(f"position item {str(p)[:40]!r} is not a stage name: choose from {', '.join(POSITIONS)}")
        if position_stage(p) not in POSITIONS:
            raise ValueError(f"unknown position '{position_stage(p)}': choose from {', '.join(POSITIONS)}")
        if p == "pool1" + EVERY:
            raise ValueError("position 'pool1:every': pool1 has no residual blocks (use res2..res5)")
    stages = [position_stage(p) for p in items]
    if len(set(stages)) != len(stages):
        raise ValueError(f"position '{spec}' names a stage twice")
    return tuple(sorted(items, key=lambda p: POSITIONS.index(position_stage(p))))


def format_positions(positions: tuple[str, ...]) -> str:
    """Positions as one spec: ``res2+res3``."""
    return "+".join(positions)
