"""The field's other motion modules, one file per family, each following its authors' public code.

Every module maps a clip's feature map (B, T, C, H, W) to the same shape and is built by the block registry's
contract, ``CLASS(channels, *, frames, stage, **options)`` (``selfy_lab.config.blocks`` names each one and where it
lives; :func:`selfy_lab.models.blocks.create_block` builds it). Its default configuration computes the
function of the authors' code named in its file's docstring; each deviation this toolkit offers is a named
keyword option, listed in the class's ``OPTIONS`` (``ModelConfig.block_options``, ``--block-options
NAME=VALUE``). Hidden widths are ratios of C, so they scale with narrow backbones as SELFY's widths do.
``zero_init`` (the model option SELFY blocks share) starts each module's last BatchNorm at 0, an identity at
init; off, it starts like every other layer.

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

from .common import frame_difference
from .cost import CoSTBlock, CoSTConv
from .cp import CorrespondenceProposal, PairwiseDistance, SumBlock, legacy_resize, other_frame_neighbours
from .ms import MotionSqueeze, NextFrameCorrelation
from .nonlocal_block import Attention, NonLocal
from .stm import ChannelTemporalConv, STMBlock
from .tam import AdaptiveTemporalConv, TemporalAdaptive
from .tea import MotionExcitation

__all__ = [
    "AdaptiveTemporalConv", "Attention", "ChannelTemporalConv", "CoSTBlock", "CoSTConv", "CorrespondenceProposal",
    "MotionExcitation", "MotionSqueeze", "NextFrameCorrelation", "NonLocal", "PairwiseDistance", "STMBlock",
    "SumBlock", "TemporalAdaptive", "frame_difference", "legacy_resize", "other_frame_neighbours",
]
