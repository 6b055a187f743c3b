"""The field's other motion modules: each builds at every position of TSN and TSM, trains, starts as an
identity, and its distinctive operation equals a direct loop-level version on a tiny input."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from selfy_lab.config import MOTION_BLOCKS, POSITIONS, ModelConfig
from selfy_lab.flops import count_macs, model_cost
from selfy_lab.models import build_model
from selfy_lab.models.selfsim import COSINE_EPS
from selfy_lab.models.motion import (
    AdaptiveTemporalConv,
    Attention,
    ChannelTemporalConv,
    MotionExcitation,
    NextFrameCorrelation,
    NonLocal,
    frame_difference,
    build_motion_block,
)


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


@pytest.mark.parametrize("block", MOTION_BLOCKS)
def test_every_module_is_an_identity_at_initialisation(block):
    torch.manual_seed(0)
    mod = build_motion_block(block, 16, frames=4).eval()
    x = torch.rand(2, 4, 16, 6, 6)  # non-negative, as the ReLU features a module is inserted after
    with torch.no_grad():
        assert torch.allclose(mod(x), x, atol=1e-6)


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


def test_non_local_attends_over_every_position_of_every_frame():
    torch.manual_seed(0)
    nl = NonLocal(3, inner=2).double().eval()
    nn.init.uniform_(nl.bn.weight, 0.5, 1.5)
    x = torch.randn(1, 2, 3, 2, 2, dtype=torch.float64)
    pos = [(t, i, j) for t in range(2) for i in range(2) for j in range(2)]

    def conv(c, t, i, j):  # a 1x1 conv at one position
        return c.weight[:, :, 0, 0] @ x[0, t, :, i, j] + (c.bias if c.bias is not None else 0)

    y = torch.zeros(1, 2, 2, 2, 2, dtype=torch.float64)  # (B, T, Ci, H, W)
    for (t, i, j) in pos:
        w = torch.stack([conv(nl.theta, t, i, j) @ conv(nl.phi, *p) for p in pos]).softmax(0)
        y[0, t, :, i, j] = sum(w[n] * conv(nl.g, *p) for n, p in enumerate(pos))
    with torch.no_grad():
        ref = x + nl.bn(nl.out(y.flatten(0, 1))).view_as(x)
        assert torch.allclose(nl(x), ref)


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


def test_non_local_flops_match_selfy_table_7a():
    base = model_cost(ModelConfig(backbone="tsm-r18", block="none", frames=8))["gflops"]
    nl = model_cost(ModelConfig(backbone="tsm-r18", block="nonlocal", frames=8, position="res3"))["gflops"]
    assert abs(nl / 24.8 - 1) < 0.03 and abs(base / 14.6 - 1) < 0.03
    # the attention products are counted: one N x N x C product each way at res3 (N = 8 x 28 x 28, C = 128)
    n = 8 * 28 * 28
    assert nl - base == pytest.approx((2 * n * n * 128 + 4 * n * 128 * 128) / 1e9, rel=1e-3)


def test_counted_modules_report_their_own_arithmetic():
    mod = build_motion_block("ms", 16, frames=4)
    x = torch.rand(1, 4, 16, 8, 8)
    convs = sum(m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3] * m.out_channels * 4 * 8 * 8
                for m in mod.lift.modules() if isinstance(m, nn.Conv2d))
    assert count_macs(mod, x) == 4 * 8 * 8 * 15 * 15 * 16 + convs
