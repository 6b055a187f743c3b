"""One planned run of a sweep: its configuration and label (:class:`PlannedRun`, :func:`describe`) and its
training in its run directory, which never raises (:func:`execute_run`): what a local sweep's workers and a
cluster's jobs both run."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..config.run import RunConfig
from ..core.errors import DivergedError, user_message
from ..engine.train import fit
from ..store import results as R


@dataclass(frozen=True)
class PlannedRun:
    run: RunConfig
    label: str  # short human description of the variant

    @property
    def run_id(self) -> str:
        return self.run.run_hash


def describe(run: RunConfig, base: RunConfig | None = None) -> str:
    """A run's variant in a few words; ``base``: also the shift and input size where they differ from it."""
    m = run.model
    v = run.variant()
    extra = "".join(f" {k}={v[k]}" for k in ("options", "hierarchy", "aux") if v[k] != "none")
    extra += f" init={v['init']}" if v["init"] != "scratch" else ""
    extra += f" labels={v['labels']}" if v["labels"] != "1" else ""
    if base is not None:
        extra += "".join(f" {k}={getattr(m, k)}" for k in ("shift_div", "shift_place")
                         if getattr(m, k) != getattr(base.model, k))
        extra += f" {run.data.size}px" if run.data.size != base.data.size else ""
        extra += "".join(f" {k}={getattr(run.train, k):g}" for k in ("lr", "epochs", "warmup", "batch_size")
                         if getattr(run.train, k) != getattr(base.train, k))
    if m.block == "none":
        return f"{m.backbone} baseline{extra}, seed {run.train.seed}"
    if v["offsets"] == "none":  # a motion module: the STSS fields mean nothing
        return f"{m.backbone} {m.block} @{v['position']}{extra}, seed {run.train.seed}"
    return (f"{m.backbone} {m.block} {v['offsets']} {v['window']} {m.extractor}/{m.integrator} {m.similarity} "
            f"{m.fusion} @{v['position']}{extra}, seed {run.train.seed}")


def execute_run(pr: PlannedRun, out: Path, device: str, callback: Callable, threads: int | None = None) -> dict:
    """Train one planned run; never raises: returns its status row. The run trains on ``threads`` CPU threads; the
    process gets its own count back afterwards (a sweep run from a notebook or a test leaves it as it was)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _execute(pr, out, device, callback)
    finally:
        torch.set_num_threads(before)


def _execute(pr: PlannedRun, out: Path, device: str, callback: Callable) -> dict:
    t0 = time.time()
    d = R.run_dir(out, pr.run_id)
    try:
        fit(pr.run, d, callback, device)
        status, error = "done", ""
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a failed variant is recorded; the sweep goes on
        status, error = ("diverged" if isinstance(e, DivergedError) else "failed"), user_message(e)
        try:
            R.write_error(d, traceback.format_exc())
        except OSError as werr:  # a full disk must not end the sweep in a traceback of its own
            error += f" (its error.txt could not be written: {werr.strerror or werr})"
    return R.status_row(pr.run, status, error, round(time.time() - t0, 1))
