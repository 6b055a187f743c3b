"""SELFYNet models. No file IO, no CLI, no plotting.

Shapes (dimension letters: B batch, T frames, C channels, H W space, L temporal offsets,
U V spatial offsets, K classes):

* clips at the API: (B, T, C, H, W)
* the 2-D backbones work on (B*T, C, H, W)
* STSS: (B, T, L, U, V, H, W) from :func:`stss`; the block works on (B, T, H, W, L, U, V)
* logits: (B, K)
"""
from .backbones import ShiftConv2d, build_resnet, temporal_shift
from .extract import conv_plan
from .net import SELFYNet, build_model
from .selfsim import stss, stss_volumes
from .selfy import BlockWidths, ResidualBlock, STCBBranch, SelfyBranch, build_block

__all__ = [
    "BlockWidths", "ResidualBlock", "SELFYNet", "STCBBranch", "SelfyBranch", "ShiftConv2d", "build_block",
    "build_model", "build_resnet", "conv_plan", "stss", "stss_volumes", "temporal_shift",
]
