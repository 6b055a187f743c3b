"""Measurement helpers of the benchmarks: timing on any device, models and inputs of a training step, models
taking turns so that a change in the machine's load touches them alike, bytes saved for backward and the peak
resident size of a fresh process."""
from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from ...config.run import ModelConfig
from ...core.runtime import channels_last as to_channels_last
from ...models import build_model
from ...models.flops import model_cost


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], None], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0



def clip(device, frames=8, size=224, batch=1):
    return torch.randn(batch, frames, 3, size, size, device=device)


def make_model(cfg: ModelConfig, device, *, channels_last: bool):
    torch.manual_seed(0)
    m = build_model(cfg).to(device).train()
    if m.hierarchy is not None:  # timed as --aux hcml trains it, with its contrastive loss
        m.hierarchy.loss_enabled = True

    return to_channels_last(m) if channels_last else m


def train_step(model, x, y, amp_dtype):
    model.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = F.cross_entropy(model(x), y)
        if model.hierarchy is not None:  # HCML's auxiliary loss, as --aux hcml trains it
            loss = loss + model.hierarchy.loss()
    loss.backward()


def step_input(device, frames: int, size: int, batch: int, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A random clip batch (channels-last frames where asked) and its labels, for training-step timing."""
    x = clip(device, frames, size, batch)
    if channels_last:
        x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(x.shape)
    return x, torch.zeros(batch, dtype=torch.long, device=device)


def take_turns(models: dict, measure: Callable, repeats: int, progress: Callable[[str, int], None]) -> dict[str, list]:
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


def interleaved_steps(models: dict, batch: tuple[torch.Tensor, torch.Tensor], amp_dtype, repeats: int,
                       progress: Callable[[str, int], None]) -> dict[str, float]:
    """Median training-step seconds of each model, the models taking turns (:func:`take_turns`)."""
    x, y = batch
    times = take_turns(models, lambda m: time_call(lambda: train_step(m, x, y, amp_dtype), device=x.device),
                        repeats, progress)
    return {k: statistics.median(v) for k, v in times.items()}


def pair_models(base_cfg: ModelConfig, block_cfg: ModelConfig, device, channels_last: bool) -> dict:
    """The plain backbone and the model with the block, by their bench names (plain first)."""
    names = (f"{base_cfg.backbone}", f"{block_cfg.block}-{base_cfg.backbone}")
    return dict(zip(names, (make_model(base_cfg, device, channels_last=channels_last),
                            make_model(block_cfg, device, channels_last=channels_last))))


def flop_ratio(base_cfg: ModelConfig, block_cfg: ModelConfig, size: int) -> float:
    """GFLOPs of the model with the block over the plain backbone's, at input side ``size``."""
    return model_cost(block_cfg, size)["gflops"] / model_cost(base_cfg, size)["gflops"]



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


def _peak_rss_worker(cfg, step: bool, channels_last: bool, batch: int, size: int, queue) -> None:
    m = make_model(cfg, "cpu", channels_last=channels_last)
    x, y = step_input("cpu", cfg.frames, size, batch, channels_last)
    if step:
        train_step(m, x, y, None)
    queue.put(peak_rss_bytes())


def peak_rss_of_step(cfg: ModelConfig, channels_last: bool, batch: int = 1, size: int = 224) -> int:
    """Peak resident bytes a fresh process adds by running one training step (after building the model and
    its input batch)."""
    ctx = mp.get_context("spawn")
    peaks = []
    for step in (False, True):
        q = ctx.Queue()
        p = ctx.Process(target=_peak_rss_worker, args=(cfg, step, channels_last, batch, size, q))
        p.start()
        peaks.append(q.get())
        p.join()
    return peaks[1] - peaks[0]
