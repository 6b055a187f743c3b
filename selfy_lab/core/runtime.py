"""Process-level settings for fast CPU training.

glibc's malloc gives blocks above its mmap threshold back to the operating system when they are freed, so
every training step pays again for the page faults of its large activations. ``keep_freed_memory``
raises the mmap threshold to its maximum (32 MiB on 64-bit glibc) and stops trimming the heap: the process
keeps its high-water mark of memory instead of returning and re-faulting it. A no-op where the C library is
not glibc; CUDA memory is not affected (PyTorch's caching allocator keeps it already). ``channels_last``
puts a model's 4-D tensors in channels-last memory format and leaves 5-D ones (3-D convolutions) as they are.
``compiled`` is how a training step runs under ``torch.compile``, in training (``--compile``) and in the step
benchmark that measures it alike. ``deterministic_algorithms`` is ``--deterministic``: PyTorch's deterministic
kernels for the time of a run (on CUDA, cuDNN's deterministic convolution algorithms and sorted instead of
atomic accumulation in the backward of indexing), the earlier setting restored after it. ``device_constant``
is a small constant tensor on a device, made once: a tensor built from Python numbers on a GPU is a host-to-device
copy that waits for the GPU, which a training step must not do; ``shape_cache`` is how such tensors (and the
STSS's index tensors) are cached per shape and device, eager or compiled.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import re

import torch

from .errors import SelfyError

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit
_KEEP = 1 << 40  # never trim: far above any heap


@functools.lru_cache(maxsize=None)
def keep_freed_memory() -> bool:
    """Apply the allocator settings once per process; True where they took effect."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, min(_KEEP, 2**31 - 1)) == 1
    ok &= mallopt(_M_TOP_PAD, 64 * 1024 * 1024) == 1
    return bool(ok)


def channels_last(model):
    """``model`` with every 4-D parameter and buffer in channels-last memory format; 5-D ones (the conv3d
    extractor's kernels) keep theirs, which ``model.to(memory_format=...)`` would refuse."""
    for t in [*model.parameters(), *model.buffers()]:
        if t.dim() == 4:
            t.data = t.data.contiguous(memory_format=torch.channels_last)
    return model


def compiled(module):
    """``module`` under ``torch.compile`` (inductor, default mode; the wrapper shares its parameters) with static
    shapes: a second model of the same class in one process is otherwise recompiled with symbolic sizes
    (dynamo's automatic dynamic shapes), which the SELFY block's inductor lowering does not survive."""
    return torch.compile(module, dynamic=False)


# cuBLAS is deterministic only with a fixed workspace; PyTorch refuses a CUDA matmul under deterministic
# algorithms without it. cuBLAS reads the variable when the process first uses it, so it is set before the
# run builds its model (a process that ran CUDA matmuls without it keeps its earlier workspace: PyTorch then
# stops with its own message naming the variable).
CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True):
    """Within the block, PyTorch runs only kernels that give the same bits for the same input on the same
    machine, and stops with :class:`~selfy_lab.core.errors.SelfyError` at an operation that has none. A no-op when
    ``enabled`` is False. CPU training is deterministic without it; on CUDA it costs speed."""
    if not enabled:
        yield
        return


    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False  # autotuning may pick another algorithm in another process
    try:
        yield
    except RuntimeError as e:
        op = re.match(r"(\S+) does not have a deterministic implementation", str(e))
        if op:
            raise SelfyError(f"--deterministic: {op.group(1)} has no deterministic kernel in this PyTorch on this "
                             "device; train without --deterministic") from e
        if "CUBLAS_WORKSPACE_CONFIG" in str(e):
            raise SelfyError(f"--deterministic: this process used cuBLAS before the run; start it with "
                             f"CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE} set") from e
        raise
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark = before[2]


def shape_cache(fn):
    """``functools.lru_cache`` in eager mode, for tensors built once per shape and device (indices, constants);
    under ``torch.compile`` the tensor is built inside the traced graph instead (dynamo does not trace through a
    cache, and a graph constant costs nothing per step)."""
    cached = functools.lru_cache(maxsize=64)(fn)

    @functools.wraps(fn)
    def call(*args):
        return fn(*args) if torch.compiler.is_compiling() else cached(*args)

    return call


def device_constant(values: tuple, device, dtype=None):
    """``torch.tensor(values, dtype=dtype)`` on ``device``, made once per process and shared (never write into it)
    by :func:`shape_cache`. Copied with ``non_blocking``: the host does not wait for the GPU."""
    return _constant(tuple(values), torch.device(device), dtype)


@shape_cache
def _constant(values: tuple, device, dtype):
    return torch.tensor(values, dtype=dtype).to(device, non_blocking=True)


def select_device(pref: str = "auto"):
    """The torch device of ``--device``: auto (CUDA when torch sees one), cpu, cuda or cuda:N; one line when it
    cannot be had."""
    pref = str(pref)
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", str(pref))
    if not m:
        raise SelfyError(f"unknown device '{str(pref)[:40]}': use cpu, cuda, cuda:N or auto")
    if not torch.cuda.is_available():
        raise SelfyError(f"--device {pref} asked for, but torch sees no CUDA device: use --device cpu")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise SelfyError(f"--device {pref}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return torch.device(pref)


def is_main_process() -> bool:
    """Rank 0 of a ``torchrun`` launch, or a process started alone: the one that prints and writes results."""
    return int(os.environ.get("RANK", "0")) == 0


def device_label(device, world: int = 1) -> str:
    """What a result row records of the device that computed it: ``cpu``, or the GPU's name (times the processes
    of a distributed run)."""
    device = torch.device(device)
    if device.type != "cuda":
        return "cpu"
    name = torch.cuda.get_device_name(device)
    return f"{world}x {name}" if world > 1 else name


def thread_note(resume: dict) -> str:
    """What a resume message adds when a CPU run goes on with another thread count than it trained on."""
    if "threads_before" not in resume:
        return ""
    return (f"; it trained on {resume['threads_before']} CPU threads and goes on with {resume['threads']}, so its "
            "digits will differ from an uninterrupted run's")
