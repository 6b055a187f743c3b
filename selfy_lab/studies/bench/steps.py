"""(b) Training steps of a block's model against its plain backbone, and (d) their memory."""
from __future__ import annotations

from typing import Callable

import torch

from ...config.pairs import SELFY_TSM_R18, TSM_R18, step_pairs
from ...core.runtime import compiled
from .measure import (
    clip, flop_ratio, interleaved_steps, make_model, pair_models, peak_rss_of_step, saved_tensor_bytes, step_input,
    time_call, train_step,
)

def compiled_models(models: dict, batch: tuple[torch.Tensor, torch.Tensor], amp_dtype, bench: str,
              progress: Callable[[str], None]) -> tuple[dict, list[dict]]:
    """Each model under ``torch.compile`` as ``--compile`` trains it (:func:`runtime.compiled`), compiled by one
    training step (its forward and backward graphs), with a ``compile_seconds`` row each: that step's time."""
    x, y = batch
    out, rows = {}, []
    for name, m in models.items():
        progress(f"{bench} {name} compiling")
        out[name] = compiled(m)
        seconds = time_call(lambda: train_step(out[name], x, y, amp_dtype), device=x.device)
        rows.append(dict(benchmark=bench, impl=name, size=x.shape[-1], metric="compile_seconds", value=seconds))
    return out, rows


def bench_step(device="cpu", repeats: int = 7, channels_last: bool = True, amp: bool | None = None,
               compile: bool = False, pairs: dict | None = None,
               progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Each pair of :func:`step_pairs` (or ``pairs``): both models' training steps interleaved (one warm-up
    round, then ``repeats``), the medians, their ratio and the FLOP ratio. With ``compile``, the pair also
    runs under ``torch.compile``, the four steps taking turns: rows ``<pair>_compiled`` with the compiled
    steps, their ratios, each model's compile time and ``compile_speedup`` (eager over compiled step)."""
    device = torch.device(device)
    amp_dtype = torch.bfloat16 if (amp if amp is not None else device.type == "cuda") else None
    rows = []
    for bench, (base_cfg, block_cfg, batch, size) in (step_pairs() if pairs is None else pairs).items():
        models = pair_models(base_cfg, block_cfg, device, channels_last)
        names = tuple(models)
        inputs = step_input(device, base_cfg.frames, size, batch, channels_last)
        settings = {bench: models}
        if compile:
            settings[f"{bench}_compiled"], compile_rows = compiled_models(models, inputs, amp_dtype, f"{bench}_compiled",
                                                                    progress)
            rows += compile_rows
        timed = {(b, k): m for b, ms in settings.items() for k, m in ms.items()}
        med = interleaved_steps(timed, inputs, amp_dtype, repeats,
                                 lambda key, r: progress(f"{key[0]} {key[1]} {r}/{repeats}"))
        fr = flop_ratio(base_cfg, block_cfg, size)
        for b in settings:
            rows += [dict(benchmark=b, impl=k, size=size, metric="seconds", value=med[(b, k)]) for k in names]
            rows.append(dict(benchmark=b, impl=names[1], size=size, metric="time_ratio",
                             value=med[(b, names[1])] / med[(b, names[0])]))
            rows.append(dict(benchmark=b, impl=names[1], size=size, metric="flop_ratio", value=fr))
        if compile:
            rows += [dict(benchmark=f"{bench}_compiled", impl=k, size=size, metric="compile_speedup",
                          value=med[(bench, k)] / med[(f"{bench}_compiled", k)]) for k in names]
        del models, settings, timed
    return rows




def bench_memory(device="cpu", channels_last: bool = True, rss: bool = True,
                 progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    device = torch.device(device)
    rows = []
    x = clip(device)
    y = torch.zeros(1, dtype=torch.long, device=device)
    vals: dict[str, dict[str, float]] = {}
    for name, cfg in (("tsm-r18", TSM_R18), ("selfy-tsm-r18", SELFY_TSM_R18)):
        progress(f"memory {name}")
        m = make_model(cfg, device, channels_last=channels_last)
        vals[name] = {"saved_for_backward_mb": saved_tensor_bytes(m, x, y) / 2**20}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            train_step(m, x, y, torch.bfloat16)
            vals[name]["cuda_peak_mb"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        elif rss:
            vals[name]["peak_rss_step_mb"] = peak_rss_of_step(cfg, channels_last) / 2**20
        del m
    for name, d in vals.items():
        for metric, v in d.items():
            rows.append(dict(benchmark="train_step_memory", impl=name, size=224, metric=metric, value=v))
    for metric in vals["tsm-r18"]:
        rows.append(dict(benchmark="train_step_memory", impl="selfy-tsm-r18", size=224, metric=metric + "_ratio",
                         value=vals["selfy-tsm-r18"][metric] / vals["tsm-r18"][metric]))
    return rows
