"""(f) Where a training step's time goes: torch.profiler's self CPU time per kernel class."""
from __future__ import annotations

import os
import statistics
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from ...config.pairs import step_pairs
from ...core.errors import SelfyError
from .measure import flop_ratio, pair_models, step_input, take_turns, train_step


# kernel classes of the step profile: the operators that carry the FLOPs, BatchNorm, and everything else
# (elementwise passes, copies, pooling, the autograd engine's own work)
CONV_MATMUL_OPS = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addbmm")
PROFILE_CLASSES = ("conv_matmul", "batch_norm", "other")


def kernel_class(op: str) -> str:
    """The class of a profiled operator name: ``conv_matmul``, ``batch_norm`` or ``other``."""
    if op in CONV_MATMUL_OPS or ("convolution" in op and op.startswith("aten::")):
        return "conv_matmul"
    if "batch_norm" in op:
        return "batch_norm"
    return "other"


def _profiled_ms(step: Callable[[], None]) -> dict[str, float]:
    """Self CPU time of one call of ``step`` under torch.profiler, by kernel class, in ms."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # no profiler start/stop lines on stderr (read at first use)

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    ms = dict.fromkeys(PROFILE_CLASSES, 0.0)
    for e in prof.key_averages():
        ms[kernel_class(e.key)] += e.self_cpu_time_total / 1000
    return ms


def require_cpu_profile(device) -> torch.device:
    """The device, when the step profile can run on it (the CPU); a one-line error otherwise."""
    device = torch.device(device)
    if device.type != "cpu":
        raise SelfyError("the step profile is a CPU measurement: run it with --device cpu "
                         "(on GPUs, torch.profiler's CUDA trace gives the kernels' own times)")
    return device


def bench_profile(device="cpu", repeats: int = 5, channels_last: bool = True, pairs: dict | None = None,
                  progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Where each pair of :func:`step_pairs` (or ``pairs``) spends its training step: torch.profiler's self CPU
    time per kernel class (:data:`PROFILE_CLASSES`), each model profiled over one step per round, the models
    taking turns (one warm-up round, then ``repeats``), the medians over the rounds. Rows per model:
    ``<class>_ms`` and ``total_ms``; for the block, ``<class>_excess_ms`` over the plain backbone and
    ``flop_share_ms``: what the block would cost at the backbone's time per FLOP, (flop_ratio - 1) x the
    backbone's total. An excess of ``conv_matmul`` alone near ``flop_share_ms`` says that the block's
    FLOP-carrying kernels run below the backbone's efficiency, whatever its BatchNorm and elementwise work.
    CPU only: on GPUs the host time of an operator is not its kernel's time."""
    device = require_cpu_profile(device)
    rows = []
    for bench, (base_cfg, block_cfg, batch, size) in (step_pairs() if pairs is None else pairs).items():
        models = pair_models(base_cfg, block_cfg, device, channels_last)
        names = tuple(models)
        x, y = step_input(device, base_cfg.frames, size, batch, channels_last)
        runs = take_turns(models, lambda m: _profiled_ms(lambda: train_step(m, x, y, None)), repeats,
                           lambda name, r: progress(f"{bench}_profile {name} {r}/{repeats}"))
        med = {k: {**{c: statistics.median(v[c] for v in vs) for c in PROFILE_CLASSES},
                   "total": statistics.median(sum(v.values()) for v in vs)} for k, vs in runs.items()}
        bench_name = f"{bench}_profile"
        for k in names:
            rows += [dict(benchmark=bench_name, impl=k, size=size, metric=f"{c}_ms", value=med[k][c])
                     for c in (*PROFILE_CLASSES, "total")]
        rows += [dict(benchmark=bench_name, impl=names[1], size=size, metric=f"{c}_excess_ms",
                      value=med[names[1]][c] - med[names[0]][c]) for c in PROFILE_CLASSES]
        fr = flop_ratio(base_cfg, block_cfg, size)
        rows.append(dict(benchmark=bench_name, impl=names[1], size=size, metric="flop_share_ms",
                         value=(fr - 1) * med[names[0]]["total"]))
        del models
    return rows
