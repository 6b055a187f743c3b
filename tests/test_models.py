"""Every SELFY variant, position set and backbone: forward + backward, shapes, gradients, identity at init."""
import itertools
from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from selfy_lab.config.run import ModelConfig
from selfy_lab.models import build_model, conv_plan, temporal_shift
from selfy_lab.models.selfy import Restore
from selfy_lab.config.vocabulary import EXTRACTORS, FUSIONS, INTEGRATORS, SELFY_BLOCKS, SIMILARITIES

K = 5
TINY = ModelConfig(backbone="tsn-r18-w8", frames=4, num_classes=K, offsets=(-1, 0, 1), window=(5, 5), reduce=1)


def wake_up(model: nn.Module) -> nn.Module:
    """Give the zero-initialised last BNs a non-zero weight, otherwise nothing upstream gets a gradient."""
    for m in model.modules():
        if isinstance(m, Restore):
            nn.init.constant_(m.bn.weight, 0.5)
    return model


def check_forward_backward(cfg: ModelConfig, size: int = 64, batch: int = 2):
    torch.manual_seed(0)
    model = wake_up(build_model(cfg)).train()
    x = torch.randn(batch, cfg.frames, 3, size, size)
    out = model(x)
    assert out.shape == (batch, cfg.num_classes)
    assert torch.isfinite(out).all()
    (out.square().sum() + out.sum()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
               or p.grad.abs().sum() == 0]
    assert not no_grad, f"parameters without a gradient: {no_grad[:5]}"


@pytest.mark.parametrize("extractor,integrator,fusion", list(itertools.product(EXTRACTORS, INTEGRATORS, FUSIONS)))
def test_every_extractor_integrator_fusion(extractor, integrator, fusion):
    check_forward_backward(replace(TINY, extractor=extractor, integrator=integrator, fusion=fusion))


@pytest.mark.parametrize("block", SELFY_BLOCKS)  # the other motion modules: test_motion.py
def test_every_block_kind(block):
    check_forward_backward(replace(TINY, block=block))


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_every_similarity(similarity):
    check_forward_backward(replace(TINY, similarity=similarity))


@pytest.mark.parametrize("position", [("pool1",), ("res2",), ("res3",), ("res4",), ("res5",), ("res2", "res3", "res4"),
                                      ("pool1", "res2", "res3", "res4", "res5")])
def test_every_position_set_with_default_reduction(position):
    # per-position default reduction (4, 4, 2, 1, 1) at a size where every map stays >= 1x1
    check_forward_backward(replace(TINY, position=position, reduce=0), size=96)


@pytest.mark.slow
@pytest.mark.parametrize("window", [(3, 3), (5, 5), (7, 3), (9, 9), (13, 13), (17, 17)])
def test_windows(window):
    check_forward_backward(replace(TINY, window=window, extractor="conv"))
    check_forward_backward(replace(TINY, window=window, extractor="conv3d"))


@pytest.mark.parametrize("offsets", [(0,), (1,), (-2, 0, 2), (-3, -2, -1, 0, 1, 2, 3)])
def test_offset_sets(offsets):
    check_forward_backward(replace(TINY, offsets=offsets, frames=8))


@pytest.mark.parametrize("residual,fuse", list(itertools.product(["reference", "paper"], ["reference", "paper"])))
def test_residual_and_fuse_heads(residual, fuse):
    check_forward_backward(replace(TINY, residual=residual, fuse=fuse))


@pytest.mark.parametrize("backbone", ["tsn-r18", "tsm-r18", "tsn-r34", "tsm-r34", "tsn-r50", "tsm-r50", "tsm-r18-w16",
                                      "tsn-r50-w16"])
@pytest.mark.slow
def test_every_backbone(backbone):
    cfg = replace(TINY, backbone=backbone, reduce=0)
    check_forward_backward(cfg, size=64, batch=1)
    check_forward_backward(replace(cfg, block="none"), size=64, batch=1)


@pytest.mark.parametrize("cfg", [
    replace(TINY, backbone="tsm-r18-w16", reduce=0),
    replace(TINY, backbone="tsn-r50-w16", block="parallel", position=("res2", "res3", "res4"), reduce=0),
    replace(TINY, backbone="tsm-r18-w16", block="sequential", similarity="embedded_gaussian", reduce=2),
    replace(TINY, backbone="tsm-r18-w16", extractor="conv3d", integrator="mlp", residual="paper", fuse="paper"),
])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_block_is_exact_identity_at_init(cfg, mode):
    torch.manual_seed(0)
    base = build_model(replace(cfg, block="none"))
    selfy = build_model(cfg)
    missing, unexpected = selfy.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("blocks.") for k in missing)
    getattr(base, mode)(), getattr(selfy, mode)()
    base.dropout.p = selfy.dropout.p = 0.0
    x = torch.randn(2, cfg.frames, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(base(x), selfy(x))


def test_zero_init_off_starts_every_block_active():
    """With ``zero_init=False`` the block's last BN starts at 1: the block changes the output from the start and
    its inner layers get a gradient at the first step; with the default it is an identity."""
    torch.manual_seed(0)
    cfg = replace(TINY, zero_init=False)
    base, selfy = build_model(replace(cfg, block="none")).eval(), build_model(cfg).eval()
    selfy.load_state_dict(base.state_dict(), strict=False)
    restores = [m for m in selfy.modules() if isinstance(m, Restore)]
    assert restores and all(torch.equal(m.bn.weight, torch.ones_like(m.bn.weight)) for m in restores)
    x = torch.randn(2, cfg.frames, 3, 64, 64)
    with torch.no_grad():
        assert not torch.equal(base(x), selfy(x))
    selfy.train()
    selfy(x).sum().backward()
    extract = selfy.blocks["res3"].branches[0].extract
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in extract.parameters())


@pytest.mark.parametrize("std", [0.001, 0.01])
def test_head_std_sets_the_classifier_initialisation(std):
    torch.manual_seed(0)
    fc = build_model(replace(TINY, num_classes=64, head_std=std)).fc
    assert fc.weight.std().item() == pytest.approx(std, rel=0.15)
    assert torch.equal(fc.bias, torch.zeros_like(fc.bias))


def test_fusion_r_alone_is_not_identity():
    torch.manual_seed(0)
    cfg = replace(TINY, fusion="R")
    base, selfy = build_model(replace(cfg, block="none")).eval(), build_model(cfg).eval()
    selfy.load_state_dict(base.state_dict(), strict=False)
    x = torch.randn(1, cfg.frames, 3, 64, 64)
    with torch.no_grad():
        assert not torch.equal(base(x), selfy(x))


def test_tsm_shift_moves_one_eighth_each_way():
    from selfy_lab.models import temporal_shift

    T, C = 4, 16
    x = torch.arange(T, dtype=torch.float32).view(1, T, 1, 1, 1).expand(1, T, C, 2, 2).reshape(T, C, 2, 2) + 1
    y = temporal_shift(x, T).view(1, T, C, 2, 2)
    # channels 0-1 come from t+1 (zero at the end), 2-3 from t-1 (zero at the start), the rest stay
    assert torch.equal(y[0, :, 0, 0, 0], torch.tensor([2.0, 3, 4, 0]))
    assert torch.equal(y[0, :, 2, 0, 0], torch.tensor([0.0, 1, 2, 3]))
    assert torch.equal(y[0, :, 5, 0, 0], torch.tensor([1.0, 2, 3, 4]))


def test_tsm_rejects_other_clip_lengths():
    model = build_model(replace(TINY, backbone="tsm-r18-w8", block="none"))
    with pytest.raises(ValueError, match="4 frames"):
        model(torch.randn(1, 6, 3, 32, 32))


@pytest.mark.parametrize("size", [3, 5, 7, 9, 11, 13, 15, 17, 21])
def test_conv_plan_reduces_every_window_to_one(size):
    s = size
    for k, stride, pad in conv_plan(size):
        s = (s + 2 * pad - k) // stride + 1
    assert s == 1
    if size == 9:  # the reference stack
        assert conv_plan(9) == [(3, 1, 1), (3, 2, 1), (3, 2, 1), (3, 1, 0)]


@pytest.mark.parametrize("window,channels", [((9, 9), (4, 16, 64, 64)), ((9, 9), (4, 4, 16, 16)),
                                             ((5, 5), (4, 4, 16, 16)), ((5, 5), (4, 16, 64, 64)),
                                             ((13, 13), (4, 16, 64, 64)), ((7, 3), (4, 4, 8, 8))])
@pytest.mark.parametrize("train", [False, True])
def test_conv_extractor_equals_plain_convolutions(window, channels, train):
    """Whatever formulation each layer runs in (dense, channels-last conv, linear), the extractor equals
    a plain Conv2d + BatchNorm + ReLU stack (the reference semantics), in training and in eval mode."""
    from selfy_lab.models.extract import ConvExtractor

    torch.manual_seed(0)
    ext = ConvExtractor(window, channels).double()
    for bn in ext.bns:  # non-trivial BN parameters and statistics
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2)
    ext.train(train)
    s = torch.randn(6, 3, *window, dtype=torch.float64)
    ref = s.reshape(18, 1, *window)
    stats = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in ext.bns]
    for conv, bn, (rm, rv) in zip(ext.convs, ext.bns, stats):
        ref = torch.relu(torch.nn.functional.batch_norm(conv(ref), rm, rv, bn.weight, bn.bias, train))
    assert torch.allclose(ext(s), ref.view(6, 3, -1), atol=1e-10)
    if window == (5, 5) and channels == (4, 4, 16, 16):
        assert ext.modes == ["dense", "dense", "dense", "linear"]
    if window == (9, 9) and channels == (4, 16, 64, 64):
        assert ext.modes == ["dense", "conv", "conv", "linear"]


def test_tsm_shift_fraction_and_place_are_options():
    """shift_div sets the shifted share of channels; shift_place=inplace shifts each block's input, shortcut included."""
    from selfy_lab.models.backbones import ShiftConv2d

    torch.manual_seed(0)
    res = build_model(ModelConfig(backbone="tsm-r18-w8", block="none", frames=4, num_classes=5, shift_div=4))
    assert all(b.conv1.fold_div == 4 for b in res.backbone.layer1)
    inplace = build_model(ModelConfig(backbone="tsm-r18-w8", block="none", frames=4, num_classes=5,
                                      shift_place="inplace")).eval()
    blk = inplace.backbone.layer1[0]
    assert not isinstance(blk.conv1, ShiftConv2d)
    x = torch.randn(4, 8, 6, 6)  # (B*T, C, H, W), one clip
    with torch.no_grad():
        y = blk(x)
        ref = blk.relu(blk.bn2(blk.conv2(blk.relu(blk.bn1(blk.conv1(temporal_shift(x, 4)))))) + temporal_shift(x, 4))
    assert torch.allclose(y, ref, atol=1e-6)
    with pytest.raises(ValueError, match="shift place"):
        ModelConfig(shift_place="everywhere")
