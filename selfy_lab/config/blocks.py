"""The block registry: every ``--block`` name, its family and where its builder lives, in one torch-free table.

The CLI's choices, the experiment-file check (``vocabulary.BLOCKS``) and the tests parametrized over every block
read :data:`REGISTRY`; the models package builds every entry, and a user's ``PACKAGE.MODULE:CLASS``, through
one door (:func:`selfy_lab.models.blocks.create_block`) with one contract::

    CLASS(channels, *, frames, stage, **options)    # then called on a clip's map: (B, T, C, H, W) -> same

Families: ``selfy`` (SELFY and STCB, ``models/selfy.py``: their options are the STSS fields of the model
configuration), ``motion`` (the field's modules, ``models/motion/``: their options are ``--block-options``,
each class's ``OPTIONS``, plus the model's ``zero_init``) and ``none``. Adding a built-in module: its file
under ``models/motion/`` and one line here (and its tests: every test parametrized over the registry picks it
up). No torch, no imports from the package.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

FAMILIES = ("none", "selfy", "motion")
# inside every residual block (``STAGE:every``): on the input of its second convolution, or on its sum
INSIDE = ("branch", "sum")
# a module written outside the package: ``--block PACKAGE.MODULE:CLASS``
OUTSIDE_BLOCK_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class BlockEntry:
    """One ``--block`` name. ``target``: ``module:attribute`` under ``selfy_lab.models``, the builder the door
    calls; ``fixed``: constructor arguments the name fixes; ``inside``: where the module sits in each residual
    block at ``STAGE:every`` (``branch`` / ``sum``; empty: after a stage only); ``source``: its paper."""

    name: str
    family: str
    target: str = ""
    fixed: tuple[tuple[str, Any], ...] = ()
    inside: str = ""
    source: str = ""


def _selfy(name: str, source: str) -> BlockEntry:
    return BlockEntry(name, "selfy", "selfy:selfy_block", (("kind", name),), source=source)


REGISTRY: tuple[BlockEntry, ...] = (
    BlockEntry("none", "none", source="the plain backbone"),
    _selfy("selfy", "SELFY (Kwon et al., ICCV 2021)"),
    _selfy("selfy-s", "SELFY without its spatial integration (Table 5)"),
    _selfy("stcb", "STCB, SELFY's spatio-temporal convolution baseline (Table 5)"),
    _selfy("stcb+stcb", "two STCBs stacked (Table 5)"),
    _selfy("selfy-s+selfy-s", "two SELFY-s stacked (Table 5)"),
    _selfy("parallel", "SELFY-s and STCB summed in one residual (Table 5)"),
    _selfy("sequential", "SELFY-s, then STCB (Table 5)"),
    BlockEntry("nonlocal", "motion", "motion.nonlocal_block:NonLocal", inside="branch",
               source="non-local block (Wang et al., CVPR 2018)"),
    BlockEntry("ms", "motion", "motion.ms:MotionSqueeze", inside="branch",
               source="MotionSqueeze (Kwon et al., ECCV 2020)"),
    BlockEntry("tea", "motion", "motion.tea:MotionExcitation", inside="branch",
               source="TEA's motion excitation (Li et al., CVPR 2020)"),
    BlockEntry("tam", "motion", "motion.tam:TemporalAdaptive", inside="branch",
               source="TANet's temporal adaptive module (Liu et al., ICCV 2021)"),
    BlockEntry("stm", "motion", "motion.stm:STMBlock", inside="branch",
               source="STM's CSTM + CMM (Jiang et al., ICCV 2019)"),
    BlockEntry("cost-a", "motion", "motion.cost:CoSTBlock", (("variant", "a"),), inside="branch",
               source="CoST (a) (Li et al., CVPR 2019)"),
    BlockEntry("cost-b", "motion", "motion.cost:CoSTBlock", (("variant", "b"),), inside="branch",
               source="CoST (b) (Li et al., CVPR 2019)"),
    BlockEntry("cp", "motion", "motion.cp:CorrespondenceProposal", inside="sum",
               source="CPNet's correspondence proposal (Liu et al., CVPR 2019)"),
)
_BY_NAME = {e.name: e for e in REGISTRY}


def list_blocks(family: str | None = None) -> tuple[str, ...]:
    """The registered names (of one family), in the table's order."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown block family '{family}': choose from {', '.join(FAMILIES)}")
    return tuple(e.name for e in REGISTRY if family is None or e.family == family)


def is_outside_block(block: str) -> bool:
    """``PACKAGE.MODULE:CLASS`` names the user's own module."""
    return bool(OUTSIDE_BLOCK_RE.match(str(block)))


def block_entry(name: str) -> BlockEntry:
    """The registry's entry of ``name``; a user's ``PACKAGE.MODULE:CLASS`` is a motion module of its own,
    built in a residual block's branch at ``STAGE:every``."""
    if is_outside_block(name):
        return BlockEntry(name, "motion", name, inside="branch", source="your own module")
    if name not in _BY_NAME:
        raise ValueError(f"unknown block '{name}': choose from {', '.join(_BY_NAME)}, or PACKAGE.MODULE:CLASS")
    return _BY_NAME[name]
