"""``selfy-lab bench``: speed and memory, always as ratios measured side by side in one process.

(a) STSS forward + backward at the paper's shape (8 frames, C = 128, offsets -2..2, 9x9) at 14x14,
    28x28 and 56x56: ours against two baselines written here, the reference code's pure-PyTorch path
    (one global H*W x H*W similarity product per frame pair, then the U x V window picked out with
    diagonal slices) and a plain ``F.unfold`` neighbourhood version.
(b) One training step (forward + backward) of SELFYNet-TSM-R18 (res3, -2..2, 9x9) against plain
    TSM-R18 on one 8 x 3 x 224 x 224 clip, and of the built-in benchmark's -3..3 pair as the quick preset
    trains it and with its STSS at res3's full 8x8 (see :func:`step_pairs`), interleaved, median of the
    repeats, reported as time and FLOP ratios. With ``--compile`` each pair also runs under ``torch.compile``,
    its four steps taking turns (``<pair>_compiled`` rows: compiled steps and ratios, compile times, and
    each model's speed-up from compiling).
(c) Every block of the toolkit (SELFY and the field's other motion modules, ``--block``) at res3, and STM,
    TEA and TAM inside every residual block of res2-res5, against the plain backbone: training-step time
    ratio beside the FLOP ratio, all models of a setting
    interleaved, on the quick preset (the motion-modules comparison's setting) and on full-width TSM-R18
    at 8 x 224^2 (see :func:`bench_modules`).
(d) Memory of the same two steps: bytes saved for backward (activations) everywhere, the CUDA
    allocator's peak on GPUs, and the peak resident size of a fresh process per step on CPUs.
(e) ``loader`` (not in the default parts): clips/s of the list-file loader from frame folders and from
    H.264 videos with 0, 2 and N workers, beside the training-step throughput (:func:`bench_loader`).
(f) ``profile`` (not in the default parts, CPU): the training steps of (b) under torch.profiler, split into
    convolutions and matrix products, BatchNorm and everything else, with the block's excess per class beside
    its share of the FLOPs (:func:`bench_profile`).
(g) ``paper`` (not in the default parts): TSM-R50 vs SELFYNet-TSM-R50, 8 x 224^2, at batches 1-2 on CPUs (with
    the profile of (f) at batch 1) and 8, 16, 32 in bf16 on GPUs, eager and with ``--compile`` compiled
    (:func:`bench_paper_scale`).
(h) ``stss-memory`` (not in the default parts): SELFY at res2 with ``--reduce 1``, its STSS kept for the
    backward pass or recomputed there: step time and memory (:func:`bench_stss_memory`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ...config.blocks import is_outside_block
from ...config.pairs import (
    SELFY_TSM_R18, SELFY_TSM_R50, TSM_R18, TSM_R50, module_configs, module_settings, quick_pair, step_pairs,
)
from ...core.errors import SelfyError
from ...core.runtime import keep_freed_memory, select_device
from ...store import results as R
from .loader import bench_loader
from .measure import saved_tensor_bytes, time_call
from .modules import bench_modules
from .profile import PROFILE_CLASSES, bench_profile, kernel_class, require_cpu_profile
from .scale import bench_paper_scale, bench_stss_memory
from .steps import bench_memory, bench_step
from .stss import bench_stss, stss_reference_global, stss_unfold

__all__ = ["PARTS", "PROFILE_CLASSES", "SELFY_TSM_R18", "SELFY_TSM_R50", "TSM_R18", "TSM_R50", "bench_loader", "bench_memory", "bench_modules",
           "bench_paper_scale", "bench_profile", "bench_step", "bench_stss", "bench_stss_memory", "kernel_class",
           "module_configs", "module_settings", "quick_pair", "require_cpu_profile", "run_bench", "saved_tensor_bytes",
           "step_pairs", "stss_reference_global", "stss_unfold", "time_call"]

PARTS = ("stss", "step", "modules", "memory", "loader", "profile", "paper", "stss-memory")


def run_bench(parts: list[str], device: str = "auto", sizes: tuple[int, ...] = (14, 28, 56), repeats: int = 5,
              channels_last: bool = True, out: Path | None = None, compile: bool = False,
              progress: Callable[[str], None] = lambda s: None,
              own_blocks: tuple[str, ...] = ()) -> tuple[list[dict], str, Path | None]:
    """`selfy-lab bench`: the chosen parts, as tidy rows with the device and provenance; written to
    OUT/bench.csv when ``out`` is given. ``own_blocks`` (``PACKAGE.MODULE:CLASS``) join the modules part.
    Returns (rows, device name, path)."""
    keep_freed_memory()  # as training does
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise SelfyError(f"unknown bench part '{unknown[0] if unknown else ''}': use {', '.join(PARTS)}")
    dev = select_device(device)
    if "profile" in parts:  # before any part runs
        require_cpu_profile(dev)
    if compile and "step" not in parts and "paper" not in parts:
        raise SelfyError("--compile times the training steps: add step or paper to --only")

    for b in own_blocks:
        if not is_outside_block(b):
            raise SelfyError(f"bench --block '{b}': name your own module as PACKAGE.MODULE:CLASS (the built-in "
                             f"blocks are in the modules part already)")
    if out is not None:
        R.claim_folder(out, R.BENCH_OWNED)
    rows: list[dict] = []
    if "stss" in parts:
        rows += bench_stss(sizes, dev, min(repeats, 3), progress=progress)
    if "step" in parts:
        rows += bench_step(dev, repeats, channels_last, compile=compile, progress=progress)
    if "modules" in parts:
        rows += bench_modules(dev, repeats, channels_last, progress=progress, own_blocks=own_blocks)
    if "memory" in parts:
        rows += bench_memory(dev, channels_last, progress=progress)
    if "loader" in parts:
        rows += bench_loader(device=dev, progress=progress)
    if "profile" in parts:
        rows += bench_profile(dev, repeats, channels_last, progress=progress)
    if "paper" in parts:
        rows += bench_paper_scale(dev, min(repeats, 3), channels_last, compile=compile, progress=progress)
        if dev.type == "cpu":  # where the paper-scale step's time goes
            rows += bench_profile(dev, min(repeats, 3), channels_last, progress=progress,
                                  pairs={"paper_scale_b1": (TSM_R50, SELFY_TSM_R50, 1, 224)})
    if "stss-memory" in parts:
        rows += bench_stss_memory(dev, min(repeats, 3), channels_last, progress=progress)
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    prov = R.provenance()
    rows = [{**r, "device": dev_name, "torch": torch.__version__, **prov} for r in rows]
    path = R.write_csv(Path(out) / R.BENCH_TABLE, rows) if out is not None else None
    return rows, dev_name, path
