"""Ablation sweeps: plan the variants, train each in its own run directory, collect tidy results.

Layout of a sweep directory ``OUT``::

    OUT/sweep.yaml         the sweep as resolved (axes, seeds, base config)
    OUT/runs/<hash>/       one run directory per variant x seed (see selfy_lab.train)
    OUT/runs.csv           tidy rows of every finished run (rebuilt atomically from the run directories)
    OUT/status.csv         one row per planned run: done / failed (with the error) / pending
    OUT/figures/           accuracy vs temporal range (PNG and PDF)

A run directory is named by a stable hash of its resolved config, so re-running a sweep skips finished
runs, resumes interrupted ones from their last epoch checkpoint, and never duplicates rows.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import threading
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from .config import RunConfig, merge, to_dict
from .errors import SelfyError, user_message
from .grammar import format_offsets, parse_offsets
from .results import RUN_COLUMNS, read_csv, write_csv

AXES = ("backbone", "block", "extractor", "integrator", "position", "window", "similarity", "fusion")
LADDER_HEAD = ((0,), (1,))


def offsets_ladder(spec: str) -> list[tuple[int, ...] | None]:
    """Table 3a's ladder for a range a..b: baseline (None), {0}, {1}, then -k..k for k = 1.. while inside [a, b].
    {0} and {1} are kept only when they lie in [a, b]."""
    offs = parse_offsets(spec)
    a, b = offs[0], offs[-1]
    ladder: list[tuple[int, ...] | None] = [None]
    ladder += [s for s in LADDER_HEAD if a <= s[0] <= b]
    k = 1
    while -k >= a and k <= b:
        ladder.append(tuple(range(-k, k + 1)))
        k += 1
    return ladder


def is_range(spec: str) -> bool:
    return ".." in str(spec)


def plan_offsets(specs: list[str], ladder: bool | None = None, baseline: bool = True) -> list[tuple[int, ...] | None]:
    """Offset sets of a sweep (None = baseline without SELFY). One range expands to the ladder unless
    ``ladder`` is False; otherwise the sets run exactly as given. Duplicates are an error."""
    if not specs:
        raise SelfyError("give at least one --offsets set, e.g. --offsets -3..3")
    parsed = []
    for s in specs:
        try:
            parsed.append(parse_offsets(s))
        except ValueError as e:
            raise SelfyError(str(e)) from None
    if len(set(parsed)) != len(parsed):
        dup = next(format_offsets(p) for p in parsed if parsed.count(p) > 1)
        raise SelfyError(f"offset set {dup} is given twice")
    expand = (len(specs) == 1 and is_range(specs[0]) and len(parsed[0]) > 1) if ladder is None else ladder
    if expand:
        if len(specs) != 1 or not is_range(specs[0]):
            raise SelfyError("--ladder expands exactly one range a..b (e.g. --offsets -3..3)")
        sets = offsets_ladder(specs[0])
    else:
        sets = [None, *parsed]
    return sets if baseline else [s for s in sets if s is not None]


@dataclass(frozen=True)
class PlannedRun:
    run: RunConfig
    label: str  # short human description of the variant

    @property
    def run_id(self) -> str:
        return self.run.run_hash


def plan(base: RunConfig, offsets: list[tuple[int, ...] | None], axes: dict[str, list[Any]] | None = None,
         variants: list[dict[str, Any]] | None = None, seeds: list[int] = (0,)) -> list[PlannedRun]:
    """Every run of a sweep: (offsets x other axes, or explicit variants) x seeds; one baseline per backbone.

    Baselines ignore the SELFY axes (they have no block), so they are planned once per backbone x seed.
    """
    axes = {k: v for k, v in (axes or {}).items() if v}
    for k in axes:
        if k not in AXES:
            raise SelfyError(f"unknown sweep axis '{k}': choose from {', '.join(AXES)}")
    combos: list[dict[str, Any]] = []
    if variants:
        combos = [dict(v) for v in variants]
    else:
        keys = list(axes)
        for values in itertools.product(*(axes[k] for k in keys)) if keys else [()]:
            combos.append(dict(zip(keys, values)))
    runs: list[PlannedRun] = []
    seen: set[str] = set()
    for seed in seeds:
        for off in offsets:
            for combo in combos:
                changes = dict(combo)
                if off is None:
                    changes = {"block": "none", **({"backbone": combo["backbone"]} if "backbone" in combo else {})}
                elif "offsets" not in changes:
                    changes["offsets"] = off
                try:
                    model = merge(base.model, changes, "sweep")
                except (ValueError, TypeError) as e:
                    raise SelfyError(f"sweep variant {combo}: {e}") from None
                run = replace(base, model=model, train=replace(base.train, seed=seed))
                if run.run_hash in seen:
                    continue
                seen.add(run.run_hash)
                runs.append(PlannedRun(run, describe(run)))
    return runs


def describe(run: RunConfig) -> str:
    m = run.model
    if m.block == "none":
        return f"{m.backbone} baseline, seed {run.train.seed}"
    v = m.variant()
    return (f"{m.backbone} {m.block} {v['offsets']} {v['window']} {m.extractor}/{m.integrator} {m.similarity} "
            f"{m.fusion} @{v['position']}, seed {run.train.seed}")


# ---- execution ----

def run_dir(out: Path, pr: PlannedRun) -> Path:
    return out / "runs" / pr.run_id


def is_done(out: Path, pr: PlannedRun) -> bool:
    return (run_dir(out, pr) / "metrics.csv").exists()


def _execute(pr: PlannedRun, out: Path, device: str, callback: Callable, threads: int | None = None) -> dict:
    """Train one planned run; never raises: returns its status row."""
    import torch

    from .train import fit

    if threads:
        torch.set_num_threads(threads)
    t0 = time.time()
    d = run_dir(out, pr)
    try:
        fit(pr.run, d, callback, device)
        status, error = "done", ""
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a failed variant is recorded; the sweep goes on
        status, error = "failed", user_message(e)
        d.mkdir(parents=True, exist_ok=True)
        (d / "error.txt").write_text(traceback.format_exc())
    return {"run_id": pr.run_id, **pr.run.model.variant(), "seed": pr.run.train.seed, "status": status,
            "error": error, "seconds": round(time.time() - t0, 1)}


def _exit_with_parent() -> None:
    """End this worker as soon as the sweep's process is gone (killed or terminated without cleaning up):
    an orphan would go on training into a sweep nobody collects. Its last epoch checkpoint stays."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch():
        parent.join()  # returns when the parent's sentinel closes, i.e. the parent died
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker(task_q, result_q, out: str, device: str, threads: int | None) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _exit_with_parent()
    while True:
        item = task_q.get()
        if item is None:
            return
        pr = item
        result_q.put(_execute(pr, Path(out), device, lambda e, **k: None, threads))


def run_sweep(runs: list[PlannedRun], out: str | Path, jobs: int = 1, device: str = "auto",
              on_event: Callable[..., None] = lambda e, **k: None, record: dict | None = None) -> list[dict]:
    """Train every planned run not yet finished; keeps sweep.yaml, runs.csv and status.csv current.
    Returns the status rows."""
    import yaml

    from .results import atomic_write_text

    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sweep.yaml", yaml.safe_dump(record or sweep_record(runs), sort_keys=False))
    status: dict[str, dict] = {}
    todo = []
    for pr in runs:
        if is_done(out, pr):
            status[pr.run_id] = {"run_id": pr.run_id, **pr.run.model.variant(), "seed": pr.run.train.seed,
                                 "status": "done", "error": "", "seconds": ""}
        else:
            status[pr.run_id] = {"run_id": pr.run_id, **pr.run.model.variant(), "seed": pr.run.train.seed,
                                 "status": "pending", "error": "", "seconds": ""}
            todo.append(pr)
    on_event("plan", total=len(runs), done=len(runs) - len(todo))
    _write_status(out, status)
    collect(out, runs)

    def finished(row: dict, pr: PlannedRun) -> None:
        status[row["run_id"]] = row
        _write_status(out, status)
        collect(out, runs)
        on_event("run_end", run=pr, row=row)

    if jobs <= 1 or len(todo) <= 1:
        for pr in todo:
            on_event("run_start", run=pr)
            row = _execute(pr, out, device, lambda e, **k: on_event("run_progress", run=pr, kind=e, **k))
            finished(row, pr)
    else:
        _run_parallel(todo, out, jobs, device, finished, on_event)
    return list(status.values())


def _run_parallel(todo, out, jobs, device, finished, on_event) -> None:
    import torch

    ctx = mp.get_context("spawn")
    task_q, result_q = ctx.Queue(), ctx.Queue()
    gpus = torch.cuda.device_count() if device in ("auto", "cuda") else 0
    workers = []
    n = min(jobs, len(todo))
    for w in range(n):
        dev = f"cuda:{w % gpus}" if gpus else ("cpu" if device == "auto" else device)
        threads = None if gpus else max(1, (os.cpu_count() or 1) // n)
        p = ctx.Process(target=_worker, args=(task_q, result_q, str(out), dev, threads), daemon=True)
        p.start()
        workers.append(p)
    by_id = {pr.run_id: pr for pr in todo}
    for pr in todo:
        task_q.put(pr)
        on_event("run_queued", run=pr)
    for _ in workers:
        task_q.put(None)
    try:
        for _ in todo:
            row = result_q.get()
            finished(row, by_id[row["run_id"]])
    finally:
        for p in workers:
            if p.is_alive():
                p.terminate()
            p.join()


STATUS_COLUMNS = ("run_id", "backbone", "frames", "block", "offsets", "window", "extractor", "integrator",
                  "similarity", "fusion", "position", "seed", "status", "error", "seconds")


def _write_status(out: Path, status: dict[str, dict]) -> None:
    write_csv(out / "status.csv", status.values(), STATUS_COLUMNS)


def collect(out: Path, runs: list[PlannedRun]) -> Path:
    """Rebuild OUT/runs.csv from the finished run directories of this sweep (atomic, no duplicates)."""
    rows = []
    for pr in runs:
        rows += read_csv(run_dir(out, pr) / "metrics.csv")
    return write_csv(out / "runs.csv", rows, RUN_COLUMNS)


def sweep_record(runs: list[PlannedRun], axes: dict | None = None) -> dict:
    """What a sweep ran: its axes, offset sets, seeds and runs (OUT/sweep.yaml)."""
    offsets = list(dict.fromkeys(r.run.model.variant()["offsets"] for r in runs))
    return {"base": to_dict(runs[0].run) if runs else {}, "axes": {k: list(v) for k, v in (axes or {}).items()},
            "offsets": offsets, "seeds": sorted({r.run.train.seed for r in runs}),
            "runs": [{"run_id": r.run_id, "label": r.label, **r.run.model.variant(), "seed": r.run.train.seed} for r in runs]}
