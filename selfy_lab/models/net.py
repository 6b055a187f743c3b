"""SELFYNet: a TSN/TSM ResNet with SELFY (or STCB, or another motion module) blocks after any of pool1, res2..res5."""
from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.models.resnet import ResNet

from ..config.blocks import block_entry
from ..config.grammar import EVERY, block_options_dict, position_stage
from ..config.run import ModelConfig
from ..config.vocabulary import PREVIOUS_STAGE
from ..core.errors import SelfyError
from .backbones import build_resnet, stage_channels, stages
from .blocks import create_block
from .hcml import MotionHierarchy, build_hierarchy
from .motion import SumBlock
from .selfy import BlockWidths


class BranchConv2d(nn.Conv2d):
    """A residual block's second convolution with a motion module run on its input: the block's branch
    becomes conv1 -> BN -> ReLU -> module -> conv2 -> ..., where STM, TEA and TANet put theirs. The
    convolution keeps its parameters under the same names (ImageNet weights load into the backbone as
    before); the module is registered in ``SELFYNet.blocks`` and only referenced here, outside the module
    tree, so it is counted, moved and saved once."""

    @classmethod
    def wrap(cls, conv: nn.Conv2d, module: nn.Module, frames: int) -> "BranchConv2d":
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                  conv.dilation, conv.groups, conv.bias is not None, device=conv.weight.device)
        new.weight, new.bias = conv.weight, conv.bias
        new.frames = frames
        object.__setattr__(new, "motion", module)  # not a child: SELFYNet.blocks owns it
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        BT, C, H, W = x.shape
        x = self.motion(x.view(BT // self.frames, self.frames, C, H, W)).flatten(0, 1)
        return super().forward(x)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", then motion module {type(self.motion).__name__} (blocks)"


class SELFYNet(nn.Module):
    """Video classifier. (B, T, 3, H, W) normalised frames -> (B, K) logits.

    ``forward_features`` returns the map right before global average pooling, (B*T, C, h, w) (the
    Grad-CAM layer); ``forward_head`` pools it, averages over frames (TSN consensus), applies dropout
    and the classifier.
    """

    def __init__(self, backbone: ResNet, blocks: dict[str, nn.Module], *, num_classes: int, frames: int,
                 dropout: float = 0.5, tsm: bool = False, head_std: float = 0.001,
                 hierarchy: MotionHierarchy | None = None):
        super().__init__()
        backbone.fc = nn.Identity()  # our head replaces torchvision's 1000-way classifier
        self.backbone = backbone
        self.blocks = nn.ModuleDict(blocks)
        self.hierarchy = hierarchy  # HCML's motion levels (models/hcml.py), or None
        self.frames, self.tsm = frames, tsm
        feat = stage_channels(backbone)["res5"]
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feat, num_classes)
        nn.init.normal_(self.fc.weight, 0, head_std)  # TSN/TSM: 0.001
        nn.init.zeros_(self.fc.bias)

    def _maybe_block(self, name: str, x: torch.Tensor, B: int, T: int) -> torch.Tensor:
        if name not in self.blocks:
            return x
        BT, C, H, W = x.shape
        return self.blocks[name](x.view(B, T, C, H, W)).flatten(0, 1)  # (B, T, C, H, W) -> (B*T, C, H, W)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        if self.tsm and T != self.frames:
            raise ValueError(f"this TSM model was built for {self.frames} frames, got clips of {T}")
        bb = self.backbone
        x = x.flatten(0, 1)  # (B*T, 3, H, W): the 2-D backbone sees frames as a batch
        x = bb.maxpool(bb.relu(bb.bn1(bb.conv1(x))))
        x = self._maybe_block("pool1", x, B, T)
        hier = self.hierarchy
        if hier is not None:
            hier.start()
        for name, stage in stages(bb).items():
            y = stage(x)
            if hier is not None and name in hier.levels:  # x: the previous stage's output, the level's target
                y = hier.level(name, y.view(B, T, *y.shape[1:]), x.view(B, T, *x.shape[1:])).flatten(0, 1)
            x = self._maybe_block(name, y, B, T)
        return x  # (B*T, C5, h, w)

    def forward_head(self, feats: torch.Tensor, batch: int) -> torch.Tensor:
        pooled = feats.mean((-2, -1)).view(batch, -1, feats.shape[1])  # (B, T, C5)
        return self.fc(self.dropout(pooled.mean(1)))  # consensus over T -> (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), x.shape[0])


def block_options(cfg: ModelConfig, position: str) -> dict:
    """The options the block of ``cfg`` takes at ``position``: SELFY's family the model's STSS fields, a
    motion module its ``--block-options``."""
    if block_entry(cfg.block).family == "selfy":
        return dict(offsets=cfg.offsets, window=cfg.window, extractor=cfg.extractor, integrator=cfg.integrator,
                    similarity=cfg.similarity, fusion=cfg.fusion, residual=cfg.residual, fuse=cfg.fuse,
                    reduce=cfg.reduce_at(position), widths=BlockWidths().scaled(cfg.width / 64),
                    memory=cfg.stss_memory)
    return block_options_dict(cfg.block_options)


def _insert_blocks(cfg: ModelConfig, backbone: ResNet) -> dict[str, nn.Module]:
    """The blocks of ``cfg``, one after each stage of its positions, or, at ``STAGE:every``, one inside each
    residual block of the stage, where the module's registry entry says (its branch or its sum)."""
    chans, entry = stage_channels(backbone), block_entry(cfg.block)

    def make(channels: int, stage: str, position: str) -> nn.Module:
        try:
            return create_block(cfg.block, channels, frames=cfg.frames, stage=stage, zero_init=cfg.zero_init,
                                options=block_options(cfg, position))
        except (ValueError, TypeError) as e:  # a bad option or the user's module: the user can fix it
            raise SelfyError(str(e)) from None

    blocks = {}
    for pos in cfg.position:
        stage = position_stage(pos)
        if not pos.endswith(EVERY):
            blocks[pos] = make(chans[pos], stage, pos)
            continue
        for i, blk in enumerate(stages(backbone)[stage]):  # one in every residual block, where its paper puts it
            if entry.inside == "sum":  # on the block's sum, before its last ReLU
                inner = make(chans[stage], stage, pos)
                SumBlock.wrap(blk, inner, cfg.frames)
            else:  # on the input of its second convolution
                inner = make(blk.conv2.in_channels, stage, pos)
                blk.conv2 = BranchConv2d.wrap(blk.conv2, inner, cfg.frames)
            blocks[f"{pos}-{i}"] = inner
    return blocks


def build_model(cfg: ModelConfig) -> SELFYNet:
    """Build the network a :class:`ModelConfig` describes (randomly initialised; see ``selfy_lab.engine.weights``)."""
    backbone = build_resnet(cfg.depth, width=cfg.width, tsm=cfg.tsm, frames=cfg.frames, shift_div=cfg.shift_div,
                            shift_place=cfg.shift_place)
    chans = stage_channels(backbone)
    blocks = {} if cfg.block == "none" else _insert_blocks(cfg, backbone)
    hierarchy = None
    if cfg.hierarchy != "none":
        hierarchy = build_hierarchy(
            cfg.hierarchy, cfg.hierarchy_levels, channels=chans, prev_stage=PREVIOUS_STAGE, frames=cfg.frames,
            width_mult=cfg.width / 64,
            offsets=cfg.offsets, window=cfg.window, reduce={p: cfg.reduce_at(p) for p in cfg.hierarchy_levels},
            delta=cfg.hcml_delta, tau=cfg.hcml_tau, grid=cfg.hcml_grid, zero_init=cfg.zero_init,
            target=cfg.hcml_target, predictor=cfg.hcml_predictor)
    return SELFYNet(backbone, blocks, num_classes=cfg.num_classes, frames=cfg.frames,  # blocks in network order
                    dropout=cfg.dropout, tsm=cfg.tsm, head_std=cfg.head_std, hierarchy=hierarchy)
