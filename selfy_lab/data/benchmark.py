"""The built-in benchmark as a dataset: its clips rendered once (in parallel) into a memory-mapped cache file
under ``cache_dir()``, then read back from it."""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import math
import multiprocessing as mp
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..config.run import DataConfig
from ..core.errors import DataError
from . import synthetic as syn
from .clips import ClipDataset, item_address
from .transforms import clip_from_frames


class SyntheticClips(ClipDataset):
    """The built-in motion benchmark, generated once and cached on disk as a memory-mapped array."""

    def __init__(self, cfg: DataConfig, *, frames: int, split: str, train: bool):
        super().__init__(cfg, frames=frames, train=train, class_names=list(syn.CLASS_NAMES))
        n = {"train": cfg.synthetic_train, "val": cfg.synthetic_val, "test": cfg.synthetic_test}[split]
        self.clips = synthetic_array(split, n, frames, cfg.size, cfg.synthetic_seed, cfg.synthetic_distractors)

    def __len__(self) -> int:
        return len(self.clips)

    def labels(self) -> np.ndarray:
        return np.arange(len(self)) % len(syn.CLASSES)

    def clip(self, item) -> torch.Tensor:
        return clip_from_frames(np.array(self.clips[item_address(item)[0]]))  # copied out of the read-only memmap

    def __getitem__(self, item):
        index, seed = item_address(item)
        label = index % len(syn.CLASSES)
        clip = self.clip(item)
        if self.train:
            clip, label = self._augment(clip, label, np.random.default_rng(seed))
        return clip, label


def cache_dir() -> Path:
    return Path(os.environ.get("SELFY_LAB_CACHE") or Path.home() / ".cache" / "selfy-lab")


PARALLEL_MIN_CLIPS = 256  # fewer clips render faster in this process than worker processes start


def synthetic_array(split: str, n: int, frames: int, size: int, seed: int, distractors: int,
                    progress=None, workers: int | None = None) -> np.ndarray:
    """uint8 (n, T, H, W, 3) clips of the built-in benchmark, cached under ``cache_dir()`` (read back
    memory-mapped). A missing cache is rendered by ``workers`` forked processes (default: one per CPU)
    straight into the file; it appears under its name only when complete."""
    key = hashlib.sha256(f"{syn.GENERATOR_VERSION}|{split}|{n}|{frames}|{size}|{seed}|{distractors}".encode()).hexdigest()[:16]
    path, shape = cache_dir() / f"synthetic-{split}-{key}.npy", (n, frames, size, size, 3)
    if path.exists():
        try:
            arr = np.load(path, mmap_mode="r")
            if arr.shape == shape:
                return arr
        except (OSError, ValueError):
            pass  # a torn or foreign file: regenerate
    path.parent.mkdir(parents=True, exist_ok=True)
    need, free = math.prod(shape), shutil.disk_usage(path.parent).free  # uint8: one byte a value
    if free < need:  # writing into a memory-mapped file on a full disk kills the process (SIGBUS), say it first
        raise DataError(f"the built-in benchmark's {split} clips need {need / 2**20:.0f} MiB in {path.parent} and "
                        f"{free / 2**20:.0f} MiB are free there: free some space or set SELFY_LAB_CACHE to a disk "
                        "with room")
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape).flush()
    job = (str(tmp), seed, split, frames, size, distractors)
    workers = min(workers or os.cpu_count() or 1, max(1, n // (PARALLEL_MIN_CLIPS // 2)))
    chunks = [(lo, min(n, lo + 64)) for lo in range(0, n, 64)]

    try:
        # forked workers (numpy only: safe after torch has started threads), so that scripts without a
        # __main__ guard can build the benchmark too; where fork is missing, this process renders alone
        if workers > 1 and n >= PARALLEL_MIN_CLIPS and "fork" in mp.get_all_start_methods():
            try:
                with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as ex:
                    for hi in ex.map(_render_into, [(*job, lo, hi) for lo, hi in chunks]):  # in order
                        if progress:
                            progress(hi, n)
            except cf.process.BrokenProcessPool:
                raise DataError(f"rendering the built-in benchmark into {path.parent} failed: a render process "
                                "died (out of memory, or the disk filled up?)") from None
        else:
            for lo, hi in chunks:
                _render_into((*job, lo, hi))
                if progress:
                    progress(hi, n)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return np.load(path, mmap_mode="r")


def _render_into(job) -> int:
    """Render clips [lo, hi) into the .npy file being built; returns hi."""
    file, seed, split, frames, size, distractors, lo, hi = job
    arr = np.load(file, mmap_mode="r+")
    for i in range(lo, hi):
        arr[i] = syn.render_clip(seed, split, i, frames, size, distractors)[0]
    arr.flush()
    return hi
