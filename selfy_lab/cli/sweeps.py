"""selfy-lab ablate and corrupt."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..core.errors import SelfyError
from ..store.results import SWEEP_OWNED, allow_dirty_source, claim_folder
from .common import (
    LIST, MODEL_HELP, AllowDirty, BatchSize, Categories, Compile, DataRoot, Dataset, Deterministic, Device, Epochs,
    Experiment, FrameTemplate, Frames, ListFormat, Lr, OnMissing, Preset, Pretrained, Settings, SweepDisplay,
    Tensorboard, TrainList, ValList, Workers, app, at_least, console, path_list, progress_bar, table,
)


def _pm(row, metric: str) -> str:
    mean, std = 100 * row[f"{metric}_mean"], row.get(f"{metric}_std")
    return f"{mean:.1f} ± {100 * std:.1f}" if row[f"{metric}_count"] > 1 and std == std else f"{mean:.1f}"


def _num(v: float, fmt: str = "{:.1f}") -> str:
    return fmt.format(v) if v == v else "-"


def print_sweep_summary(con, out: Path, paper_table: str | None = None) -> None:
    """The sweep's table in the paper's layout (mean ± std over seeds, the paper's values beside)."""
    # deferred: pandas and scipy, which the command line's start must not load
    from ..reports.tables import sweep_summary

    summ, table_id, varying = sweep_summary(out, paper_table)
    if summ.empty:
        con.print("no finished runs yet")
        return
    cols = [*varying, "GFLOPs", "top-1", "top-5", "seeds"] + (["paper top-1", "paper top-5"] if table_id else [])
    rows = []
    for _, r in summ.iterrows():
        cells = [str(r[c]) for c in varying] + [f"{r['gflops']:.3f}", _pm(r, "top1"), _pm(r, "top5"), str(int(r["top1_count"]))]
        if table_id:
            cells += [_num(r["paper_top1"]), _num(r["paper_top5"])]
        rows.append(cells)
    split = str(summ["split"].iloc[0]) if "split" in summ else "val"
    title = f"{out}: {split} accuracy (%), mean ± std over seeds" + (f"; paper: SS-V1, {table_id}" if table_id else "")
    con.print(table(title, cols, rows))


@app.command()
def ablate(
    offsets: Annotated[Optional[list[str]], typer.Option(
        "--offsets", help="Offset set: 0, 1, -2,0,2 or a range -3..3; several sets: repeat the flag (a set's own "
        "commas keep it one value). One range expands to the "
        "Table 3a ladder: baseline, {0}, {1}, -1..1, ... up to the range.", rich_help_panel="Sweep")] = None,
    ladder: Annotated[Optional[bool], typer.Option(
        "--ladder/--no-ladder", help="Force or prevent the ladder expansion of a single range.",
        rich_help_panel="Sweep")] = None,
    no_baseline: Annotated[bool, typer.Option("--no-baseline", help="Do not add the baseline without a block.",
                                              rich_help_panel="Sweep")] = False,
    extractor: Annotated[Optional[list[str]], typer.Option(help=f"Variants ({LIST}): smax,kscm,mlp,conv,conv3d.", rich_help_panel="Sweep")] = None,
    integrator: Annotated[Optional[list[str]], typer.Option(help=f"Variants ({LIST}): fc,mlp,conv,none.", rich_help_panel="Sweep")] = None,
    position: Annotated[Optional[list[str]], typer.Option(
        help=f"Variants ({LIST}): pool1,res2,res3,res4,res5, or stages of one variant joined by + (res2+res3+res4).",
        rich_help_panel="Sweep")] = None,
    window: Annotated[Optional[list[str]], typer.Option(help=f"Variants ({LIST}): 5x5,9x9,13x13,17x17.", rich_help_panel="Sweep")] = None,
    similarity: Annotated[Optional[list[str]], typer.Option(help=f"Variants ({LIST}): cosine,dot,embedded_gaussian.", rich_help_panel="Sweep")] = None,
    fusion: Annotated[Optional[list[str]], typer.Option(help=f"Variants ({LIST}): R,R+V.", rich_help_panel="Sweep")] = None,
    backbone: Annotated[Optional[list[str]], typer.Option(help=f"Backbones ({LIST}), e.g. tsn-r18,tsm-r18.", rich_help_panel="Sweep")] = None,
    block: Annotated[Optional[list[str]], typer.Option(help=f"Blocks ({LIST}; Table 5): selfy,selfy-s,stcb,...", rich_help_panel="Sweep")] = None,
    seeds: Annotated[Optional[int], typer.Option(
        help="Seeds per variant (0 .. N-1); default: the experiment file's seeds, else 1.", rich_help_panel="Sweep")] = None,
    report: Annotated[Optional[str], typer.Option(
        help="What the sweep reports, recorded in OUT/sweep.yaml: offsets (accuracy vs temporal range), comparison "
        "or robustness (a block comparison: comparison.csv, accuracy vs GFLOPs), recipes (a tuning sweep's best "
        "recipe per method) or none. Default: the experiment file's report, else comparison for a --block list of "
        "two or more, offsets for two or more offset sets and no other list, none otherwise.",
        rich_help_panel="Sweep")] = None,
    jobs: Annotated[int, typer.Option(help="Runs in parallel (worker processes; one per GPU when there are GPUs). On "
                                           "the CPU each run gets cores/N threads, and the thread count sets the "
                                           "round-off: its digits differ from a --jobs 1 run's.",
                                      rich_help_panel="Sweep")] = 1,
    threads: Annotated[Optional[int], typer.Option(
        help="CPU threads of each run (default: the cores divided by --jobs). Set for every run and recorded in "
        "runs.csv and sweep.yaml: a CPU run's digits depend on it, so keep it fixed within a comparison.",
        rich_help_panel="Sweep")] = None,
    out: Annotated[Path, typer.Option(help="Sweep directory: runs/, runs.csv, status.csv, figures/.")] = Path("runs/ablate"),
    executor: Annotated[str, typer.Option(
        help="Where runs train: process (this machine, --jobs worker processes), slurm (one submitit job per run, "
        "requeued on preemption, resuming from its last epoch), local (submitit's local processes, to try the "
        "cluster path here). Needs submitit for local / slurm.", rich_help_panel="Cluster")] = "process",
    partition: Annotated[Optional[str], typer.Option(help="Slurm partition.", rich_help_panel="Cluster")] = None,
    gpus_per_run: Annotated[int, typer.Option(help="GPUs per job (several: one DDP process per GPU).",
                                              rich_help_panel="Cluster")] = 0,
    time_min: Annotated[int, typer.Option("--time-min", help="Job time limit in minutes (a run that needs longer is "
                                          "requeued and resumes).", rich_help_panel="Cluster")] = 24 * 60,
    runs_dir: Annotated[Optional[Path], typer.Option(
        help="Keep the run directories in this store, shared by several sweeps (OUT/runs links to it): a variant "
        "that several sweeps plan, e.g. the baseline of every table, trains once.", rich_help_panel="Sweep")] = None,
    experiment: Experiment = None, preset: Preset = None,
    dataset: Dataset = None, data_root: DataRoot = None, train_list: TrainList = None, val_list: ValList = None,
    categories: Categories = None, list_format: ListFormat = None, frame_template: FrameTemplate = None, workers: Workers = None,
    on_missing: OnMissing = None, frames: Frames = None, pretrained: Pretrained = None,
    epochs: Epochs = None, batch_size: BatchSize = None, lr: Lr = None, tensorboard: Tensorboard = None,
    compile: Compile = None, deterministic: Deterministic = None, device: Device = "auto",
    allow_dirty: AllowDirty = False, settings: Settings = None,
):
    """Run an ablation sweep, resumably: every variant x seed trains in OUT/runs/<run id>.

    Examples:

      selfy-lab ablate --offsets -3..3                      # Table 3a ladder on the built-in benchmark

      selfy-lab ablate --offsets -2..2 --no-ladder --window 5x5,9x9,13x13,17x17

      selfy-lab ablate --experiment experiments/table3b.yaml --seeds 3

      selfy-lab ablate --experiment experiments/table7f.yaml --preset paper --dataset something-v1 \\
          --data-root /data/ssv1 --executor slurm --partition gpu --gpus-per-run 8 --time-min 1440

    Re-running the same command skips finished runs and resumes interrupted ones.
    """
    flags = dict(locals())
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..studies import ablate as A
    from ..reports.sweep_report import write_sweep_report

    at_least(seeds, 1, "--seeds")
    at_least(jobs, 1, "--jobs")
    at_least(threads, 1, "--threads")
    allow_dirty_source(allow_dirty)
    at_least(gpus_per_run, 0, "--gpus-per-run")
    at_least(time_min, 1, "--time-min")
    # deferred: loads torch, which the command line's start must not
    from ..studies.cluster import ClusterOptions

    cluster = ClusterOptions(executor, partition or "", gpus_per_run, time_min)
    plan = A.plan_command(flags, offsets, ladder, not no_baseline, seeds, report or "")
    claim_folder(out, SWEEP_OWNED)
    con = console()
    variants = len(plan.runs) // max(len(plan.seeds), 1)
    con.print(f"sweep '{plan.name}': {len(plan.runs)} runs ({variants} variants x {len(plan.seeds)} seed(s)) "
              f"on {plan.base.data.dataset}, {plan.base.preset} preset -> {out}")
    try:
        with SweepDisplay(con) as display:
            status = A.run_plan(plan, out, jobs, device, display, runs_dir, cluster, threads)
    except KeyboardInterrupt:
        con.print(f"interrupted: re-run the same command to skip finished runs and resume the rest ({out})")
        raise typer.Exit(130)
    figures = write_sweep_report(out, plan.report, paper_table=plan.paper_table)  # the study's report
    print_sweep_summary(con, out, plan.paper_table)
    for path in figures:
        con.print(f"wrote {path}")
    failed = [s for s in status if s["status"] in ("failed", "diverged")]
    con.print(f"wrote {out / 'runs.csv'} and {out / 'status.csv'}")
    if failed:
        diverged = sum(s["status"] == "diverged" for s in failed)
        why = f" ({diverged} diverged: lower the learning rate)" if diverged else ""
        con.print(f"{len(failed)} of {len(status)} runs failed{why}: see {out / 'status.csv'} and runs/<id>/error.txt")
        raise typer.Exit(1)


@app.command()
def corrupt(
    kind: Annotated[Optional[list[str]], typer.Option(
        "--kind", help=f"Corruptions ({LIST}): blur, occlusion, any ImageNet-C name, frame_rate_drop, "
        "temporal_blur. See --list.")] = None,
    severity: Annotated[Optional[list[str]], typer.Option(help=f"Severities ({LIST}): 3, 1-6 (or 1..6), 1,3,5 (default: all of the kind). "
                                                    "Severity 0 (clean) is always evaluated.")] = None,
    frames_spec: Annotated[str, typer.Option("--corrupted-frames", help="Which frames to corrupt: center (the 4th of 8, the paper), all, "
                                             "or 1-based numbers like 4,5. Temporal kinds act on the whole clip.")] = "center",
    sweep: Annotated[Optional[list[Path]], typer.Option(help=f"Sweep directories whose runs to evaluate ({LIST}; "
                                                        "default: the Table 3a sweep --results-root's README.md names).")] = None,
    checkpoint: Annotated[Optional[list[Path]], typer.Option(help=MODEL_HELP + f" Several ({LIST}): each is "
                                                             "evaluated.")] = None,
    results_root: Annotated[Path, typer.Option(help="Results whose README.md names the default sweep.")] = Path("results"),
    out: Annotated[Optional[Path], typer.Option(help="Output directory (default: robustness/ inside the models' sweep, or runs/robustness for models of several sweeps or none).")] = None,
    examples: Annotated[int, typer.Option(help="Also save clean-vs-corrupted strips of N validation clips.")] = 0,
    list_kinds: Annotated[bool, typer.Option("--list", help="List every corruption with its severity range.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the per-clip random choices (blur angle, noise).")] = 0,
    test_clips: Annotated[int, typer.Option("--clips", help="Test clips per video (1 or 2), every view corrupted "
                                             "alike, predictions averaged.")] = 1,
    test_crops: Annotated[int, typer.Option("--crops", help="Crops per test clip: 1 (centre) or 3 (three-crop).")] = 1,
    split: Annotated[Optional[str], typer.Option(help="val or test (default: test where a model's dataset has the "
                                                 "held-out split, as the built-in benchmark does; else val).")] = None,
    device: Device = "auto",
    allow_dirty: AllowDirty = False,
):
    """Evaluate trained models on corrupted clips (the paper's occlusion / motion-blur protocol and more), on the
    held-out test split where the dataset has one.

    By default every run of the Table 3a offsets sweep that results/README.md names is evaluated; finished
    (model, kind, severity) cells are skipped on a re-run.

    Examples:

      selfy-lab corrupt --kind blur --severity 1-6

      selfy-lab corrupt --kind occlusion --kind blur --sweep results/ablate-offsets --examples 2
    """
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..data.corrupt import kinds as all_kinds

    con = console()
    if list_kinds:
        con.print(table("corruptions", ["kind", "severities", "frames", "source"],
                        [[k.name, f"1-{k.severities}", "whole clip" if k.temporal else "chosen frames", k.source]
                         for k in all_kinds().values()]))
        return
    at_least(examples, 0, "--examples")
    at_least(seed, 0, "--seed")
    if split not in (None, "val", "test"):
        raise SelfyError(f"--split {split}: use val or test")
    # deferred: loads torch, which the command line's start must not
    from ..studies import robustness as R
    from ..reports.viz import write_robustness_report

    allow_dirty_source(allow_dirty)

    plan = R.plan_robustness(kind or [], ",".join(severity or []) or None, frames_spec, path_list(sweep),
                             path_list(checkpoint), results_root, out,
                             test_clips, test_crops)
    con.print(f"{len(plan.models)} model(s) x {len(plan.kinds)} kind(s) x severities {plan.severities} (+ clean) -> {plan.out}")
    t0 = time.time()
    with progress_bar(con) as prog:
        task = prog.add_task("cells", total=None)

        def on_event(event, **kw):
            if event == "plan":
                prog.update(task, total=kw["total"])
            elif event == "unfinished":
                prog.console.print(f"note: {kw['message']}")
            elif event == "cell":
                prog.advance(task)
                if not kw["skipped"]:
                    prog.update(task, description=f"{kw['run'].model.variant()['offsets']} {kw['kind']} s{kw['severity']}: "
                                                  f"top-1 {kw['top1']:.3f}")

        try:
            result = R.run_plan(plan, seed, examples, device, on_event, split)
        except KeyboardInterrupt:
            con.print(f"interrupted: re-run the same command to continue ({plan.out})")
            raise typer.Exit(130)
    con.print(f"evaluated in {time.time() - t0:.0f} s; wrote {result.table}")
    written = write_robustness_report(plan.out, plan.kinds, result.examples)  # the study's report
    print_robustness_summary(con, plan.out, plan.kinds, plan.clips, plan.crops)
    figures = [p for p in written if p.parent.name != "examples"]
    for p in figures:
        con.print(f"wrote {p}")
    if examples:
        con.print(f"wrote {len(written) - len(figures)} example strip(s) to {plan.out / 'examples'}")


def print_robustness_summary(con, out: Path, names: list[str], clips: int = 1, crops: int = 1) -> None:
    """Per kind: top-1 by severity (mean ± std over seeds) and mPC / rPC per variant, for one test protocol."""
    # deferred: pandas and scipy, which the command line's start must not load
    from ..reports.tables import load_robustness, load_robustness_summary, robustness_by_severity

    df, summ = load_robustness(out), load_robustness_summary(out)
    for k in names:
        view = robustness_by_severity(df, summ, k, clips=clips, crops=crops)
        if view.empty:
            continue
        sevs = sorted(int(c[5:]) for c in view.columns if c.startswith("mean_"))
        # a block comparison names its blocks, and a sweep over positions its positions
        named = ["backbone", *(["block"] if "block" in view and not set(view["block"]) <= {"none", "selfy"} else []),
                 "offsets", *(["position"] if "position" in view and view["position"].nunique() > 2 else [])]
        rows = []
        for _, r in view.iterrows():
            cells = [f"{100 * r[f'mean_{s}']:.1f}" + (f" ± {100 * r[f'std_{s}']:.1f}" if r[f"std_{s}"] == r[f"std_{s}"] else "")
                     for s in sevs]
            rows.append([*(r[c] for c in named), *cells, _num(100 * r.get("mPC", float("nan"))),
                         _num(r.get("rPC", float("nan")), "{:.3f}")])
        con.print(table(f"{k}: val top-1 (%) by severity, mean ± std over seeds",
                        [*named, *[("clean" if s == 0 else f"s{s}") for s in sevs], "mPC", "rPC"], rows))
