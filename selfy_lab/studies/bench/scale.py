"""The paper's scale: (g) TSM-R50 against SELFYNet-TSM-R50 (one block after res3, offsets -2..2, 9x9 window:
the reference settings), 8 frames at 224x224, at real batches; (h) the SELFY block's memory-saving path, its
STSS and extraction recomputed in the backward pass, at res2 with ``--reduce 1`` (the largest volume a block
can have). Both as ratios of models measured side by side, taking turns.

Memory: on GPUs the allocator's peak of one training step above what the model and its input hold; on CPUs
the bytes autograd saves for the backward pass (exact) and the peak resident size that one step adds in a
fresh process (what the operating system sees)."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch

from ...config.pairs import SELFY_TSM_R50, TSM_R50
from ...config.run import ModelConfig
from .measure import (
    flop_ratio, interleaved_steps, make_model, pair_models, peak_rss_of_step, saved_tensor_bytes, step_input,
    train_step,
)
from .steps import compiled_models

# batches of the paper-scale pair: what a 2-core CPU steps in seconds, what GPUs train with (8-64 clips)
CPU_BATCHES = (1, 2)
CUDA_BATCHES = (8, 16, 32)
SIZE = 224


def _amp_dtype(device: torch.device, amp: bool | None):
    return torch.bfloat16 if (amp if amp is not None else device.type == "cuda") else None


def _memory_mb(models: dict, cfgs: dict, inputs, amp_dtype, channels_last: bool, rss: bool,
               progress: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """Per model: ``cuda_peak_mb`` on GPUs; ``saved_for_backward_mb`` and (``rss``) ``peak_rss_step_mb`` on
    CPUs."""
    x, y = inputs
    out: dict[str, dict[str, float]] = {}
    for name, m in models.items():
        progress(f"memory {name}")
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
            m.zero_grad(set_to_none=True)
            torch.cuda.reset_peak_memory_stats(x.device)
            base = torch.cuda.memory_allocated(x.device)
            train_step(m, x, y, amp_dtype)
            torch.cuda.synchronize(x.device)
            out[name] = {"cuda_peak_mb": (torch.cuda.max_memory_allocated(x.device) - base) / 2**20}
        else:
            m.zero_grad(set_to_none=True)
            out[name] = {"saved_for_backward_mb": saved_tensor_bytes(m, x, y) / 2**20}
            if rss:
                out[name]["peak_rss_step_mb"] = peak_rss_of_step(cfgs[name], channels_last, len(y), x.shape[-1]) / 2**20
    return out


def _rows(bench: str, impl: str, size: int, **metrics: float) -> list[dict]:
    return [dict(benchmark=bench, impl=impl, size=size, metric=k, value=v) for k, v in metrics.items()]


def bench_paper_scale(device="cpu", repeats: int = 3, channels_last: bool = True, amp: bool | None = None,
                      compile: bool = False, batches: tuple[int, ...] | None = None,
                      progress: Callable[[str], None] = lambda s: None,
                      pair: tuple[ModelConfig, ModelConfig] = (TSM_R50, SELFY_TSM_R50), size: int = SIZE,
                      rss: bool = True) -> list[dict]:
    """The paper-scale pair's training steps at each batch (default: 1, 2 on CPUs; 8, 16, 32 on GPUs, in bf16),
    taking turns: per model ``seconds``, ``clips_per_s`` and memory; for SELFYNet ``time_ratio``, ``flop_ratio``
    and ``<memory>_ratio``. On a GPU a batch that does not fit ends the list with an ``out_of_memory`` row. With
    ``compile`` the pair also runs compiled (``paper_scale_b<N>_compiled`` rows and ``compile_seconds``)."""
    device = torch.device(device)
    amp_dtype = _amp_dtype(device, amp)
    batches = batches or (CUDA_BATCHES if device.type == "cuda" else CPU_BATCHES)
    models = pair_models(*pair, device, channels_last)
    names = tuple(models)
    cfgs = dict(zip(names, pair))
    fr = flop_ratio(*pair, size)
    rows: list[dict] = []
    compiled = None
    for batch in batches:
        bench = f"paper_scale_b{batch}"
        try:
            inputs = step_input(device, pair[0].frames, size, batch, channels_last)
            settings = {bench: models}
            if compile:
                if compiled is None:
                    compiled, compile_rows = compiled_models(models, inputs, amp_dtype, f"{bench}_compiled", progress)
                    rows += compile_rows
                settings[f"{bench}_compiled"] = compiled
            timed = {(b, k): m for b, ms in settings.items() for k, m in ms.items()}
            med = interleaved_steps(timed, inputs, amp_dtype, repeats,
                                    lambda key, r: progress(f"{key[0]} {key[1]} {r}/{repeats}"))
            for b in settings:
                for k in names:
                    rows += _rows(b, k, size, seconds=med[(b, k)], clips_per_s=batch / med[(b, k)])
                rows += _rows(b, names[1], size, time_ratio=med[(b, names[1])] / med[(b, names[0])], flop_ratio=fr)
            mem = _memory_mb(models, cfgs, inputs, amp_dtype, channels_last, rss, progress)
            for k in names:
                rows += _rows(bench, k, size, **mem[k])
            rows += _rows(bench, names[1], size, **{f"{m}_ratio": mem[names[1]][m] / mem[names[0]][m] for m in mem[names[0]]})
        except torch.cuda.OutOfMemoryError:
            rows += _rows(bench, names[1], size, out_of_memory=1.0)
            torch.cuda.empty_cache()
            break
    return rows


def stss_memory_configs(block: ModelConfig = SELFY_TSM_R50) -> dict[str, ModelConfig]:
    """The plain backbone and ``block``'s SELFY at res2 with ``reduce 1`` (56x56 STSS at 224 input), keeping
    its STSS for the backward pass (``save``) and recomputing it there (``recompute``)."""
    res2 = replace(block, position=("res2",), reduce=1)
    return {block.backbone: replace(block, block="none"), "selfy-res2-reduce1-save": replace(res2, stss_memory="save"),
            "selfy-res2-reduce1-recompute": replace(res2, stss_memory="recompute")}


def bench_stss_memory(device="cpu", repeats: int = 3, channels_last: bool = True, amp: bool | None = None,
                      batch: int | None = None, progress: Callable[[str], None] = lambda s: None,
                      block: ModelConfig = SELFY_TSM_R50, size: int = SIZE, rss: bool = True) -> list[dict]:
    """Step time and memory of :func:`stss_memory_configs` at one batch (1 on CPUs, 8 on GPUs), taking turns;
    the recomputing model's ``time_ratio`` and memory ratios against the saving one."""
    device = torch.device(device)
    amp_dtype = _amp_dtype(device, amp)
    batch = batch or (8 if device.type == "cuda" else 1)
    cfgs = stss_memory_configs(block)
    models = {k: make_model(c, device, channels_last=channels_last) for k, c in cfgs.items()}
    inputs = step_input(device, block.frames, size, batch, channels_last)
    bench = f"stss_memory_b{batch}"
    med = interleaved_steps(models, inputs, amp_dtype, repeats, lambda k, r: progress(f"{bench} {k} {r}/{repeats}"))
    mem = _memory_mb(models, cfgs, inputs, amp_dtype, channels_last, rss, progress)
    rows: list[dict] = []
    for k in cfgs:
        rows += _rows(bench, k, size, seconds=med[k], **mem[k])
    save, rec = "selfy-res2-reduce1-save", "selfy-res2-reduce1-recompute"
    rows += _rows(bench, rec, size, time_ratio=med[rec] / med[save],
                  **{f"{m}_ratio": mem[rec][m] / mem[save][m] for m in mem[save]})
    return rows
