"""The field's other motion modules: each builds at every position of TSN and TSM, trains, starts as an
identity, and its distinctive operation equals a direct loop-level version on a tiny input."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from selfy_lab.config.run import ModelConfig
from selfy_lab.models.flops import count_macs, model_cost
from selfy_lab.config.grammar import POSITIONS
from selfy_lab.models import build_model
from selfy_lab.models.blocks import create_block
from selfy_lab.models.motion import (
    AdaptiveTemporalConv,
    Attention,
    ChannelTemporalConv,
    CoSTConv,
    MotionExcitation,
    NextFrameCorrelation,
    frame_difference,
    other_frame_neighbours,
)
from selfy_lab.models.selfsim import COSINE_EPS
from selfy_lab.config.vocabulary import MOTION_BLOCKS


def wake(model: nn.Module) -> nn.Module:
    """Give the zero-initialised last layers non-zero weights, so that every parameter gets a gradient."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and not m.weight.detach().any():
            nn.init.uniform_(m.weight, 0.5, 1.5)
        if isinstance(m, MotionExcitation):
            nn.init.normal_(m.expand.weight, 0, 0.1)
    return model


@pytest.mark.parametrize("block", MOTION_BLOCKS)
@pytest.mark.parametrize("backbone", ["tsn-r18-w8", "tsm-r18-w8"])
def test_every_module_trains_at_every_position(block, backbone):
    cfg = ModelConfig(backbone=backbone, block=block, frames=4, num_classes=5, position="+".join(POSITIONS), dropout=0.0)
    model = wake(build_model(cfg)).train()
    assert set(model.blocks) == set(POSITIONS)
    torch.manual_seed(0)
    out = model(torch.randn(2, 4, 3, 64, 64))
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    F.cross_entropy(out, torch.tensor([0, 3])).backward()
    for name, p in model.blocks.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("block", ["stm", "tea", "tam"])
@pytest.mark.parametrize("backbone", ["tsn-r18-w8", "tsm-r18-w8"])
def test_every_block_of_a_stage_gets_a_module(block, backbone):
    """STAGE:every: one module inside each residual block of the stage, before its second convolution."""
    cfg = ModelConfig(backbone=backbone, block=block, frames=4, num_classes=5, position="res2:every+res4:every",
                      dropout=0.0)
    model = wake(build_model(cfg)).train()
    assert list(model.blocks) == ["res2:every-0", "res2:every-1", "res4:every-0", "res4:every-1"]  # R18: 2 per stage
    assert model.backbone.layer2[0].conv2.__class__ is nn.Conv2d  # res3 (torchvision layer2) untouched
    torch.manual_seed(0)
    out = model(torch.randn(2, 4, 3, 64, 64))
    F.cross_entropy(out, torch.tensor([0, 3])).backward()
    for name, p in model.blocks.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    plain = build_model(ModelConfig(backbone=backbone, block="none", frames=4, num_classes=5))
    assert model.backbone.state_dict().keys() == plain.backbone.state_dict().keys()  # ImageNet weights still load
    assert sum(p.numel() for p in model.parameters()) == (
        sum(p.numel() for p in plain.parameters()) + sum(p.numel() for p in model.blocks.parameters()))


def test_modules_in_every_block_start_as_the_plain_backbone_and_survive_a_copy():
    import copy

    cfg = ModelConfig(backbone="tsm-r18-w8", block="tea", frames=4, num_classes=5, position="res3:every", dropout=0.0)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    plain = build_model(ModelConfig(backbone="tsm-r18-w8", block="none", frames=4, num_classes=5, dropout=0.0)).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("blocks.")})
    x = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), plain(x), atol=1e-6)  # zero-initialised: an identity in every branch
    twin = copy.deepcopy(model)
    assert twin.backbone.layer2[1].conv2.motion is twin.blocks["res3:every-1"]  # the copy runs its own modules
    wake(twin)
    with torch.no_grad():
        assert not torch.allclose(twin(x), model(x), atol=1e-6)


@pytest.mark.parametrize("position, message", [("pool1:every", "pool1 has no residual blocks"),
                                               ("res3+res3:every", "names a stage twice")])
def test_bad_every_positions_are_refused(position, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(block="stm", position=position)
    with pytest.raises(ValueError, match="is for the motion modules"):
        ModelConfig(block="selfy", position="res3:every")


@pytest.mark.parametrize("block", MOTION_BLOCKS)
def test_every_module_is_an_identity_at_initialisation(block):
    torch.manual_seed(0)
    mod = create_block(block, 16, frames=4, stage="res3").eval()
    x = torch.rand(2, 4, 16, 6, 6)  # non-negative, as the ReLU features a module is inserted after
    with torch.no_grad():
        assert torch.allclose(mod(x), x, atol=1e-6)


@pytest.mark.parametrize("block", MOTION_BLOCKS)
def test_zero_init_off_starts_every_module_active(block):
    torch.manual_seed(0)
    mod = create_block(block, 16, frames=4, stage="res3", zero_init=False).eval()
    x = torch.rand(2, 4, 16, 6, 6)
    with torch.no_grad():
        assert not torch.allclose(mod(x), x, atol=1e-6)


def test_attention_equals_a_loop():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 7, 3, dtype=torch.float64), torch.randn(2, 7, 4, dtype=torch.float64)
    ref = torch.zeros(2, 5, 4, dtype=torch.float64)
    for b in range(2):
        for i in range(5):
            w = [math.exp(float(q[b, i] @ k[b, j])) for j in range(7)]
            ref[b, i] = sum(w[j] / sum(w) * v[b, j] for j in range(7))
    assert torch.allclose(Attention()(q, k, v), ref)
    assert Attention.macs((q, k, v), None) == 2 * 5 * 7 * (3 + 4)


def test_next_frame_correlation_equals_a_loop():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 4, 3, 3, dtype=torch.float64)
    s = NextFrameCorrelation((3, 3))(x)
    assert s.shape == (1, 3, 3, 3, 1, 3, 3)
    xn = x / (x.pow(2).sum(2, keepdim=True) + COSINE_EPS).sqrt()  # the reference code's normalisation
    for t in range(3):
        src = min(t, 1)  # the last frame repeats the one before
        for i in range(3):
            for j in range(3):
                for u in range(3):
                    for v in range(3):
                        y, z = i + u - 1, j + v - 1
                        ref = float(xn[0, src, :, i, j] @ xn[0, src + 1, :, y, z]) if 0 <= y < 3 and 0 <= z < 3 else 0.0
                        assert s[0, t, i, j, 0, u, v].item() == pytest.approx(ref, abs=1e-12)


def test_frame_difference_equals_a_loop():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 2, 3, 1, 1, groups=2, bias=False).double()
    x = torch.randn(2, 3, 2, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        d = frame_difference(x, conv)
        for b in range(2):
            for t in range(3):
                ref = conv(x[b, t + 1][None])[0] - x[b, t] if t < 2 else torch.zeros_like(x[b, t])
                assert torch.allclose(d[b, t], ref)


def test_adaptive_temporal_conv_equals_a_loop():
    torch.manual_seed(0)
    x, kern = torch.randn(2, 3, 5, 2, 2, dtype=torch.float64), torch.randn(2, 3, 3, dtype=torch.float64)
    y = AdaptiveTemporalConv()(x, kern)
    for b in range(2):
        for c in range(3):
            for t in range(5):
                ref = sum(kern[b, c, k] * x[b, c, t + k - 1] for k in range(3) if 0 <= t + k - 1 < 5)
                assert torch.allclose(y[b, c, t], ref)


def test_channel_temporal_conv_equals_a_loop():
    torch.manual_seed(0)
    m = ChannelTemporalConv(3).double()
    x = torch.randn(2, 4, 3, 2, 2, dtype=torch.float64)
    w = m.conv.weight[:, 0]  # (C, 3)
    with torch.no_grad():
        y = m(x)
        for c in range(3):
            for t in range(4):
                ref = sum(w[c, k] * x[:, t + k - 1, c] for k in range(3) if 0 <= t + k - 1 < 4)
                assert torch.allclose(y[:, t, c], ref)


def test_table_7a_flops_count_the_products_of_activations_twice():
    n, c = 8 * 28 * 28, 128  # res3 of TSM-R18 at 224, 8 frames
    base = model_cost(ModelConfig(backbone="tsm-r18", block="none", frames=8))["gflops"]
    nl = ModelConfig(backbone="tsm-r18", block="nonlocal", frames=8, position="res3", block_options="subsample=false")
    once, twice = model_cost(nl)["gflops"], model_cost(nl, activation_products=2)["gflops"]
    inner = c // 2
    assert once - base == pytest.approx((2 * n * n * inner + 4 * n * c * inner) / 1e9, rel=1e-3)
    assert twice - once == pytest.approx(2 * n * n * inner / 1e9, rel=1e-3)
    assert abs(twice / 24.8 - 1) < 0.03
    cp = ModelConfig(backbone="tsm-r18", block="cp", frames=8, position="res3", block_options="shrink=1")
    assert model_cost(cp, activation_products=2)["gflops"] - model_cost(cp)["gflops"] == pytest.approx(n * n * c / 1e9, rel=1e-3)


def test_counted_modules_report_their_own_arithmetic():
    mod = create_block("ms", 16, frames=4, stage="res3")
    x = torch.rand(1, 4, 16, 8, 8)
    convs = sum(m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3] * m.out_channels * 4 * 8 * 8
                for m in mod.modules() if isinstance(m, nn.Conv2d))  # the reduction and the lift
    assert count_macs(mod, x) == 4 * 8 * 8 * 15 * 15 * 8 + convs  # the correlation on the 8 reduced channels


def test_cost_views_share_one_kernel_over_three_planes():
    torch.manual_seed(0)
    m = CoSTConv(2, 3, variant="a").double()
    x = torch.randn(1, 2, 3, 4, 4, dtype=torch.float64)  # (B, C, T, H, W)
    v = m.views(x)  # (B, 3, C', T, H, W)
    w = m.weight

    def at(t, y, z):
        ok = 0 <= t < 3 and 0 <= y < 4 and 0 <= z < 4
        return x[0, :, t, y, z] if ok else torch.zeros(2, dtype=torch.float64)

    for t in range(3):
        for y in range(4):
            for z in range(4):
                hw = sum(w[:, :, a, b] @ at(t, y + a - 1, z + b - 1) for a in range(3) for b in range(3))
                tw = sum(w[:, :, a, b] @ at(t + a - 1, y, z + b - 1) for a in range(3) for b in range(3))
                th = sum(w[:, :, a, b] @ at(t + a - 1, y + b - 1, z) for a in range(3) for b in range(3))
                for view, ref in enumerate((hw, tw, th)):
                    assert torch.allclose(v[0, view, :, t, y, z], ref)
    with torch.no_grad():  # CoST(a) starts at its authors' softmax(0.7, -0.7, -0.7), H-W first
        share = torch.tensor([0.7, -0.7, -0.7], dtype=torch.float64).softmax(0)
        assert torch.allclose(m(x), (share[None, :, None, None, None, None] * v).sum(1))
        equal = CoSTConv(2, 3, variant="a", alpha_init="equal").double()
        assert torch.allclose(equal(x), equal.views(x).mean(1))  # the equal start: the mean of the views
        # CoST(b)'s weights sum to 1 per channel
        b = CoSTConv(2, 3, variant="b").double()
        coef = b.coefficients(b.views(x))
        assert coef.shape == (1, 3, 3) and torch.allclose(coef.sum(1), torch.ones(1, 3, dtype=torch.float64))


def test_cp_neighbours_are_the_nearest_in_other_frames():
    torch.manual_seed(0)
    T, H, W, C, k = 3, 2, 2, 4, 3
    f = torch.randn(2, T * H * W, C, dtype=torch.float64)
    idx = other_frame_neighbours(f, T, k)
    for b in range(2):
        for i in range(T * H * W):
            others = [j for j in range(T * H * W) if j // (H * W) != i // (H * W)]
            ref = sorted(others, key=lambda j: float((f[b, i] - f[b, j]).pow(2).sum()))[:k]
            assert sorted(idx[b, i].tolist()) == sorted(ref)
