"""STSS against a brute-force Python loop of Eq. (1), in float64."""
import itertools

import pytest
import torch

from selfy_lab import stss
from selfy_lab.models import selfsim as stss_mod


def brute_force(video, offsets, window, similarity="cosine", key=None):
    """Literal Eq. (1): one dot product per (b, t, l, u, v, y, x); zeros outside the clip."""
    B, T, C, H, W = video.shape
    U, V = window
    dU, dV = U // 2, V // 2
    k = video if key is None else key
    if similarity == "cosine":
        q = video / torch.sqrt((video**2).sum(2, keepdim=True) + 1e-6)
        k = k / torch.sqrt((k**2).sum(2, keepdim=True) + 1e-6)
    else:
        q = video
    S = torch.zeros(B, T, len(offsets), U, V, H, W, dtype=video.dtype)
    valid = torch.zeros_like(S, dtype=torch.bool)
    for b, t, (i, l), u, v, y, x in itertools.product(
        range(B), range(T), enumerate(offsets), range(-dU, dU + 1), range(-dV, dV + 1), range(H), range(W)
    ):
        if 0 <= t + l < T and 0 <= y + u < H and 0 <= x + v < W:
            S[b, t, i, u + dU, v + dV, y, x] = (q[b, t, :, y, x] * k[b, t + l, :, y + u, x + v]).sum()
            valid[b, t, i, u + dU, v + dV, y, x] = True
    if similarity == "embedded_gaussian":
        # softmax over the valid (L, U, V) neighbours of each query
        logits = S.masked_fill(~valid, float("-inf")).permute(0, 1, 5, 6, 2, 3, 4).reshape(B, T, H, W, -1)
        p = torch.softmax(logits, -1).nan_to_num(0.0)
        S = p.view(B, T, H, W, len(offsets), U, V).permute(0, 1, 4, 5, 6, 2, 3)
    return S


OFFSET_SETS = [(0,), (1,), (-1, 0, 1), (-2, 0, 2), (-3, -2, -1, 0, 1, 2, 3), (-1, 2)]


@pytest.mark.parametrize("offsets", OFFSET_SETS)
@pytest.mark.parametrize("window", [(3, 3), (5, 3), pytest.param((7, 7), marks=pytest.mark.slow)])  # the loop's longest
def test_cosine_equals_brute_force(offsets, window):
    torch.manual_seed(0)
    v = torch.randn(2, 4, 3, 5, 6, dtype=torch.float64)
    assert torch.allclose(stss(v, offsets, window), brute_force(v, offsets, window), atol=1e-12)


@pytest.mark.parametrize("similarity", ["dot", "embedded_gaussian"])
@pytest.mark.parametrize("offsets", [(1,), (-1, 0, 1), (-2, 0, 2)])
def test_other_similarities_equal_brute_force(similarity, offsets):
    torch.manual_seed(1)
    v = torch.randn(1, 4, 3, 5, 5, dtype=torch.float64)
    k = torch.randn(1, 4, 3, 5, 5, dtype=torch.float64)
    ours = stss(v, offsets, (3, 5), similarity, key=k)
    assert torch.allclose(ours, brute_force(v, offsets, (3, 5), similarity, key=k), atol=1e-10)


def test_all_invalid_rows_are_zero_for_embedded_gaussian():
    # offset +3 in a 3-frame clip: no neighbour exists, the softmax row must be 0 (not NaN, not uniform)
    v = torch.randn(1, 3, 2, 4, 4, dtype=torch.float64)
    out = stss(v, (3,), (3, 3), "embedded_gaussian")
    assert torch.isfinite(out).all() and out.abs().max() == 0


@pytest.mark.parametrize("hw", [(16, 16), pytest.param((20, 13), marks=pytest.mark.slow),
                                pytest.param((9, 30), marks=pytest.mark.slow)])
def test_tiled_path_equals_brute_force(hw):
    H, W = hw
    assert stss_mod._choose_tile(H, W, 1, 2) is not None, "this size should take the tiled path"
    torch.manual_seed(2)
    v = torch.randn(1, 3, 2, H, W, dtype=torch.float64)
    assert torch.allclose(stss(v, (-1, 1), (3, 5)), brute_force(v, (-1, 1), (3, 5)), atol=1e-12)


def test_path_choice_follows_cost_model():
    assert stss_mod._choose_tile(14, 14, 4, 4) is None  # paper's 14x14: one global product
    assert stss_mod._choose_tile(56, 56, 4, 4) is not None  # large maps: tiles, linear in H*W


def test_tiled_and_global_agree_on_large_map():
    torch.manual_seed(3)
    v = torch.randn(1, 3, 8, 30, 30)
    q = stss_mod.l2_normalize(v, 2)
    kt = stss_mod._temporal_targets(q, (-1, 0, 1))
    a = stss_mod._correlate_global(q, kt, (9, 9))
    b = stss_mod._correlate_tiled(q, kt, (9, 9), 8)
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_gradcheck():
    torch.manual_seed(4)
    v = torch.randn(1, 3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: stss(x, (-1, 0, 1), (3, 3)), (v,))
    k = torch.randn(1, 3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: stss(x, (-1, 1), (3, 3), "embedded_gaussian", key=y), (v, k))


def test_shape_and_spatial_self_similarity():
    v = torch.randn(2, 4, 8, 6, 7)
    s = stss(v, (-1, 0, 1), (5, 5))
    assert s.shape == (2, 4, 3, 5, 5, 6, 7)
    # l = 0, (u, v) = (0, 0) is a feature's cosine with itself: 1 (up to the eps)
    assert torch.allclose(s[:, :, 1, 2, 2], torch.ones(2, 4, 6, 7), atol=1e-4)


def test_bfloat16_autocast_runs_and_is_close():
    torch.manual_seed(5)
    v = torch.randn(1, 4, 16, 14, 14)
    ref = stss(v, (-2, -1, 0, 1, 2), (9, 9))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = stss(v.bfloat16(), (-2, -1, 0, 1, 2), (9, 9))
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.05


@pytest.mark.parametrize("bad", [dict(offsets=(1, 0)), dict(offsets=()), dict(window=(4, 3)), dict(similarity="l1")])
def test_bad_arguments_raise(bad):
    args = dict(offsets=(0, 1), window=(3, 3), similarity="cosine") | bad
    with pytest.raises(ValueError):
        stss(torch.randn(1, 2, 2, 4, 4), **args)
