"""Spatio-temporal self-similarity (STSS), Eq. (1) of the paper.

``S[b, t, i, u+dU, v+dV, y, x] = sim(q[b, t, :, y, x], k[b, t + offsets[i], :, y + u, x + v])``
with zeros wherever the neighbour falls outside the clip in time or space.

The work is done as batched matrix products followed by one ``gather``: every query position is
multiplied with every key position of a tile that contains its whole U x V neighbourhood, then the
neighbourhood is picked out. For small maps (14x14 at the paper's settings) one tile covers the frame
(the "global" product of the reference code, but without its diagonal-extraction loops); for large maps
tiles of P x P queries keep the cost linear in H*W. Both paths are exact, differentiable, and use no
Python loop over batch, time or positions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config.grammar import parse_offsets, parse_window
from ..config.vocabulary import SIMILARITIES
from ..core.runtime import device_constant, shape_cache

# The reference code's normalisation: x / sqrt(sum(x^2) + eps).
COSINE_EPS = 1e-6
# Large negative logit for masked softmax entries; finite so that bf16 and all-masked rows stay finite.
_MASKED_LOGIT = -1e4


def upcast(x: torch.Tensor) -> torch.Tensor:
    """Half / bfloat16 to float32 for reductions; float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def l2_normalize(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Normalise feature vectors along ``dim`` as the reference code does (norm accumulated in >= float32)."""
    norm = upcast(x).pow(2).sum(dim, keepdim=True).add(COSINE_EPS).rsqrt()
    return x * norm.to(x.dtype)


def stss(
    video: torch.Tensor,
    offsets,
    window=(9, 9),
    similarity: str = "cosine",
    key: torch.Tensor | None = None,
) -> torch.Tensor:
    """STSS of a clip feature tensor.

    Args:
        video: (B, T, C, H, W) query features.
        offsets: sorted distinct temporal offsets, e.g. (-2, -1, 0, 1, 2) or (1,).
        window: (U, V) odd spatial window; u moves along H, v along W.
        similarity: ``cosine`` (default, reference normalisation), ``dot`` or ``embedded_gaussian``
            (dot product of ``video`` and ``key`` turned into a softmax over the valid (L, U, V)
            neighbours, as in non-local networks).
        key: (B, T, C, H, W) key features; defaults to ``video`` (self-similarity).
    Returns:
        (B, T, L, U, V, H, W)
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity '{similarity}': choose from {', '.join(SIMILARITIES)}")
    if video.dim() != 5:
        raise ValueError(f"video must be (B, T, C, H, W), got shape {tuple(video.shape)}")
    offs = parse_offsets(offsets)
    if isinstance(offsets, (tuple, list)) and tuple(offsets) != offs:
        raise ValueError(f"offsets {tuple(offsets)} must be sorted and distinct: the L axis follows their order")
    vol = stss_volumes(video, offs, parse_window(window), similarity, key)  # (B, T, H, W, L, U, V)
    return vol.permute(0, 1, 4, 5, 6, 2, 3)  # -> (B, T, L, U, V, H, W)


def stss_volumes(
    video: torch.Tensor,
    offsets,
    window=(9, 9),
    similarity: str = "cosine",
    key: torch.Tensor | None = None,
) -> torch.Tensor:
    """Same as :func:`stss` but in the layout the SELFY block consumes: (B, T, H, W, L, U, V), contiguous.
    Inside the models: the arguments are trusted (checked where they enter, by the config or :func:`stss`)."""
    U, V = window
    q = video
    k = video if key is None else key
    if similarity == "cosine":
        q = l2_normalize(q, 2)
        k = q if key is None else l2_normalize(k, 2)
    out = _correlate(q, k, offsets, (U, V))  # (B, T, H, W, L, U, V)
    if similarity == "embedded_gaussian":
        out = _masked_softmax(out, offsets, (U, V))
    return out


def _correlate(q: torch.Tensor, k: torch.Tensor, offsets: tuple[int, ...], window: tuple[int, int]) -> torch.Tensor:
    B, T, C, H, W = q.shape
    U, V = window
    dU, dV = U // 2, V // 2
    L = len(offsets)
    kt = _temporal_targets(k, offsets)  # (B, T, L, C, H, W), zero frames outside the clip
    tile = _choose_tile(H, W, dU, dV)
    if tile is None:
        return _correlate_global(q, kt, window).view(B, T, H, W, L, U, V)
    return _correlate_tiled(q, kt, window, tile).view(B, T, H, W, L, U, V)


def _temporal_targets(k: torch.Tensor, offsets: tuple[int, ...]) -> torch.Tensor:
    B, T, C, H, W = k.shape
    pad = max(abs(o) for o in offsets)
    kp = F.pad(k, (0, 0, 0, 0, 0, 0, pad, pad))  # (B, T + 2 pad, C, H, W)
    idx = _time_index(T, offsets, pad, k.device)  # (T, L)
    return kp[:, idx]  # (B, T, L, C, H, W)


def _choose_tile(H: int, W: int, dU: int, dV: int) -> int | None:
    """Pick the query tile size by a multiply-accumulate cost model; None means one global product.

    Tiles smaller than 7 turn the products into many tiny matrices, which run far below peak.
    """
    best, best_cost = None, H * W * H * W
    for p in range(7, 17):
        if p >= H and p >= W:
            break
        n_tiles = -(-H // p) * -(-W // p)
        cost = n_tiles * p * p * (p + 2 * dU) * (p + 2 * dV)
        if cost < best_cost:
            best, best_cost = p, cost
    return best


def _correlate_global(q: torch.Tensor, kt: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    B, T, C, H, W = q.shape
    L = kt.shape[2]
    U, V = window
    # one (HW x C) @ (C x L*HW) product per frame: every query against every key of its L targets
    Q = q.reshape(B * T, C, H * W).transpose(1, 2)  # (BT, HW, C)
    K = kt.permute(0, 1, 3, 2, 4, 5).reshape(B * T, C, L * H * W)  # (BT, C, L*HW)
    G = torch.bmm(Q, K)  # (BT, HW, L*HW)
    idx, valid = _global_index(H, W, L, U, V, q.device)  # (HW, L*U*V) each
    out = torch.gather(G, 2, idx.expand(B * T, -1, -1))  # (BT, HW, L*U*V)
    return out * valid.to(out.dtype)  # neighbours outside the frame are 0


def _correlate_tiled(q: torch.Tensor, kt: torch.Tensor, window: tuple[int, int], P: int) -> torch.Tensor:
    B, T, C, H, W = q.shape
    L = kt.shape[2]
    U, V = window
    dU, dV = U // 2, V // 2
    nH, nW = -(-H // P), -(-W // P)
    Hp, Wp = nH * P, nW * P
    Gh, Gw = P + 2 * dU, P + 2 * dV
    # keys: zero-pad by the window radius (and up to the tiled size), cut overlapping Gh x Gw tiles
    kp = F.pad(kt.reshape(B * T, L, C, H, W), (dV, dV + Wp - W, dU, dU + Hp - H))
    kp = kp.unfold(3, Gh, P).unfold(4, Gw, P)  # (BT, L, C, nH, nW, Gh, Gw)
    K = kp.permute(0, 3, 4, 2, 1, 5, 6).reshape(B * T * nH * nW, C, L * Gh * Gw)
    # queries: P x P tiles
    qp = F.pad(q.reshape(B * T, C, H, W), (0, Wp - W, 0, Hp - H))
    Q = qp.reshape(B * T, C, nH, P, nW, P).permute(0, 2, 4, 3, 5, 1).reshape(B * T * nH * nW, P * P, C)
    G = torch.bmm(Q, K)  # (BT*nH*nW, P*P, L*Gh*Gw)
    idx = _tile_index(P, Gh, Gw, L, U, V, q.device)  # (P*P, L*U*V)
    out = torch.gather(G, 2, idx.expand(G.shape[0], -1, -1))  # (BT*nH*nW, P*P, L*U*V)
    out = out.view(B * T, nH, nW, P, P, L * U * V).permute(0, 1, 3, 2, 4, 5)  # (BT, nH, P, nW, P, LUV)
    out = out.reshape(B * T, Hp, Wp, L * U * V)[:, :H, :W]
    return out.reshape(B * T, H * W, L * U * V)


def _masked_softmax(vol: torch.Tensor, offsets: tuple[int, ...], window: tuple[int, int]) -> torch.Tensor:
    B, T, H, W, L, U, V = vol.shape
    valid = neighbour_mask(T, H, W, offsets, window, vol.device)  # (T, H, W, L, U, V)
    logits = vol.masked_fill(~valid, _MASKED_LOGIT).reshape(B, T, H, W, L * U * V)
    prob = torch.softmax(upcast(logits), dim=-1).to(vol.dtype)
    return prob.view_as(vol) * valid  # rows with no valid neighbour become all zero


# ---- index tensors, cached per shape and device (built on the device: no host round trips) ----

@shape_cache
def _time_index(T: int, offsets: tuple[int, ...], pad: int, device: torch.device) -> torch.Tensor:
    t = torch.arange(T, device=device).view(T, 1)
    return t + device_constant(offsets, device).view(1, -1) + pad


@shape_cache
def _global_index(H: int, W: int, L: int, U: int, V: int, device: torch.device):
    dU, dV = U // 2, V // 2
    y = torch.arange(H, device=device).view(H, 1, 1, 1, 1)
    x = torch.arange(W, device=device).view(1, W, 1, 1, 1)
    u = torch.arange(-dU, dU + 1, device=device).view(1, 1, 1, U, 1)
    v = torch.arange(-dV, dV + 1, device=device).view(1, 1, 1, 1, V)
    ty, tx = y + u, x + v  # (H, 1, 1, U, 1), (1, W, 1, 1, V)
    valid = (ty >= 0) & (ty < H) & (tx >= 0) & (tx < W)  # (H, W, 1, U, V)
    l = torch.arange(L, device=device).view(1, 1, L, 1, 1)
    idx = l * (H * W) + ty.clamp(0, H - 1) * W + tx.clamp(0, W - 1)  # (H, W, L, U, V)
    valid = valid.expand(H, W, L, U, V)
    return idx.reshape(1, H * W, L * U * V), valid.reshape(1, H * W, L * U * V)


@shape_cache
def _tile_index(P: int, Gh: int, Gw: int, L: int, U: int, V: int, device: torch.device) -> torch.Tensor:
    py = torch.arange(P, device=device).view(P, 1, 1, 1, 1)
    px = torch.arange(P, device=device).view(1, P, 1, 1, 1)
    l = torch.arange(L, device=device).view(1, 1, L, 1, 1)
    u = torch.arange(U, device=device).view(1, 1, 1, U, 1)
    v = torch.arange(V, device=device).view(1, 1, 1, 1, V)
    idx = l * (Gh * Gw) + (py + u) * Gw + (px + v)  # (P, P, L, U, V)
    return idx.reshape(1, P * P, L * U * V)


@shape_cache
def neighbour_mask(T: int, H: int, W: int, offsets: tuple[int, ...], window: tuple[int, int], device: torch.device):
    """Boolean (T, H, W, L, U, V): True where the neighbour lies inside the clip."""
    U, V = window
    dU, dV = U // 2, V // 2
    t = torch.arange(T, device=device).view(T, 1, 1, 1, 1, 1)
    y = torch.arange(H, device=device).view(1, H, 1, 1, 1, 1)
    x = torch.arange(W, device=device).view(1, 1, W, 1, 1, 1)
    tl = t + device_constant(offsets, device).view(1, 1, 1, -1, 1, 1)
    yu = y + torch.arange(-dU, dU + 1, device=device).view(1, 1, 1, 1, U, 1)
    xv = x + torch.arange(-dV, dV + 1, device=device).view(1, 1, 1, 1, 1, V)
    return (tl >= 0) & (tl < T) & (yu >= 0) & (yu < H) & (xv >= 0) & (xv < W)


def stss_macs(B: int, T: int, C: int, H: int, W: int, L: int, U: int, V: int) -> int:
    """Multiply-accumulates of Eq. (1) itself: one C-long dot product per (b, t, l, u, v, y, x)."""
    return B * T * L * U * V * H * W * C
