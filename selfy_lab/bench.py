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
"""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
import resource
import statistics
import time
from dataclasses import replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .config import EVERY, ModelConfig
from .models.selfsim import l2_normalize, stss_volumes

SELFY_TSM_R18 = ModelConfig(backbone="tsm-r18", offsets=(-2, -1, 0, 1, 2), window=(9, 9), position=("res3",))
TSM_R18 = replace(SELFY_TSM_R18, block="none")


# ---- baselines (written for the benchmark; same output as stss_volumes) ----

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


# ---- timing helpers ----

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


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


def _clip(device, frames=8, size=224, batch=1):
    return torch.randn(batch, frames, 3, size, size, device=device)


def _make(cfg: ModelConfig, device, channels_last: bool):
    from .models import build_model

    torch.manual_seed(0)
    m = build_model(cfg).to(device).train()
    if m.hierarchy is not None:  # timed as --aux hcml trains it, with its contrastive loss
        m.hierarchy.loss_enabled = True
    from .runtime import channels_last as to_channels_last

    return to_channels_last(m) if channels_last else m


def _train_step(model, x, y, amp_dtype):
    model.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = F.cross_entropy(model(x), y)
        if model.hierarchy is not None:  # HCML's auxiliary loss, as --aux hcml trains it
            loss = loss + model.hierarchy.loss()
    loss.backward()


def _step_input(device, frames: int, size: int, batch: int, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A random clip batch (channels-last frames where asked) and its labels, for training-step timing."""
    x = _clip(device, frames, size, batch)
    if channels_last:
        x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(x.shape)
    return x, torch.zeros(batch, dtype=torch.long, device=device)


def _take_turns(models: dict, measure: Callable, repeats: int, progress: Callable[[str, int], None]) -> dict[str, list]:
    """``measure(model)`` of each model per round, the models taking turns (one warm-up round, then ``repeats``
    kept rounds), so that a change in the machine's load touches them all alike."""
    kept: dict[str, list] = {k: [] for k in models}
    for r in range(repeats + 1):
        for name, m in models.items():
            progress(name, r)
            value = measure(m)
            if r:
                kept[name].append(value)
    return kept


def _interleaved_steps(models: dict, batch: tuple[torch.Tensor, torch.Tensor], amp_dtype, repeats: int,
                       progress: Callable[[str, int], None]) -> dict[str, float]:
    """Median training-step seconds of each model, the models taking turns (:func:`_take_turns`)."""
    x, y = batch
    times = _take_turns(models, lambda m: time_call(lambda: _train_step(m, x, y, amp_dtype), device=x.device),
                        repeats, progress)
    return {k: statistics.median(v) for k, v in times.items()}


def _pair_models(base_cfg: ModelConfig, block_cfg: ModelConfig, device, channels_last: bool) -> dict:
    """The plain backbone and the model with the block, by their bench names (plain first)."""
    names = (f"{base_cfg.backbone}", f"{block_cfg.block}-{base_cfg.backbone}")
    return dict(zip(names, (_make(base_cfg, device, channels_last), _make(block_cfg, device, channels_last))))


def _flop_ratio(base_cfg: ModelConfig, block_cfg: ModelConfig, size: int) -> float:
    """GFLOPs of the model with the block over the plain backbone's, at input side ``size``."""
    from .flops import model_cost

    return model_cost(block_cfg, size)["gflops"] / model_cost(base_cfg, size)["gflops"]


def quick_pair() -> tuple[ModelConfig, ModelConfig, int, int]:
    """The built-in benchmark's pair as the quick preset trains it: (plain backbone, SELFY -3..3, batch, size)."""
    from .config import resolve

    run = resolve("quick", overrides={"model": {"offsets": "-3..3"}})
    return replace(run.model, block="none"), run.model, run.train.batch_size, run.data.size


def step_pairs() -> dict[str, tuple[ModelConfig, ModelConfig, int, int]]:
    """The training-step comparisons: name -> (plain backbone, with the block, batch, input side). Besides the
    full-width pair and the quick preset's, ``train_step_quick_8x8`` is the quick pair with the STSS at res3's
    full 8x8 and a 5x5 window (the CPU preset before its STSS took the reference's 2x reduction)."""
    base, block, batch, size = quick_pair()
    return {"train_step": (TSM_R18, SELFY_TSM_R18, 1, 224), "train_step_quick": (base, block, batch, size),
            "train_step_quick_8x8": (base, replace(block, reduce=1, window=(5, 5)), 16, size)}


def _compiled(models: dict, batch: tuple[torch.Tensor, torch.Tensor], amp_dtype, bench: str,
              progress: Callable[[str], None]) -> tuple[dict, list[dict]]:
    """Each model under ``torch.compile`` as ``--compile`` trains it (:func:`runtime.compiled`), compiled by one
    training step (its forward and backward graphs), with a ``compile_seconds`` row each: that step's time."""
    from .runtime import compiled

    x, y = batch
    out, rows = {}, []
    for name, m in models.items():
        progress(f"{bench} {name} compiling")
        out[name] = compiled(m)
        seconds = time_call(lambda: _train_step(out[name], x, y, amp_dtype), device=x.device)
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
        models = _pair_models(base_cfg, block_cfg, device, channels_last)
        names = tuple(models)
        inputs = _step_input(device, base_cfg.frames, size, batch, channels_last)
        settings = {bench: models}
        if compile:
            settings[f"{bench}_compiled"], compile_rows = _compiled(models, inputs, amp_dtype, f"{bench}_compiled",
                                                                    progress)
            rows += compile_rows
        timed = {(b, k): m for b, ms in settings.items() for k, m in ms.items()}
        med = _interleaved_steps(timed, inputs, amp_dtype, repeats,
                                 lambda key, r: progress(f"{key[0]} {key[1]} {r}/{repeats}"))
        flop_ratio = _flop_ratio(base_cfg, block_cfg, size)
        for b in settings:
            rows += [dict(benchmark=b, impl=k, size=size, metric="seconds", value=med[(b, k)]) for k in names]
            rows.append(dict(benchmark=b, impl=names[1], size=size, metric="time_ratio",
                             value=med[(b, names[1])] / med[(b, names[0])]))
            rows.append(dict(benchmark=b, impl=names[1], size=size, metric="flop_ratio", value=flop_ratio))
        if compile:
            rows += [dict(benchmark=f"{bench}_compiled", impl=k, size=size, metric="compile_speedup",
                          value=med[(bench, k)] / med[(f"{bench}_compiled", k)]) for k in names]
        del models, settings, timed
    return rows


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
    import os

    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # no profiler start/stop lines on stderr (read at first use)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    ms = dict.fromkeys(PROFILE_CLASSES, 0.0)
    for e in prof.key_averages():
        ms[kernel_class(e.key)] += e.self_cpu_time_total / 1000
    return ms


def require_cpu_profile(device) -> torch.device:
    """The device, when the step profile can run on it (the CPU); a one-line error otherwise."""
    from .errors import SelfyError

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
        models = _pair_models(base_cfg, block_cfg, device, channels_last)
        names = tuple(models)
        x, y = _step_input(device, base_cfg.frames, size, batch, channels_last)
        runs = _take_turns(models, lambda m: _profiled_ms(lambda: _train_step(m, x, y, None)), repeats,
                           lambda name, r: progress(f"{bench}_profile {name} {r}/{repeats}"))
        med = {k: {**{c: statistics.median(v[c] for v in vs) for c in PROFILE_CLASSES},
                   "total": statistics.median(sum(v.values()) for v in vs)} for k, vs in runs.items()}
        bench_name = f"{bench}_profile"
        for k in names:
            rows += [dict(benchmark=bench_name, impl=k, size=size, metric=f"{c}_ms", value=med[k][c])
                     for c in (*PROFILE_CLASSES, "total")]
        rows += [dict(benchmark=bench_name, impl=names[1], size=size, metric=f"{c}_excess_ms",
                      value=med[names[1]][c] - med[names[0]][c]) for c in PROFILE_CLASSES]
        flop_ratio = _flop_ratio(base_cfg, block_cfg, size)
        rows.append(dict(benchmark=bench_name, impl=names[1], size=size, metric="flop_share_ms",
                         value=(flop_ratio - 1) * med[names[0]]["total"]))
        del models
    return rows


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
    from .config import MOTION_BLOCKS

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
    from .flops import model_cost

    device = torch.device(device)
    amp_dtype = torch.bfloat16 if (amp if amp is not None else device.type == "cuda") else None
    rows = []
    for bench, (base_cfg, batch, size) in (settings or module_settings()).items():
        cfgs = {"none": base_cfg, **{b: c for b, c in module_configs(base_cfg).items() if blocks is None or b in blocks}}
        cfgs.update({b: replace(base_cfg, block=b, position=("res3",)) for b in own_blocks})  # the user's own modules
        models = {b: _make(c, device, channels_last) for b, c in cfgs.items()}
        med = _interleaved_steps(models, _step_input(device, base_cfg.frames, size, batch, channels_last), amp_dtype,
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


def saved_tensor_bytes(model, x, y) -> int:
    """Bytes autograd keeps for backward during one forward pass (each storage counted once)."""
    seen: dict[int, int] = {}

    def pack(t):
        if t.device.type != "meta":
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    return sum(seen.values())


def peak_rss_bytes() -> int:
    """This process's resident high-water mark. Linux's VmHWM belongs to the address space and starts
    afresh at exec; getrusage's ru_maxrss would carry over the spawning parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_rss_worker(cfg, step: bool, channels_last: bool, queue) -> None:
    m = _make(cfg, "cpu", channels_last)
    x = _clip("cpu")
    y = torch.zeros(1, dtype=torch.long)
    if step:
        _train_step(m, x, y, None)
    queue.put(peak_rss_bytes())


def peak_rss_of_step(cfg: ModelConfig, channels_last: bool) -> int:
    """Peak resident bytes a fresh process adds by running one training step (after building the model)."""
    ctx = mp.get_context("spawn")
    peaks = []
    for step in (False, True):
        q = ctx.Queue()
        p = ctx.Process(target=_peak_rss_worker, args=(cfg, step, channels_last, q))
        p.start()
        peaks.append(q.get())
        p.join()
    return peaks[1] - peaks[0]


def _loader_fixture(root: Path, clips: int, source_frames: int, size: tuple[int, int]) -> dict[str, Path]:
    """Frame folders (JPEG) and H.264 videos of ``clips`` clips of ``source_frames`` frames, with their
    list files (natural-image-like content: smooth gradients plus noise, so JPEG and H.264 work as on real
    frames)."""
    import av
    from PIL import Image

    rng = np.random.default_rng(0)
    H, W = size
    yy, xx = np.mgrid[0:H, 0:W]
    frames_list, videos_list = [], []
    for c in range(clips):
        folder, video = root / "frames" / f"{c:04d}", root / "videos" / f"{c:04d}.mp4"
        folder.mkdir(parents=True, exist_ok=True)
        video.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(video), "w") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.height, stream.width, stream.pix_fmt = H, W, "yuv420p"
            for t in range(source_frames):
                base = (xx + 3 * t + c) % 256 * 0.6 + yy % 256 * 0.3
                img = np.clip(base[..., None] + rng.normal(0, 12, (H, W, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{t + 1:05d}.jpg", quality=85)
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        frames_list.append(f"{folder} {source_frames} {c % 2}")
        videos_list.append(f"{video} {c % 2}")
    (root / "frames.txt").write_text("\n".join(frames_list) + "\n")
    (root / "videos.txt").write_text("\n".join(videos_list) + "\n")
    (root / "classes.txt").write_text("a\nb\n")
    return {"frames": root / "frames.txt", "videos": root / "videos.txt", "categories": root / "classes.txt"}


def bench_loader(workers: tuple[int, ...] | None = None, clips: int = 48, batch: int = 8, device="cpu",
                 train_step: bool = True, progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Clips per second of the list-file loader (training transform, 8 of 48 frames at 240x320 -> 224) from
    frame folders and from H.264 videos, with 0, 2 and N worker processes; beside it the training-step
    throughput (clips/s) of TSM-R18 and SELFYNet-TSM-R18 at 8 x 224^2, so a user sees which one bounds
    training on this machine."""
    import os
    import tempfile

    from .config import resolve
    from .data.datasets import build_dataset
    from .data.loader import make_loader

    n_cpu = os.cpu_count() or 1
    workers = workers or tuple(sorted({0, 2, n_cpu}))
    rows = []
    with tempfile.TemporaryDirectory(prefix="selfy-lab-bench-") as tmp:
        progress("writing the loader's test clips")
        files = _loader_fixture(Path(tmp), clips, 48, (240, 320))
        for source in ("frames", "videos"):
            run = resolve("paper", "something-v1", {"model": {"num_classes": 2}, "data": {
                "train_list": str(files[source]), "val_list": str(files[source]), "categories": str(files["categories"]),
                "check": False, "list_format": "tsn" if source == "frames" else "two-column"}})
            ds = build_dataset(run, "train")
            for w in workers:
                progress(f"loader {source}, {w} workers")
                loader = make_loader(ds, batch, 0, True, w)
                t0 = time.perf_counter()
                seen = sum(len(y) for _, y in loader)
                dt = time.perf_counter() - t0  # includes starting the workers, as every epoch does
                rows.append(dict(benchmark="loader", impl=f"{source}, {w} workers", size=224, metric="clips_per_s",
                                 value=seen / dt))
    device = torch.device(device)
    for cfg in (TSM_R18, SELFY_TSM_R18) if train_step else ():
        progress(f"training step {cfg.block}")
        m = _make(cfg, device, True)
        x, y = _clip(device, 8, 224, batch), torch.zeros(batch, dtype=torch.long, device=device)
        _train_step(m, x, y, None)
        t = statistics.median(time_call(lambda: _train_step(m, x, y, None), device) for _ in range(3))
        rows.append(dict(benchmark="loader", impl=f"train step {cfg.block}-{cfg.backbone}", size=224,
                         metric="clips_per_s", value=batch / t))
    return rows


def bench_memory(device="cpu", channels_last: bool = True, rss: bool = True,
                 progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    device = torch.device(device)
    rows = []
    x = _clip(device)
    y = torch.zeros(1, dtype=torch.long, device=device)
    vals: dict[str, dict[str, float]] = {}
    for name, cfg in (("tsm-r18", TSM_R18), ("selfy-tsm-r18", SELFY_TSM_R18)):
        progress(f"memory {name}")
        m = _make(cfg, device, channels_last)
        vals[name] = {"saved_for_backward_mb": saved_tensor_bytes(m, x, y) / 2**20}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            _train_step(m, x, y, torch.bfloat16)
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


PARTS = ("stss", "step", "modules", "memory", "loader", "profile")


def run_bench(parts: list[str], device: str = "auto", sizes: tuple[int, ...] = (14, 28, 56), repeats: int = 5,
              channels_last: bool = True, out: Path | None = None, compile: bool = False,
              progress: Callable[[str], None] = lambda s: None,
              own_blocks: tuple[str, ...] = ()) -> tuple[list[dict], str, Path | None]:
    """`selfy-lab bench`: the chosen parts, as tidy rows with the device and provenance; written to
    OUT/bench.csv when ``out`` is given. ``own_blocks`` (``PACKAGE.MODULE:CLASS``) join the modules part.
    Returns (rows, device name, path)."""
    from . import results as R
    from .errors import SelfyError
    from .runtime import keep_freed_memory
    from .train import select_device

    keep_freed_memory()  # as training does
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise SelfyError(f"unknown bench part '{unknown[0] if unknown else ''}': use {', '.join(PARTS)}")
    dev = select_device(device)
    if "profile" in parts:  # before any part runs
        require_cpu_profile(dev)
    if compile and "step" not in parts:
        raise SelfyError("--compile times the training steps: add step to --only")
    from .config import is_outside_block

    for b in own_blocks:
        if not is_outside_block(b):
            raise SelfyError(f"bench --block '{b}': name your own module as PACKAGE.MODULE:CLASS (the built-in "
                             f"blocks are in the modules part already)")
    if out is not None:
        R.ensure_writable(out)
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
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    prov = R.provenance()
    rows = [{**r, "device": dev_name, "torch": torch.__version__, **prov} for r in rows]
    path = R.write_csv(Path(out) / "bench.csv", rows) if out is not None else None
    return rows, dev_name, path
