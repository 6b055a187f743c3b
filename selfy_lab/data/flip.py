"""Horizontal-flip policies driven by class names.

A class is *direction-dependent* when swapping its direction words (left <-> right,
clockwise <-> counterclockwise, as whole words) names another class of the list: flipping its clip
turns it into that class. On Something-Something this finds exactly 86 <-> 87, 93 <-> 94 and
166 <-> 167, and not "upright" (21, 117, 119) or "pulling it right out" (50).

* ``none``: never flip
* ``skip``: flip every clip except those of direction-dependent classes (the paper)
* ``swap``: flip every clip; direction-dependent classes take their mirrored label
"""
from __future__ import annotations

import re

_SWAP = {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise"}
_WORD = re.compile(r"\b(" + "|".join(_SWAP) + r")\b", re.IGNORECASE)


def mirror_name(name: str) -> str:
    return _WORD.sub(lambda m: _match_case(_SWAP[m.group(0).lower()], m.group(0)), name)


def _match_case(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def mirror_pairs(names: list[str]) -> dict[int, int]:
    """label -> label of its mirror image, for the direction-dependent classes only."""
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for i, n in enumerate(names):
        m = mirror_name(n)
        if m != n and m in index:
            out[i] = index[m]
    return out


def flip_table(names: list[str], policy: str) -> list[int | None]:
    """Per label: the label after a horizontal flip, or None where the clip must not be flipped."""
    pairs = mirror_pairs(names)
    if policy == "none":
        return [None] * len(names)
    if policy == "skip":
        return [None if i in pairs else i for i in range(len(names))]
    if policy == "swap":
        return [pairs.get(i, i) for i in range(len(names))]
    raise ValueError(f"unknown flip policy '{policy}': choose from none, skip, swap")
