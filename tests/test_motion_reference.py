"""Each motion module in its default configuration against a direct, loop-level version of its authors'
equations (float64, eval mode, every BatchNorm given random statistics and affine parameters)."""
import math

import torch
import torch.nn as nn

from selfy_lab.models.motion import (
    CorrespondenceProposal,
    CoSTBlock,
    MotionExcitation,
    MotionSqueeze,
    NonLocal,
    legacy_resize,
)


def randomise_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random running statistics and affine parameters for every BatchNorm, then eval mode, float64."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    return module.double().eval()


def bn(m: nn.Module, v: torch.Tensor, c: int) -> torch.Tensor:
    """An eval-mode BatchNorm on channel c of a scalar or tensor."""
    return (v - m.running_mean[c]) / math.sqrt(m.running_var[c] + m.eps) * m.weight[c] + m.bias[c]


def conv1x1(conv: nn.Module, v: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution (or linear layer) on one feature vector."""
    w = conv.weight.reshape(conv.weight.shape[0], -1)
    return w @ v + (conv.bias if conv.bias is not None else 0)


def conv_bn_at_each_position(conv: nn.Module, norm: nn.Module, clip: torch.Tensor, relu: bool = False) -> torch.Tensor:
    """A 1x1 convolution and an eval-mode BatchNorm (and a ReLU), position by position: (T, C, H, W) -> (T, C', H, W)."""
    T, _, H, W = clip.shape
    out = torch.zeros(T, conv.out_channels, H, W, dtype=clip.dtype)
    for t in range(T):
        for i in range(H):
            for j in range(W):
                v = conv1x1(conv, clip[t, :, i, j])
                out[t, :, i, j] = torch.stack([bn(norm, v[c], c) for c in range(conv.out_channels)])
    return torch.relu(out) if relu else out


def test_non_local_equals_its_equations():
    torch.manual_seed(0)
    nl = randomise_bn(NonLocal(4, inner=3))
    for c in (nl.theta, nl.phi, nl.g, nl.out):  # the authors' N(0, 0.01) makes every softmax nearly uniform
        nn.init.normal_(c.weight, 0, 0.7), nn.init.normal_(c.bias, 0, 0.3)
    B, T, C, H, W = 1, 2, 4, 4, 4
    x = torch.randn(B, T, C, H, W, dtype=torch.float64)
    queries = [(t, i, j) for t in range(T) for i in range(H) for j in range(W)]
    keys = [(t, i, j) for t in range(T) for i in range(H // 2) for j in range(W // 2)]

    def pooled(t, i, j):  # 2x2 max-pooling, stride 2, of the block's input
        return x[0, t, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].amax((-2, -1))

    ref = torch.zeros_like(x)
    for (t, i, j) in queries:
        q = conv1x1(nl.theta, x[0, t, :, i, j])
        logits = torch.stack([q @ conv1x1(nl.phi, pooled(*k)) / math.sqrt(3) for k in keys])
        w = torch.exp(logits - logits.max())
        y = sum(w[n] / w.sum() * conv1x1(nl.g, pooled(*k)) for n, k in enumerate(keys))
        z = conv1x1(nl.out, y)
        ref[0, t, :, i, j] = x[0, t, :, i, j] + torch.stack([bn(nl.bn, z[c], c) for c in range(C)])
    with torch.no_grad():
        assert torch.allclose(nl(x), ref, atol=1e-10)


def test_non_local_starts_from_the_authors_initialisation():
    nl = NonLocal(64)
    for c in (nl.theta, nl.phi, nl.g, nl.out):
        assert abs(c.weight.std().item() - 0.01) < 0.002 and not c.bias.any()
    assert not nl.bn.weight.any()


def test_legacy_resize_takes_every_second_pixel_and_interpolates_back():
    x = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    down = legacy_resize(x, (2, 2))
    assert down.flatten().tolist() == [0, 2, 8, 10]
    up = legacy_resize(down, (4, 4))[0, 0]
    assert up[0].tolist() == [0, 1, 2, 2] and up[:, 0].tolist() == [0, 4, 8, 8]  # the last pixel clamps


def test_cp_equals_its_equations():
    torch.manual_seed(0)
    C, k = 4, 3
    cp = randomise_bn(CorrespondenceProposal(C, k=k, stage="res3"))  # res3: shrunk by 2 before the search
    B, T, H, W = 1, 3, 4, 4
    x = torch.randn(B, T, C, H, W, dtype=torch.float64)
    small = x[:, :, :, ::2, ::2]  # the legacy 4 -> 2 resize takes pixels (0, 2)
    h, w = 2, 2
    pts = [(t, i, j) for t in range(T) for i in range(h) for j in range(w)]
    feats = {p: small[0, p[0], :, p[1], p[2]] for p in pts}
    out = torch.zeros(B, T, C, h, w, dtype=torch.float64)
    for p in pts:
        others = sorted((q for q in pts if q[0] != p[0]), key=lambda q: float((feats[p] - feats[q]).pow(2).sum()))[:k]
        hidden = []
        for q in others:
            diff = torch.tensor([(q[0] - p[0]) / T, (q[1] - p[1]) / h, (q[2] - p[2]) / w], dtype=torch.float64)
            v = torch.cat([diff, feats[p], feats[q]])
            for lin, norm in ((cp.mlp[0], cp.mlp[1]), (cp.mlp[3], cp.mlp[4])):
                v = conv1x1(lin, v)
                v = torch.relu(torch.stack([bn(norm, v[c], c) for c in range(v.shape[0])]))
            hidden.append(v)
        g = torch.stack(hidden).amax(0)
        z = conv1x1(cp.out, g)
        out[0, p[0], :, p[1], p[2]] = torch.stack([bn(cp.bn, z[c], c) for c in range(C)])
    up = legacy_resize(out.flatten(0, 1), (H, W)).view_as(x)
    with torch.no_grad():
        assert torch.allclose(cp(x), x + up, atol=1e-10)
        assert torch.allclose(cp.proposal(x), up, atol=1e-10)


def test_tea_motion_excitation_equals_its_equations():
    torch.manual_seed(0)
    C, T, H, W = 8, 3, 3, 3
    me = randomise_bn(MotionExcitation(C, ratio=2))  # Cr = 4
    x = torch.randn(1, T, C, H, W, dtype=torch.float64)
    cr = me.reduce[0].out_channels
    r = conv_bn_at_each_position(me.reduce[0], me.reduce[1], x[0])  # no ReLU in TEA's reduction

    def depthwise(m, c, i, j):  # the 3x3 depthwise convolution of frame m, channel c, zero-padded
        return sum(me.transform.weight[c, 0, a, b] * r[m, c, i + a - 1, j + b - 1]
                   for a in range(3) for b in range(3) if 0 <= i + a - 1 < H and 0 <= j + b - 1 < W)

    ref = torch.zeros_like(x)
    for t in range(T):
        pooled = torch.zeros(cr, dtype=torch.float64)  # the last frame's difference is the appended zero map
        if t < T - 1:
            pooled = torch.stack([sum(depthwise(t + 1, c, i, j) - r[t, c, i, j] for i in range(H) for j in range(W))
                                  / (H * W) for c in range(cr)])
        z = me.expand.weight[:, :, 0, 0] @ pooled
        gate = torch.stack([torch.sigmoid(bn(me.bn, z[c], c)) - 0.5 for c in range(C)])
        ref[0, t] = x[0, t] + x[0, t] * gate[:, None, None]
    with torch.no_grad():
        assert torch.allclose(me(x), ref, atol=1e-10)
    assert me.expand.bias is None  # the expansion has no bias: the BN after it does the shift


def test_cost_b_predicts_view_weights_from_the_max_pooled_views():
    torch.manual_seed(0)
    block = randomise_bn(CoSTBlock(8, variant="b"))
    m = block.cost
    nn.init.normal_(m.predict.weight, 0, 0.5), nn.init.normal_(m.mix.weight, 0, 0.5)
    c_in = m.weight.shape[1]
    x = torch.randn(2, c_in, 3, 4, 4, dtype=torch.float64)  # (B, C, T, H, W)
    v = m.views(x)  # tested against a loop in test_motion.py
    with torch.no_grad():
        y = m(x)
        for b in range(2):
            pooled = [v[b, view].amax((-3, -2, -1)) for view in range(3)]  # global max over T, H, W
            fc = [m.predict.weight @ p for p in pooled]  # the shared C -> C layer, no bias
            for c in range(c_in):
                mixed = m.mix.weight @ torch.stack([fc[view][c] for view in range(3)])  # 3 -> 3, no bias
                w = torch.softmax(mixed, 0)
                ref = sum(w[view] * v[b, view, c] for view in range(3))
                assert torch.allclose(y[b, c], ref, atol=1e-12)
    assert m.predict.bias is None


def test_motion_squeeze_equals_its_equations():
    torch.manual_seed(0)
    C, T, H, W = 8, 3, 4, 4
    ms = randomise_bn(MotionSqueeze(C, window=(3, 3)))  # radius 1, Gaussian sigma 1
    x = torch.randn(1, T, C, H, W, dtype=torch.float64)
    r = conv_bn_at_each_position(ms.reduce[0], ms.reduce[1], x[0], relu=True)  # the channel reduction
    rn = r / (r.pow(2).sum(1, keepdim=True) + 1e-6).sqrt()
    flow = torch.zeros(T, 3, H, W, dtype=torch.float64)  # channels (x, y, confidence)
    for t in range(T - 1):
        for i in range(H):
            for j in range(W):
                corr = torch.zeros(3, 3, dtype=torch.float64)  # [dy, dx], zero outside the map, then ReLU
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        if 0 <= i + dy < H and 0 <= j + dx < W:
                            corr[dy + 1, dx + 1] = torch.relu(rn[t, :, i, j] @ rn[t + 1, :, i + dy, j + dx])
                arg = int(corr.flatten().argmax())
                ay, ax = arg // 3 - 1, arg % 3 - 1
                gauss = torch.tensor([[math.exp(-((dx - ax) ** 2 + (dy - ay) ** 2) / 2.0) for dx in (-1, 0, 1)]
                                      for dy in (-1, 0, 1)], dtype=torch.float64)
                p = torch.softmax((corr * gauss).flatten() * 100, 0).view(3, 3)
                disp = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
                flow[t, 0, i, j] = (p.sum(0) * disp).sum()  # x: the dx marginal's expectation / radius 1
                flow[t, 1, i, j] = (p.sum(1) * disp).sum()
                flow[t, 2, i, j] = corr.max()
    flow[T - 1] = flow[T - 2]  # the last frame repeats the last pair's flow
    with torch.no_grad():
        ref = x + ms.lift(flow).view_as(x)
        assert torch.allclose(ms(x), ref, atol=1e-10)
    kinds = [type(m).__name__ for m in ms.lift]
    assert kinds[:6] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU"]  # BN + ReLU after both
    assert ms.lift[0].kernel_size == (7, 7) and ms.lift[6].kernel_size == (3, 3) and kinds[-1] == "ReLU"
