"""(c) Every block of the toolkit against the plain backbone, all models of a setting taking turns."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch

from ..config import EVERY, ModelConfig
from .measure import interleaved_steps, make_model, step_input
from .steps import TSM_R18, quick_pair


def module_settings() -> dict[str, tuple[ModelConfig, int, int]]:
    """The module comparison's settings: name -> (plain backbone, batch, input side)."""
    base, _, batch, size = quick_pair()
    return {"modules_quick": (base, batch, size), "modules_tsm_r18": (TSM_R18, 1, 224)}


# the offsets of the SELFY block in the module comparison (the other blocks take none)
MODULE_SELFY_OFFSETS = (-3, -2, -1, 0, 1, 2, 3)


# the modules benched also in their papers' arrangement, one inside every residual block of res2-res5
# (experiments/motion_modules_every.yaml), as ``<block>:every``
MODULE_EVERY_BLOCKS = ("stm", "tea", "tam")
MODULE_EVERY_POSITION = tuple(f"res{i}{EVERY}" for i in (2, 3, 4, 5))


def module_configs(base: ModelConfig) -> dict[str, ModelConfig]:
    """Every block at res3 of ``base``: SELFY with -3..3 and each motion module, on the base's other fields;
    STM, TEA and TAM inside every residual block of res2-res5 (``stm:every``, ...); and HCML's frame-difference
    hierarchy at res2-res4 (``hcml-diff``, trained with its auxiliary loss)."""
    from ..config import MOTION_BLOCKS

    selfy = replace(base, block="selfy", offsets=MODULE_SELFY_OFFSETS, position=("res3",))
    every = {f"{b}{EVERY}": replace(base, block=b, position=MODULE_EVERY_POSITION) for b in MODULE_EVERY_BLOCKS}
    return {"selfy": selfy, **{b: replace(selfy, block=b) for b in MOTION_BLOCKS}, **every,
            "hcml-diff": replace(base, hierarchy="diff")}  # the motion hierarchy at res2-res4, with its loss


def bench_modules(device="cpu", repeats: int = 5, channels_last: bool = True, amp: bool | None = None,
                  settings: dict | None = None, blocks: tuple[str, ...] | None = None,
                  progress: Callable[[str], None] = lambda s: None, own_blocks: tuple[str, ...] = ()) -> list[dict]:
    """For each setting of :func:`module_settings`, the training step of the plain backbone and of every
    block of :func:`module_configs` (or ``blocks``), interleaved round by round (one warm-up round), the
    medians, and per block its time ratio and FLOP ratio against the plain backbone."""
    from ..flops import model_cost

    device = torch.device(device)
    amp_dtype = torch.bfloat16 if (amp if amp is not None else device.type == "cuda") else None
    rows = []
    for bench, (base_cfg, batch, size) in (settings or module_settings()).items():
        cfgs = {"none": base_cfg, **{b: c for b, c in module_configs(base_cfg).items() if blocks is None or b in blocks}}
        cfgs.update({b: replace(base_cfg, block=b, position=("res3",)) for b in own_blocks})  # the user's own modules
        models = {b: make_model(c, device, channels_last) for b, c in cfgs.items()}
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
