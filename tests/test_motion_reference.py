"""Each motion module in its default configuration against a direct, loop-level version of its authors'
equations (float64, eval mode, every BatchNorm given random statistics and affine parameters)."""
import math

import pytest
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
