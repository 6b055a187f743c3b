"""(a) The STSS forward + backward against two baselines written here (same output as ours)."""
from __future__ import annotations

import statistics
from typing import Callable

import torch
import torch.nn.functional as F

from ...models.selfsim import l2_normalize, stss_volumes
from .measure import time_call


def stss_reference_global(video: torch.Tensor, offsets, window) -> torch.Tensor:
    """The reference code's path: a global H*W x H*W product per (frame, offset) pair, then the U x V
    window extracted diagonal by diagonal, first along W then along H. (B, T, C, H, W) -> (B*T*L, U, V, H, W)."""
    B, T, C, H, W = video.shape
    U, V = window
    d = U // 2
    L = len(offsets)
    n = l2_normalize(video, 2)
    pad = max(abs(o) for o in offsets)
    npad = F.pad(n, (0, 0, 0, 0, 0, 0, pad, pad))
    idx = torch.arange(T, device=video.device)[:, None] + torch.tensor(offsets, device=video.device) + pad
    query = n.unsqueeze(2).expand(B, T, L, C, H, W).reshape(-1, C, H * W)
    key = npad[:, idx].reshape(-1, C, H * W)
    corr = torch.einsum("bcn,bcm->bnm", key, query).view(-1, H, W, H, W)  # (BTL, y', x', y, x)
    b = corr.shape[0]
    w_diag = corr.new_zeros(b, H, H, V, W)
    for i in range(d + 1):  # x' - x = v along the last two W axes
        if i == 0:
            w_diag[:, :, :, d] = torch.diagonal(corr, offset=0, dim1=2, dim2=4)
        else:
            w_diag[:, :, :, d - i] = F.pad(torch.diagonal(corr, offset=i, dim1=2, dim2=4), (i, 0))
            w_diag[:, :, :, d + i] = F.pad(torch.diagonal(corr, offset=-i, dim1=2, dim2=4), (0, i))
    hw = corr.new_zeros(b, V, W, U, H)
    for i in range(d + 1):  # y' - y = u along the two H axes
        if i == 0:
            hw[:, :, :, d] = torch.diagonal(w_diag, offset=0, dim1=1, dim2=2)
        else:
            hw[:, :, :, d - i] = F.pad(torch.diagonal(w_diag, offset=i, dim1=1, dim2=2), (i, 0))
            hw[:, :, :, d + i] = F.pad(torch.diagonal(w_diag, offset=-i, dim1=1, dim2=2), (0, i))
    return hw.permute(0, 3, 1, 4, 2)  # (BTL, U, V, H, W)


def stss_unfold(video: torch.Tensor, offsets, window) -> torch.Tensor:
    """Plain ``F.unfold``: materialise every key's U x V neighbourhood, multiply, sum over C."""
    B, T, C, H, W = video.shape
    U, V = window
    L = len(offsets)
    n = l2_normalize(video, 2)
    pad = max(abs(o) for o in offsets)
    npad = F.pad(n, (0, 0, 0, 0, 0, 0, pad, pad))
    idx = torch.arange(T, device=video.device)[:, None] + torch.tensor(offsets, device=video.device) + pad
    key = npad[:, idx].reshape(B * T * L, C, H, W)
    cols = F.unfold(key, (U, V), padding=(U // 2, V // 2)).view(B, T, L, C, U * V, H * W)
    q = n.reshape(B, T, 1, C, 1, H * W)
    return (cols * q).sum(3)  # (B, T, L, UV, HW)




def bench_stss(sizes=(14, 28, 56), device="cpu", repeats: int = 3, unfold_max_size: int = 14,
               reference_max_size: int = 56, progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    device = torch.device(device)
    offsets, window, C, T = (-2, -1, 0, 1, 2), (9, 9), 128, 8
    impls = {"ours": lambda v: stss_volumes(v, offsets, window),
             "reference_global": lambda v: stss_reference_global(v, offsets, window),
             "unfold": lambda v: stss_unfold(v, offsets, window)}
    rows = []
    for size in sizes:
        torch.manual_seed(0)
        v = torch.randn(1, T, C, size, size, device=device, requires_grad=True)
        active = {k: f for k, f in impls.items()
                  if not (k == "unfold" and size > unfold_max_size)
                  and not (k == "reference_global" and size > reference_max_size)}
        times: dict[str, list[float]] = {k: [] for k in active}

        def step(fn):
            def run():
                fn(v).square().sum().backward()
                v.grad = None
            return run

        # warm-up round; fast cases get more interleaved repeats so each median spans ~1.5 s
        warm = {name: time_call(step(fn), device) for name, fn in active.items()}
        n = max(repeats, min(30, int(1.5 / max(warm["ours"], 1e-3))))
        for r in range(n):
            for name, fn in active.items():
                progress(f"stss {size}x{size} {name} {r + 1}/{n}")
                if len(times[name]) >= repeats and sum(times[name]) > 5:
                    continue  # a slow baseline stops at `repeats` samples
                times[name].append(time_call(step(fn), device))
        med = {k: statistics.median(t) for k, t in times.items()}
        for name, t in med.items():
            rows.append(dict(benchmark="stss_fwd_bwd", impl=name, size=size, metric="seconds", value=t))
            if name != "ours":
                rows.append(dict(benchmark="stss_fwd_bwd", impl=name, size=size, metric="speedup_of_ours",
                                 value=t / med["ours"]))
    return rows
