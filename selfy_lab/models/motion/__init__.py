"""The field's other motion modules, one file per family, each following its authors' public code.

Every module maps a clip's feature map (B, T, C, H, W) to the same shape. Its default configuration computes
the function of the authors' code named in its file's docstring; each deviation this toolkit offers is a named
keyword option (``ModelConfig.block_options``, ``--block-option NAME=VALUE``). Hidden widths are ratios of C,
so they scale with narrow backbones as SELFY's widths do. ``zero_init`` (the model option SELFY blocks share)
starts each module's last BatchNorm at 0, an identity at init; off, it starts like every other layer.

* ``nonlocal``: :class:`NonLocal`, embedded Gaussian non-local block (Wang et al., CVPR 2018)
* ``ms``: :class:`MotionSqueeze`, the MS module (Kwon et al., ECCV 2020)
* ``tea``: :class:`MotionExcitation`, TEA's motion excitation (Li et al., CVPR 2020)
* ``tam``: :class:`TemporalAdaptive`, TANet's temporal adaptive module (Liu et al., ICCV 2021)
* ``stm``: :class:`STMBlock`, STM's CSTM + CMM block (Jiang et al., ICCV 2019; no public code)
* ``cost-a`` / ``cost-b``: :class:`CoSTBlock`, CoST's collaborative convolution (Li et al., CVPR 2019)
* ``cp``: :class:`CorrespondenceProposal`, CPNet's CP module (Liu et al., CVPR 2019)

Where each sits in its own paper (``STAGE:every`` positions): STM, TEA and TANet inside every residual block,
before its second convolution (:class:`selfy_lab.models.net.BranchConv2d`); CP added to every block's sum
before its ReLU (:class:`SumBlock`; CPNet puts it in res3 and res4). After a stage (``res3``) each module is one
insertion, as SELFY's Table 7a compares them.

Not here: TDN's short-term difference module (Wang et al., CVPR 2021). It takes the RGB differences of the
consecutive frames around each sampled frame (a window per segment) through its own stem; a feature-map
insertion sees T frames spread over the whole clip, so what it could form is TDN's long-term module. Building
it means a loader that decodes a window around every sampled frame and a second stem, not a ``--block``.

Operations that are not a convolution or a linear layer (attention products, correlations, the adaptive
temporal kernels) run inside small modules with a ``macs`` method, so ``selfy-lab flops`` counts them.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch.nn as nn

from ...vocabulary import MOTION_BLOCKS
from .common import frame_difference
from .cost import CoSTBlock, CoSTConv
from .cp import CorrespondenceProposal, PairwiseDistance, SumBlock, legacy_resize, other_frame_neighbours
from .ms import MotionSqueeze, NextFrameCorrelation
from .nonlocal_block import Attention, NonLocal
from .stm import ChannelTemporalConv, STMBlock
from .tam import AdaptiveTemporalConv, TemporalAdaptive
from .tea import MotionExcitation

# the class of each kind and the fixed arguments it takes besides (channels, zero_init, options)
_KINDS: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    "nonlocal": (NonLocal, {}), "ms": (MotionSqueeze, {}), "tea": (MotionExcitation, {}),
    "tam": (TemporalAdaptive, {}), "stm": (STMBlock, {}), "cost-a": (CoSTBlock, {"variant": "a"}),
    "cost-b": (CoSTBlock, {"variant": "b"}), "cp": (CorrespondenceProposal, {}),
}
# modules that their paper adds to a residual block's sum before its ReLU (STAGE:every); the others run on
# the input of the block's second convolution
SUM_ARRANGEMENT = ("cp",)


def block_option_names(kind: str) -> tuple[str, ...]:
    """The named options (``block_options``) a motion module takes: its constructor's keyword-only arguments,
    and for CoST the collaborative convolution's."""
    return tuple(n for c in _option_classes(kind) for n, p in inspect.signature(c).parameters.items()
                 if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "stage")


def _option_classes(kind: str) -> list:
    """The classes whose keyword-only arguments are a block's options (CoST's also its convolution's)."""
    cls = _KINDS[kind][0]
    return [cls, CoSTConv] if cls is CoSTBlock else [cls]


def _typed_option(kind: str, name: str, value: Any) -> Any:
    """An option's value as the type of its default in the module's signature: a switch takes true / false (or
    yes / no / 1 / 0), a count an integer, a ratio a number; anything else is one line naming the choices."""
    default = next(p.default for c in _option_classes(kind) for n, p in inspect.signature(c).parameters.items()
                   if n == name)
    shown = str(value)[:40]
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"block '{kind}' option {name}={shown}: expected true or false (or yes / no / 1 / 0)")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"block '{kind}' option {name}={shown}: expected an integer (default {default})")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"block '{kind}' option {name}={shown}: expected a number (default {default})")
    return value


def build_motion_block(kind: str, channels: int, frames: int, zero_init: bool = True, *, stage: str = "res3",
                       options: dict[str, Any] | None = None) -> nn.Module:
    """One of :data:`MOTION_BLOCKS` for a C = ``channels`` map of ``frames``-frame clips at ``stage``."""
    if kind not in _KINDS:
        raise ValueError(f"unknown motion block '{kind}': choose from {', '.join(MOTION_BLOCKS)}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(block_option_names(kind)))
    if unknown:
        allowed = ", ".join(block_option_names(kind)) or "none"
        raise ValueError(f"block '{kind}' has no option {', '.join(unknown)} (its options: {allowed})")
    for name, value in list(options.items()):
        options[name] = _typed_option(kind, name, value)
    cls, fixed = _KINDS[kind]
    if cls is TemporalAdaptive:
        fixed = {"frames": frames}
    if cls is CorrespondenceProposal:
        options["stage"] = stage
    return cls(channels, zero_init=zero_init, **fixed, **options)


__all__ = [
    "AdaptiveTemporalConv", "Attention", "ChannelTemporalConv", "CoSTBlock", "CoSTConv", "CorrespondenceProposal",
    "MotionExcitation", "MotionSqueeze", "NextFrameCorrelation", "NonLocal", "PairwiseDistance", "STMBlock",
    "SUM_ARRANGEMENT", "SumBlock", "TemporalAdaptive", "block_option_names", "build_motion_block",
    "frame_difference", "legacy_resize", "other_frame_neighbours",
]
