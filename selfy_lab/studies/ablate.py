"""Ablation sweeps: plan the variants (:func:`plan_sweep`), train each in its own run directory
(:func:`run_sweep`), keep the sweep's tidy record current. The directory layout is
:mod:`selfy_lab.store.results`'; a run is found again by its key, so a re-run skips finished runs, resumes
interrupted ones from their last epoch checkpoint and never duplicates rows.

The ``sweep`` section of an experiment file::

    sweep:
      offsets: ["-3..3"]     # offset sets; one range expands to Table 3a's ladder unless ladder: false
      ladder: false          # optional: force / prevent the ladder expansion
      baseline: true         # add the plain backbone (block none), one per backbone x seed
      axes:                  # other model fields, crossed with the offsets
        window: [5x5, 9x9]
      variants:              # or explicit combinations (then base_offsets gives their offsets); with
        - {extractor: smax, integrator: fc}   # axes as well, every variant is crossed with the axes
      base_offsets: "-2..2"
      seeds: 3               # a count (seeds 0..N-1) or a list of seeds
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from ..config.experiments import run_from_flags
from ..config.grammar import format_offsets, parse_list, parse_offsets
from ..config.run import RunConfig
from ..config.vocabulary import REPORTS
from ..core.errors import SelfyError
from ..core.frozen import override, to_dict
from ..core.paper import TABLES
from ..data.datasets import scored_splits
from ..store import results as R
from .cluster import run_jobs
from .runner import PlannedRun, describe, execute_run

AXES = ("backbone", "shift_div", "shift_place", "block", "block_options", "extractor", "integrator", "position", "window", "similarity", "fusion", "hierarchy",
        "hierarchy_levels", "hcml_tau", "hcml_delta", "hcml_target", "hcml_predictor",
        "pretrained", "aux", "aux_weight", "freeze_backbone", "lr", "epochs", "warmup", "batch_size", "label_fraction", "size")
TRAIN_AXES = ("aux", "aux_weight", "freeze_backbone", "lr", "epochs", "warmup", "batch_size")  # the axes that change the training, not the network
DATA_AXES = ("label_fraction", "size")  # and those that change the data
BASELINE_AXES = ("backbone", "shift_div", "shift_place", "hierarchy", "hierarchy_levels", "hcml_tau", "hcml_delta",
                 "hcml_target", "hcml_predictor", "pretrained", *TRAIN_AXES, *DATA_AXES)  # those a baseline (no block) follows too
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
    """Offset sets of a sweep (None = baseline without a block). One range expands to the ladder unless
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


def plan(base: RunConfig, offsets: list[tuple[int, ...] | None], axes: dict[str, list[Any]] | None = None,
         variants: list[dict[str, Any]] | None = None, seeds: list[int] = (0,)) -> list[PlannedRun]:
    """Every run of a sweep: (offsets x other axes, or explicit variants [x axes]) x seeds; one baseline per
    backbone.

    Baselines ignore the block axes (they have no block), so they are planned once per backbone (hierarchy,
    auxiliary loss) x seed.
    """
    axes = {k: v for k, v in (axes or {}).items() if v}
    for k in axes:
        if k not in AXES:
            raise SelfyError(f"unknown sweep axis '{k}': choose from {', '.join(AXES)}")
    keys = list(axes)
    grid = [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))]
    combos = [{**dict(v), **g} for v in variants for g in grid] if variants else grid
    runs: list[PlannedRun] = []
    seen: set[str] = set()
    for seed in seeds:
        for off in offsets:
            for combo in combos:
                changes = dict(combo)
                if off is None:
                    changes = {"block": "none", **{k: combo[k] for k in BASELINE_AXES if k in combo}}
                elif "offsets" not in changes:
                    changes["offsets"] = off
                # "{seed}" in a value names the seed's own file, e.g. its pretrained run
                changes = {k: v.replace("{seed}", str(seed)) if isinstance(v, str) else v for k, v in changes.items()}
                train = {k: changes.pop(k) for k in list(changes) if k in TRAIN_AXES}  # e.g. aux: none / hcml
                data = {k: changes.pop(k) for k in list(changes) if k in DATA_AXES}  # e.g. label_fraction
                try:
                    model = override(base.model, changes, "sweep")
                    run = replace(base, model=model, train=override(base.train, {**train, "seed": seed}, "sweep"),
                                  data=override(base.data, data, "sweep"))
                except (ValueError, TypeError, KeyError, IndexError) as e:
                    raise SelfyError(f"sweep variant {combo}: {e}") from None
                if run.run_hash in seen or (off is not None and run.model.block == "none" and None in offsets):
                    continue  # planned already; a variant without a block is its backbone's baseline
                seen.add(run.run_hash)
                runs.append(PlannedRun(run, describe(run, base)))
    return runs


@dataclass(frozen=True)
class SweepPlan:
    """A sweep as planned from an experiment file and flags: what `selfy-lab ablate` runs."""

    name: str
    base: RunConfig
    offsets: list[tuple[int, ...] | None]
    axes: dict[str, list[str]]
    seeds: list[int]
    runs: list[PlannedRun]
    paper_table: str = ""
    record: dict[str, Any] = field(default_factory=dict)
    report: str = "none"  # what the sweep reports (vocabulary.REPORTS), recorded in its sweep.yaml


def _seed_list(value: Any, where: str) -> list[int]:
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        raise SelfyError(f"{where}: seeds must be a count or a list of seeds, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise SelfyError(f"{where}: seeds must be at least 1, got {value}")
        return list(range(value))
    if not value or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise SelfyError(f"{where}: the list of seeds must hold non-negative integers, got {list(value)}")
    return sorted(set(value))


AXIS_FLAGS = ("extractor", "integrator", "position", "window", "similarity", "fusion", "backbone", "block")


def plan_command(flags: dict[str, Any], offsets: list[str] | None = None, ladder: bool | None = None,
                 baseline: bool = True, seeds: int | list[int] | None = None, report: str = "") -> SweepPlan:
    """The sweep of ``selfy-lab ablate``'s flags: the model flags of :data:`AXIS_FLAGS` are comma lists, each
    an axis; ``offsets`` are the sweep's offset sets (given apart, never one run's offsets); every other flag is
    a run flag as for :func:`plan_sweep`."""
    axes = {k: parse_list(flags.get(k)) for k in AXIS_FLAGS}
    run_flags = {k: v for k, v in flags.items() if k not in AXIS_FLAGS and k not in ("offsets", "report")}
    return plan_sweep(run_flags, offsets, ladder, baseline, axes, seeds, report)


def plan_sweep(flags: dict[str, Any], offsets: list[str] | None = None, ladder: bool | None = None,
               baseline: bool = True, axes: dict[str, list[str]] | None = None,
               seeds: int | list[int] | None = None, report: str = "") -> SweepPlan:
    """The sweep a command line describes. ``flags``: run flags as for
    :func:`selfy_lab.config.experiments.run_from_flags` (``experiment`` names the file); the sweep arguments, when
    given, win over the file's ``sweep`` section, each on its own: ``offsets`` (specs), ``ladder``,
    ``baseline`` (False drops it), ``axes`` (per axis) and ``seeds`` (a count or a list); ``report`` over its
    ``report`` (:func:`planned_report`)."""
    run, exp = run_from_flags(flags, "ablate")
    sweep = exp.sweep
    unknown = [k for k in sweep if k not in ("offsets", "ladder", "baseline", "axes", "variants", "base_offsets", "seeds")]
    if unknown:
        raise SelfyError(f"{flags.get('experiment')}: unknown sweep key '{unknown[0]}'")
    listed = sweep.get("offsets")
    listed = listed if isinstance(listed, list) else ([] if listed is None else [listed])  # one set may stand alone
    specs = [str(x) for x in (offsets or listed)]
    if ladder is None and "ladder" in sweep:
        ladder = bool(sweep["ladder"])
    if not specs and sweep.get("variants"):
        specs = [str(sweep.get("base_offsets", "-2..2"))]
        ladder = False if ladder is None else ladder
    all_axes = {k: list(v) if isinstance(v, list) else [v] for k, v in (sweep.get("axes") or {}).items()}  # YAML's types
    all_axes.update({k: list(v) for k, v in (axes or {}).items() if v})
    seed_list = _seed_list(seeds if seeds is not None else sweep.get("seeds", 1),
                           "--seeds" if seeds is not None else f"{flags.get('experiment')}")
    sets = plan_offsets(specs, ladder, baseline and sweep.get("baseline", True))
    runs = plan(run, sets, all_axes, sweep.get("variants"), seed_list)
    kind = planned_report(report or exp.report, sets, all_axes)
    table = planned_paper_table(exp.paper_table, kind, runs)
    return SweepPlan(exp.name or "ablate", run, sets, all_axes, seed_list, runs, table,
                     sweep_record(runs, all_axes, report=kind, base=run, paper_table=table), kind)


def planned_report(declared: str, sets: list, axes: dict) -> str:
    """What a sweep reports (:data:`~selfy_lab.config.vocabulary.REPORTS`): what its experiment file or ``--report``
    declares, else what its plan asks for: ``recipes`` when it sweeps the learning rate or the epochs,
    ``comparison`` when it sweeps blocks, ``offsets`` when it sweeps two or more offset sets and nothing else,
    ``none`` otherwise; an axis of one value (``--backbone tsm-r18``) sweeps nothing. Decided when the sweep is
    planned, never from its results."""
    if declared:
        if declared not in REPORTS:
            raise SelfyError(f"unknown report '{declared}': choose from {', '.join(REPORTS)}")
        return declared
    swept = {k for k, v in axes.items() if len(v) > 1}
    if {"lr", "epochs"} & swept:
        return "recipes"
    if "block" in swept:
        return "comparison"
    return "offsets" if sum(s is not None for s in sets) >= 2 and not swept else "none"


def planned_paper_table(declared: str, report: str, runs: list[PlannedRun]) -> str:
    """The paper table a sweep reproduces (a :data:`selfy_lab.core.paper.TABLES` key, "" for none): what its
    experiment file names, else Table 3a of its backbone family for a ladder of SELFY offset sets on one TSN
    or TSM backbone (an ``offsets`` report whose sets are among that table's rows, as ``selfy-lab ablate
    --offsets -3..3`` plans). Decided when the sweep is planned and recorded with it, never from its results."""
    if declared or report != "offsets" or not runs:
        return declared
    backbones = {r.run.model.backbone for r in runs}
    table = f"3a-{next(iter(backbones)).split('-')[0]}" if len(backbones) == 1 else ""
    if table not in TABLES or not {r.run.model.block for r in runs} <= {"none", "selfy"}:
        return ""
    rows = {row["variant"]["offsets"] for row in TABLES[table]["rows"]}
    return table if {r.run.model.variant()["offsets"] for r in runs} <= rows else ""


def sweep_record(runs: list[PlannedRun], axes: dict | None = None, *, report: str = "none",
                 base: RunConfig | None = None, paper_table: str = "") -> dict:
    """What a sweep ran (SWEEP/sweep.yaml): its first run's config (``base``), axes, offset sets, seeds, what
    it reports, the paper table it reproduces (:func:`planned_paper_table`; "" for none), its ``recipe``
    (lr, epochs) -- that of the config its experiment file and flags resolve to before its axes and variants
    (``base`` here; default the first run's), the shared recipe of a tuning sweep -- and its runs."""
    offsets = list(dict.fromkeys(r.run.model.variant()["offsets"] for r in runs))
    train = (base or (runs[0].run if runs else RunConfig())).train
    return {"base": to_dict(runs[0].run) if runs else {}, "axes": {k: list(v) for k, v in (axes or {}).items()},
            "offsets": offsets, "seeds": sorted({r.run.train.seed for r in runs}), "report": report,
            "paper_table": paper_table, "recipe": {"lr": train.lr, "epochs": train.epochs},
            "runs": [{"run_id": r.run_id, "label": r.label, **r.run.variant(), "seed": r.run.train.seed} for r in runs]}


# ---- execution ----

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


def _worker_setup(start_method: str) -> None:
    """A sweep worker's process settings. A spawned process takes 'spawn' as its default start method, so the
    loader processes of a run with --workers would each start a fresh interpreter (5 s a loader here, 15 s a
    smoke run instead of 1): they start as in the sweep's own process (``start_method``; fork on Linux)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    mp.set_start_method(start_method, force=True)
    _exit_with_parent()


def _worker(task_q, result_q, out: str, device: str, threads: int | None, start_method: str) -> None:
    _worker_setup(start_method)
    while True:
        pr = task_q.get()
        if pr is None:
            return
        result_q.put(execute_run(pr, Path(out), device, lambda e, **k: None, threads))


def sweep_threads(jobs: int = 1, threads: int | None = None) -> int:
    """CPU threads of each run of a sweep: ``threads`` when given, else the cores divided among the ``jobs``
    runs that train at once. Set explicitly for every run, because the count sets a CPU run's round-off."""
    if threads is not None:
        if threads < 1:
            raise SelfyError(f"--threads must be at least 1, got {threads}")
        return threads
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def run_sweep(runs: list[PlannedRun], out: str | Path, jobs: int = 1, device: str = "auto",
              on_event: Callable[..., None] = lambda e, **k: None, record: dict | None = None,
              cluster=None, threads: int | None = None) -> list[dict]:
    """Train every planned run not yet finished (here, in ``jobs`` worker processes of ``threads`` CPU threads
    each -- default :func:`sweep_threads` -- or as submitit jobs when ``cluster`` is a
    :class:`selfy_lab.studies.cluster.ClusterOptions`); keeps the sweep record, runs.csv and status.csv current.
    Returns the status rows."""
    threads = sweep_threads(jobs, threads)
    R.check_source()  # uncommitted package code stops here, before anything is written (unless --allow-dirty)
    out = R.ensure_writable(out)
    record = {**(record or sweep_record(runs)), "execution": {"jobs": jobs, "threads": threads, "device": device}}
    with R.exclusive(out, "the sweep folder"):
        try:
            return _run_sweep(runs, out, jobs, device, on_event, record, cluster, threads)
        except OSError as e:  # the sweep's own files (written atomically: what was there stays whole)
            raise SelfyError(f"cannot write the sweep's files in {out} ({e.strerror or e}): free some space or "
                             f"fix the folder, then re-run the same command; finished runs are kept") from None


def _run_sweep(runs, out: Path, jobs: int, device: str, on_event: Callable, record: dict, cluster,
               threads: int) -> list[dict]:
    R.write_sweep_record(out, record)
    # a finished run keeps the time its training took when it ran (a re-run of the sweep only skips it)
    took = {r["run_id"]: r["seconds"] for r in R.read_status(out) if r.get("status") == "done"}
    status: dict[str, dict] = {}
    todo = []
    for pr in runs:
        d = R.run_dir(out, pr.run_id)
        problem = R.metrics_problem(d, scored_splits(pr.run))
        done = problem is None
        if not done and (d / R.METRICS).exists():
            on_event("stale", run=pr, why=problem)  # it will train again
        status[pr.run_id] = R.status_row(pr.run, "done" if done else "pending",
                                         seconds=took.get(pr.run_id, "") if done else "")
        if not done:
            todo.append(pr)
    on_event("plan", total=len(runs), done=len(runs) - len(todo))
    run_ids = [pr.run_id for pr in runs]
    experiment = runs[0].run.experiment if runs else None
    R.write_status(out, status.values())
    R.collect_runs(out, run_ids, experiment)

    def finished(row: dict, pr: PlannedRun) -> None:
        status[row["run_id"]] = row
        R.write_status(out, status.values())
        R.collect_runs(out, run_ids, experiment)
        on_event("run_end", run=pr, row=row)

    if cluster is not None and cluster.executor != "process":
        if todo:
            run_jobs(todo, out, cluster, device, finished, on_event)
    elif jobs <= 1 or len(todo) <= 1:
        for pr in todo:
            on_event("run_start", run=pr)
            row = execute_run(pr, out, device, lambda e, **k: on_event("run_progress", run=pr, kind=e, **k), threads)
            finished(row, pr)
    else:
        _run_parallel(todo, out, jobs, device, finished, on_event, threads)
    return list(status.values())


def _run_parallel(todo, out, jobs, device, finished, on_event, threads: int) -> None:
    ctx = mp.get_context("spawn")
    task_q, result_q = ctx.Queue(), ctx.Queue()
    gpus = torch.cuda.device_count() if device in ("auto", "cuda") else 0
    workers = []
    n = min(jobs, len(todo))
    for w in range(n):
        dev = f"cuda:{w % gpus}" if gpus else ("cpu" if device == "auto" else device)
        # not daemonic: a daemonic process may not start children, and each run's data loader starts its
        # --workers processes; a worker still ends with the sweep process (_exit_with_parent)
        p = ctx.Process(target=_worker, args=(task_q, result_q, str(out), dev, None if gpus else threads,
                                              mp.get_start_method()),
                        daemon=False)
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


def run_plan(plan: SweepPlan, out: str | Path, jobs: int = 1, device: str = "auto",
             on_event: Callable[..., None] = lambda e, **k: None,
             runs_dir: str | Path | None = None, cluster=None,
             threads: int | None = None) -> list[dict]:
    """`selfy-lab ablate`: run a planned sweep into ``out`` (its run directories in the shared store
    ``runs_dir`` if given; as submitit jobs with ``cluster``). Returns the status rows; what the sweep
    reports is written by :func:`selfy_lab.reports.sweep_report.write_sweep_report`."""
    if runs_dir is not None:
        R.link_runs(R.ensure_writable(out), R.ensure_writable(runs_dir, "--runs-dir"))
    return run_sweep(plan.runs, out, jobs, device, on_event, plan.record, cluster, threads)
