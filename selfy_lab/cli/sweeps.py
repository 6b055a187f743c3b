"""selfy-lab ablate and corrupt."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SelfyError
from .common import (BatchSize, Categories, DataRoot, Dataset, Device, Epochs, Experiment, FrameTemplate,
                     Frames, Lr, Preset, Pretrained, SweepDisplay, TrainList, ValList, Workers, _comma,
                     _console, _table, app, run_from_flags)


def print_sweep_summary(con, out: Path, paper_table: str = "") -> None:
    """The sweep's table in the paper's layout and its accuracy-vs-temporal-range figure."""
    from ..results import load_runs, paper_column, summarize

    df = load_runs(out / "runs.csv")
    if df.empty:
        con.print("no finished runs yet")
        return
    summ = summarize(df)
    table_id = paper_table
    if not table_id and set(summ["offsets"]) <= set(("none", "{0}", "{1}", "-1..1", "-2..2", "-3..3")):
        fam = {b.split("-")[0] for b in summ["backbone"]}
        table_id = f"3a-{fam.pop()}" if len(fam) == 1 else ""
    if table_id:
        summ = paper_column(summ, table_id)
    blocks = summ[summ["block"] != "none"]
    varying = [c for c in ("backbone", "block", "offsets", "window", "extractor", "integrator", "similarity",
                           "fusion", "position") if (summ if c == "backbone" else blocks)[c].nunique() > 1]
    varying = varying or ["offsets"]

    def pm(row, m):
        mean, std = 100 * row[f"{m}_mean"], 100 * (row.get(f"{m}_std") if row.get(f"{m}_std") == row.get(f"{m}_std") else 0)
        return f"{mean:.1f} ± {std:.1f}" if row[f"{m}_count"] > 1 else f"{mean:.1f}"

    cols = [*varying, "GFLOPs", "top-1", "top-5", "seeds"] + (["paper top-1", "paper top-5"] if table_id else [])
    rows = []
    for _, r in summ.iterrows():
        cells = [str(r[c]) for c in varying] + [f"{r['gflops']:.3f}", pm(r, "top1"), pm(r, "top5"), str(int(r["top1_count"]))]
        if table_id:
            cells += [f"{r['paper_top1']:.1f}" if r["paper_top1"] == r["paper_top1"] else "-",
                      f"{r['paper_top5']:.1f}" if r["paper_top5"] == r["paper_top5"] else "-"]
        rows.append(cells)
    title = f"{out}: val accuracy (%), mean ± std over seeds" + (f"; paper: SS-V1, {table_id}" if table_id else "")
    con.print(_table(title, cols, rows))
    if summ["offsets"].nunique() > 1:
        from ..paper import TABLES
        from ..viz import save_figure, temporal_range_figure

        paper_rows = None
        if table_id.startswith("3a"):
            paper_rows = {TABLES[table_id]["default"]["backbone"]: {
                r["variant"]["offsets"]: r["top1"] for r in TABLES[table_id]["rows"]}}
        paths = save_figure(temporal_range_figure(summ, paper_rows), out / "figures" / "temporal_range")
        con.print(f"wrote {paths[0]} and {paths[1].name}")


@app.command()
def ablate(
    offsets: Annotated[Optional[list[str]], typer.Option(
        "--offsets", help="Offset set (repeatable): 0, 1, -2,0,2 or a range -3..3. One range expands to the "
        "Table 3a ladder: baseline, {0}, {1}, -1..1, ... up to the range.", rich_help_panel="Sweep")] = None,
    ladder: Annotated[Optional[bool], typer.Option(
        "--ladder/--no-ladder", help="Force or prevent the ladder expansion of a single range.",
        rich_help_panel="Sweep")] = None,
    no_baseline: Annotated[bool, typer.Option("--no-baseline", help="Do not add the baseline without SELFY.",
                                              rich_help_panel="Sweep")] = False,
    extractor: Annotated[Optional[str], typer.Option(help="Comma list: smax,kscm,mlp,conv,conv3d.", rich_help_panel="Sweep")] = None,
    integrator: Annotated[Optional[str], typer.Option(help="Comma list: fc,mlp,conv,none.", rich_help_panel="Sweep")] = None,
    position: Annotated[Optional[str], typer.Option(help="Comma list: pool1,res2,res3,res4,res5,res2+res3+res4.",
                                                    rich_help_panel="Sweep")] = None,
    window: Annotated[Optional[str], typer.Option(help="Comma list: 5x5,9x9,13x13,17x17.", rich_help_panel="Sweep")] = None,
    similarity: Annotated[Optional[str], typer.Option(help="Comma list: cosine,dot,embedded_gaussian.", rich_help_panel="Sweep")] = None,
    fusion: Annotated[Optional[str], typer.Option(help="Comma list: R,R+V.", rich_help_panel="Sweep")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Comma list of backbones, e.g. tsn-r18,tsm-r18.", rich_help_panel="Sweep")] = None,
    block: Annotated[Optional[str], typer.Option(help="Comma list of blocks (Table 5): selfy,selfy-s,stcb,...", rich_help_panel="Sweep")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per variant (0 .. N-1).", rich_help_panel="Sweep")] = 1,
    jobs: Annotated[int, typer.Option(help="Runs in parallel (worker processes; one per GPU when there are GPUs).",
                                      rich_help_panel="Sweep")] = 1,
    out: Annotated[Path, typer.Option(help="Sweep directory: runs/, runs.csv, status.csv, figures/.")] = Path("runs/ablate"),
    experiment: Experiment = None, preset: Preset = None,
    dataset: Dataset = None, data_root: DataRoot = None, train_list: TrainList = None, val_list: ValList = None,
    categories: Categories = None, frame_template: FrameTemplate = None, workers: Workers = None,
    frames: Frames = None, pretrained: Pretrained = None,
    epochs: Epochs = None, batch_size: BatchSize = None, lr: Lr = None,
    device: Device = "auto",
):
    """Run an ablation sweep, resumably: every variant x seed trains in OUT/runs/<config hash>.

    Examples:

      selfy-lab ablate --offsets -3..3                      # Table 3a ladder on the built-in benchmark

      selfy-lab ablate --offsets -2..2 --no-ladder --window 5x5,9x9,13x13,17x17

      selfy-lab ablate --experiment experiments/table3b.yaml --seeds 3

    Re-running the same command skips finished runs and resumes interrupted ones.
    """
    from .. import ablate as A

    flags = dict(locals())
    for k in ("extractor", "integrator", "position", "window", "similarity", "fusion", "backbone", "block",
              "offsets", "seed"):
        flags.pop(k, None)
    run, exp = run_from_flags(flags, "")
    name = exp.name or "ablate"
    run = replace(run, experiment=name)
    sweep = exp.sweep
    axes = {k: _comma(v) for k, v in dict(extractor=extractor, integrator=integrator, position=position, window=window,
                                          similarity=similarity, fusion=fusion, backbone=backbone, block=block).items() if v}
    for k, v in (sweep.get("axes") or {}).items():
        axes.setdefault(k, [str(x) for x in (v if isinstance(v, list) else [v])])
    specs = list(offsets or []) or [str(x) for x in (sweep.get("offsets") or [])]
    if not specs and sweep.get("variants"):
        specs = [str(sweep.get("base_offsets", "-2..2"))]
        ladder = False if ladder is None else ladder
    if ladder is None and "ladder" in sweep:
        ladder = bool(sweep["ladder"])
    baseline = not no_baseline and sweep.get("baseline", True)
    sets = A.plan_offsets(specs, ladder, baseline)
    if seeds < 1:
        raise SelfyError("--seeds must be at least 1")
    seed_list = list(range(int(sweep.get("seeds", seeds) if seeds == 1 else seeds)))
    runs = A.plan(run, sets, axes, sweep.get("variants"), seed_list)
    con = _console()
    con.print(f"sweep '{name}': {len(runs)} runs ({len(sets)} offset sets, {len(seed_list)} seed(s)) on "
              f"{run.data.dataset}, {run.preset} preset -> {out}")
    try:
        with SweepDisplay(con) as display:
            status = A.run_sweep(runs, out, jobs, device, display, A.sweep_record(runs, axes))
    except KeyboardInterrupt:
        con.print(f"interrupted: re-run the same command to skip finished runs and resume the rest ({out})")
        raise typer.Exit(130)
    print_sweep_summary(con, out, exp.paper_table)
    failed = [s for s in status if s["status"] == "failed"]
    con.print(f"wrote {out / 'runs.csv'} and {out / 'status.csv'}")
    if failed:
        con.print(f"{len(failed)} of {len(status)} runs failed: see {out / 'status.csv'} and runs/<id>/error.txt")
        raise typer.Exit(1)


@app.command()
def corrupt(
    kind: Annotated[Optional[list[str]], typer.Option(
        "--kind", help="Corruption (repeatable or comma list): blur, occlusion, any ImageNet-C name, frame_rate_drop, "
        "temporal_blur. See --list.")] = None,
    severity: Annotated[Optional[str], typer.Option(help="Severities: 3, 1-6 or 1,3,5 (default: all of the kind). "
                                                    "Severity 0 (clean) is always evaluated.")] = None,
    frames_spec: Annotated[str, typer.Option("--frames", help="Corrupted frames: center (the 4th of 8, the paper), all, "
                                             "or 1-based numbers like 4,5. Temporal kinds act on the whole clip.")] = "center",
    sweep: Annotated[Optional[list[Path]], typer.Option(help="Sweep directory whose runs to evaluate (repeatable).")] = None,
    checkpoint: Annotated[Optional[list[Path]], typer.Option(help="Run directory or checkpoint.pt to evaluate (repeatable).")] = None,
    results_root: Annotated[Path, typer.Option(help="Where to look for the most recent offsets sweep.")] = Path("results"),
    out: Annotated[Optional[Path], typer.Option(help="Output directory (default: ROBUSTNESS next to the sweep, or results/robustness).")] = None,
    examples: Annotated[int, typer.Option(help="Also save clean-vs-corrupted strips of N validation clips.")] = 0,
    list_kinds: Annotated[bool, typer.Option("--list", help="List every corruption with its severity range.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the per-clip random choices (blur angle, noise).")] = 0,
    data_root: DataRoot = None, val_list: ValList = None, categories: Categories = None, workers: Workers = None,
    device: Device = "auto",
):
    """Evaluate trained models on corrupted validation clips (the paper's occlusion / motion-blur protocol and more).

    By default every run of the most recent offsets sweep under results/ is evaluated; finished
    (model, kind, severity) cells are skipped on a re-run. Examples:

      selfy-lab corrupt --kind blur --severity 1-6

      selfy-lab corrupt --kind occlusion --kind blur --sweep results/ablate-offsets --examples 2
    """
    from ..corrupt import kinds as all_kinds
    from ..grammar import parse_int_list

    con = _console()
    table = all_kinds()
    if list_kinds:
        con.print(_table("corruptions", ["kind", "severities", "frames", "source"],
                         [[k.name, f"1-{k.severities}", "whole clip" if k.temporal else "chosen frames", k.source]
                          for k in table.values()]))
        return
    names = [n for spec in (kind or ["blur"]) for n in _comma(spec)]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SelfyError(f"unknown corruption '{unknown[0]}': see selfy-lab corrupt --list")
    hi = min(table[n].severities for n in names)
    try:
        levels = list(parse_int_list(severity, "severity", 1, hi)) if severity else list(range(1, hi + 1))
    except ValueError as e:
        which = ", ".join(f"{n} 1-{table[n].severities}" for n in names)
        raise SelfyError(f"{e} (valid range per kind: {which})") from None
    spec = frames_spec.strip().lower()
    if spec not in ("center", "centre", "all"):
        try:
            parse_int_list(spec, "frame", 1, 10**6)
        except ValueError as e:
            raise SelfyError(f"--frames: {e}; use center, all or numbers like 4,5") from None
    from .. import robustness as R

    models: list[Path] = []
    for s in sweep or []:
        models += R.sweep_models(s)
    for c in checkpoint or []:
        if not (c / "checkpoint.pt" if c.is_dir() else c).is_file():
            raise SelfyError(f"no checkpoint at {c}: pass a run directory or a checkpoint.pt file")
        models.append(c)
    if not models:
        models = R.find_sweep_models(results_root)
    if out is None:
        parents = {m.parent.parent for m in models if m.parent.name == "runs"}
        out = (parents.pop() / "robustness") if len(parents) == 1 else Path("results/robustness")
    # frame numbers must exist in every model's clips
    from ..corrupt import parse_frames
    from ..train import read_run_config

    for m in models:
        try:
            parse_frames(spec, read_run_config(m).model.frames)
        except ValueError as e:
            raise SelfyError(f"--frames {frames_spec}: {e}") from None
    con.print(f"{len(models)} model(s) x {len(names)} kind(s) x severities {levels} (+ clean) -> {out}")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    t0 = time.time()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=con, transient=True) as prog:
        task = prog.add_task("cells", total=None)

        def on_event(event, **kw):
            if event == "plan":
                prog.update(task, total=kw["total"])
            elif event == "cell":
                prog.advance(task)
                if not kw["skipped"]:
                    prog.update(task, description=f"{kw['run'].model.variant()['offsets']} {kw['kind']} s{kw['severity']}: "
                                                  f"top-1 {kw['top1']:.3f}")

        try:
            path = R.evaluate_robustness(models, names, levels, spec, out, seed, device, on_event)
        except KeyboardInterrupt:
            con.print(f"interrupted: re-run the same command to continue ({out})")
            raise typer.Exit(130)
    con.print(f"evaluated in {time.time() - t0:.0f} s; wrote {path} and {out / 'robustness_summary.csv'}")
    print_robustness_summary(con, out, names)
    if examples:
        _corruption_examples(con, models[0], names, levels, spec, seed, examples, out)


def print_robustness_summary(con, out: Path, names: list[str]) -> None:
    """Per kind: top-1 by severity (mean ± std over seeds) and mPC / rPC per variant; saves Fig. 5-style plots."""
    import pandas as pd

    from ..results import LADDER_ORDER
    from ..robustness import load_robustness
    from ..viz import robustness_figure, save_figure

    df = load_robustness(out)
    summ = pd.read_csv(out / "robustness_summary.csv", dtype={"offsets": str})
    for k in names:
        sub = df[(df["kind"] == k) & (df["metric"] == "top1")]
        if sub.empty:
            continue
        sevs = sorted(sub["severity"].unique())
        rows = []
        for (bb, off), g in sub.groupby(["backbone", "offsets"]):
            cells = []
            for s in sevs:
                v = 100 * g[g["severity"] == s]["value"]
                cells.append(f"{v.mean():.1f}" + (f" ± {v.std():.1f}" if len(v) > 1 else ""))
            sm = summ[(summ["kind"] == k) & (summ["backbone"] == bb) & (summ["offsets"] == off)]
            mpc = 100 * sm[sm["metric"] == "mPC"]["value"].mean()
            rpc = sm[sm["metric"] == "rPC"]["value"].mean()
            rows.append((LADDER_ORDER.index(off) if off in LADDER_ORDER else 99, [bb, off, *cells, f"{mpc:.1f}", f"{rpc:.3f}"]))
        con.print(_table(f"{k}: val top-1 (%) by severity, mean ± std over seeds", ["backbone", "offsets",
                         *[("clean" if s == 0 else f"s{s}") for s in sevs], "mPC", "rPC"], [r for _, r in sorted(rows)]))
        paths = save_figure(robustness_figure(df, k), out / "figures" / f"robustness_{k}")
        con.print(f"wrote {paths[0]} and {paths[1].name}")


def _corruption_examples(con, model_path: Path, names, levels, spec, seed, n, out: Path) -> None:
    from ..corrupt import parse_frames
    from ..data.datasets import build_dataset
    from ..robustness import CorruptedClips
    from ..train import read_run_config
    from ..viz import _plt, corruption_examples_figure

    run = read_run_config(model_path)
    base = build_dataset(run, "val")
    step = max(1, len(base) // n)
    for k in names:
        for i in range(n):
            idx = i * step
            clip, label = base[(idx, 0)]
            if clip.dim() == 5:
                clip = clip[0]
            frames = parse_frames(spec, run.model.frames)
            seed_i = CorruptedClips(base, k, 1, frames, seed).clip_seed(idx)
            fig = corruption_examples_figure(clip.permute(0, 2, 3, 1).numpy(), k, levels, frames, seed_i,
                                             f"{k}, clip {idx}: {base.class_names[label]}")
            path = out / "examples" / f"{k}_clip{idx}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110)
            _plt().close(fig)
    con.print(f"wrote {n * len(names)} example strip(s) to {out / 'examples'}")


