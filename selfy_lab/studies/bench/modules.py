"""(c) Every block of the toolkit against the plain backbone, all models of a setting taking turns."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch

from ...config.pairs import module_configs, module_settings
from ...models.flops import model_cost
from .measure import interleaved_steps, make_model, step_input


def bench_modules(device="cpu", repeats: int = 5, channels_last: bool = True, amp: bool | None = None,
                  settings: dict | None = None, blocks: tuple[str, ...] | None = None,
                  progress: Callable[[str], None] = lambda s: None, own_blocks: tuple[str, ...] = ()) -> list[dict]:
    """For each setting of :func:`module_settings`, the training step of the plain backbone and of every
    block of :func:`module_configs` (or ``blocks``), interleaved round by round (one warm-up round), the
    medians, and per block its time ratio and FLOP ratio against the plain backbone."""
    device = torch.device(device)
    amp_dtype = torch.bfloat16 if (amp if amp is not None else device.type == "cuda") else None
    rows = []
    for bench, (base_cfg, batch, size) in (settings or module_settings()).items():
        cfgs = {"none": base_cfg, **{b: c for b, c in module_configs(base_cfg).items() if blocks is None or b in blocks}}
        cfgs.update({b: replace(base_cfg, block=b, position=("res3",)) for b in own_blocks})  # the user's own modules
        models = {b: make_model(c, device, channels_last=channels_last) for b, c in cfgs.items()}
        med = interleaved_steps(models, step_input(device, base_cfg.frames, size, batch, channels_last), amp_dtype,
                                 repeats, lambda name, r: progress(f"{bench} {name} {r}/{repeats}"))
        base_gflops = model_cost(base_cfg, size)["gflops"]
        for b, cfg in cfgs.items():
            impl = base_cfg.backbone if b == "none" else f"{b}-{base_cfg.backbone}"
            rows.append(dict(benchmark=bench, impl=impl, size=size, metric="seconds", value=med[b]))
            if b != "none":
                rows.append(dict(benchmark=bench, impl=impl, size=size, metric="time_ratio", value=med[b] / med["none"]))
                rows.append(dict(benchmark=bench, impl=impl, size=size, metric="flop_ratio",
                                 value=model_cost(cfg, size)["gflops"] / base_gflops))
        del models
    return rows
