"""``selfy-lab``: each command parses its flags, builds a config and calls one library function."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .config import BLOCKS, EXTRACTORS, FUSIONS, INTEGRATORS, SIMILARITIES, ModelConfig
from .errors import SelfyError
from .grammar import format_offsets, parse_offsets, parse_window

app = typer.Typer(
    name="selfy-lab",
    help="Experiments of SELFY (spatio-temporal self-similarity for action recognition): "
    "models, FLOPs, benchmarks, training, ablations, robustness and visualisation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# ---- flags shared by every model command ----
Backbone = Annotated[Optional[str], typer.Option(
    help="tsn|tsm-r18|r34|r50, narrow CPU variants with -wN (e.g. tsn-r18-w16).", rich_help_panel="Model")]
Frames = Annotated[Optional[int], typer.Option(help="Frames per clip (paper: 8 or 16).", rich_help_panel="Model")]
Block = Annotated[Optional[str], typer.Option(
    help=f"Inserted block: {', '.join(BLOCKS)} (none = plain backbone).", rich_help_panel="Model")]
Offsets = Annotated[Optional[str], typer.Option(
    help="Temporal offsets: 0, 1, -2,0,2 or an inclusive range -3..3.", rich_help_panel="Model")]
Window = Annotated[Optional[str], typer.Option(help="Spatial window UxV, odd sides (e.g. 9x9).",
                                               rich_help_panel="Model")]
Extractor = Annotated[Optional[str], typer.Option(help=f"STSS feature extraction: {', '.join(EXTRACTORS)}.",
                                                  rich_help_panel="Model")]
Integrator = Annotated[Optional[str], typer.Option(help=f"Feature integration: {', '.join(INTEGRATORS)}.",
                                                   rich_help_panel="Model")]
Similarity = Annotated[Optional[str], typer.Option(help=f"Similarity: {', '.join(SIMILARITIES)}.",
                                                   rich_help_panel="Model")]
Fusion = Annotated[Optional[str], typer.Option(help=f"Output: {', '.join(FUSIONS)} (Table 7e).",
                                               rich_help_panel="Model")]
Position = Annotated[Optional[str], typer.Option(
    help="Where blocks go: pool1, res2, res3, res4, res5, or several joined by + (res2+res3+res4).",
    rich_help_panel="Model")]
Reduce = Annotated[Optional[int], typer.Option(
    help="STSS resolution reduction 1, 2 or 4 (0 = per position: 14x14 at 224 input, as the reference code).",
    rich_help_panel="Model")]

MODEL_FLAGS = ("backbone", "frames", "block", "offsets", "window", "extractor", "integrator", "similarity", "fusion",
               "position", "reduce")

# ---- flags shared by the commands that train or evaluate ----
Experiment = Annotated[Optional[Path], typer.Option(
    help="YAML experiment file (only the fields that differ from the defaults); flags override it.",
    rich_help_panel="Run")]
Preset = Annotated[Optional[str], typer.Option(
    help="smoke (seconds), quick (CPU default on the built-in benchmark), paper (SPEC §5 recipe). "
    "Default: quick on synthetic, paper otherwise.", rich_help_panel="Run")]
Dataset = Annotated[Optional[str], typer.Option(
    help="synthetic (built-in benchmark, default), something-v1, something-v2, diving48, gym99, gym288.",
    rich_help_panel="Data")]
DataRoot = Annotated[Optional[str], typer.Option(help="Dataset root; listed absolute paths keep their last component under it.",
                                                 rich_help_panel="Data")]
TrainList = Annotated[Optional[str], typer.Option(help="Training list file (<folder> <num_frames> <label>).",
                                                  rich_help_panel="Data")]
ValList = Annotated[Optional[str], typer.Option(help="Validation list file.", rich_help_panel="Data")]
Categories = Annotated[Optional[str], typer.Option(help="Class-name file, one per line.", rich_help_panel="Data")]
FrameTemplate = Annotated[Optional[str], typer.Option(help="Frame file names, e.g. {:05d}.jpg or img_{:05d}.jpg (1-based).",
                                                      rich_help_panel="Data")]
Flip = Annotated[Optional[str], typer.Option(
    help="Horizontal flips: none, skip (never flip direction classes), swap (flip and take the mirrored class).",
    rich_help_panel="Data")]
TestClips = Annotated[Optional[int], typer.Option(help="Clips averaged at test time (1 or 2).", rich_help_panel="Data")]
Workers = Annotated[Optional[int], typer.Option(help="Data-loading worker processes.", rich_help_panel="Data")]
Epochs = Annotated[Optional[int], typer.Option(help="Training epochs.", rich_help_panel="Run")]
BatchSize = Annotated[Optional[int], typer.Option(help="Clips per batch (over all processes).", rich_help_panel="Run")]
Lr = Annotated[Optional[float], typer.Option(help="Peak learning rate.", rich_help_panel="Run")]
Seed = Annotated[Optional[int], typer.Option(help="Random seed (data order, augmentation, init).", rich_help_panel="Run")]
Pretrained = Annotated[Optional[str], typer.Option(help="Backbone weights: none, imagenet, or a state-dict file.",
                                                   rich_help_panel="Model")]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.", rich_help_panel="Run")]

SECTION_OF = {
    **{k: "model" for k in MODEL_FLAGS}, "pretrained": "model",
    "dataset": "data", "data_root": "data", "train_list": "data", "val_list": "data", "categories": "data",
    "frame_template": "data", "flip": "data", "test_clips": "data", "workers": "data",
    "epochs": "train", "batch_size": "train", "lr": "train", "seed": "train",
}


def flag_overrides(flags: dict[str, Any]) -> dict[str, Any]:
    """Non-empty flags as a nested override dict (model / data / train)."""
    out: dict[str, Any] = {}
    for k, v in flags.items():
        if k in SECTION_OF and v is not None:
            out.setdefault(SECTION_OF[k], {})[k] = v
    return out


def run_from_flags(flags: dict[str, Any], experiment_name: str = ""):
    """RunConfig from an optional experiment file and the flags (flags win)."""
    from .experiments import Experiment as Exp, build_run, default_preset, load_experiment, merge_overrides

    exp = load_experiment(flags["experiment"]) if flags.get("experiment") else Exp()
    dataset = flags.get("dataset") or exp.dataset
    preset = flags.get("preset") or exp.preset or default_preset(dataset)
    exp_overrides, exp.sweep = exp.for_preset(preset)
    overrides = merge_overrides(exp_overrides, flag_overrides(flags))
    return build_run(preset, dataset, overrides, experiment_name or exp.name), exp


def model_config(base: ModelConfig, flags: dict[str, Any]) -> ModelConfig:
    """Apply the non-empty model flags to ``base``; invalid values become one-line errors."""
    changes = {k: v for k, v in flags.items() if k in MODEL_FLAGS and v is not None}
    try:
        if "offsets" in changes:
            changes["offsets"] = parse_offsets(changes["offsets"])
        if "window" in changes:
            changes["window"] = parse_window(changes["window"])
        return replace(base, **changes)
    except ValueError as e:
        raise SelfyError(str(e)) from None


def _console():
    import shutil

    from rich.console import Console

    # piped output (logs, CI) gets a wide table instead of rich's 80-column fallback
    return Console(width=shutil.get_terminal_size((140, 24)).columns)


def _table(title: str, columns: list[str], rows: list[list[str]]):
    from rich.table import Table

    t = Table(title=title, title_justify="left")

    def numeric(v: str) -> bool:
        try:
            float(v.rstrip("%").replace("±", "").split()[0])
            return True
        except (ValueError, IndexError):
            return False

    for i, c in enumerate(columns):
        t.add_column(c, justify="right" if rows and all(numeric(r[i]) for r in rows) else "left")
    for r in rows:
        t.add_row(*r)
    return t


@app.command()
def flops(
    paper: Annotated[bool, typer.Option("--paper", help="Compute every FLOPs row of the paper (SPEC §8) beside its value.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="With --paper: write OUT/paper_table.csv.")] = None,
    size: Annotated[int, typer.Option(help="Input side in pixels.")] = 224,
    backbone: Backbone = None, frames: Frames = None, block: Block = None, offsets: Offsets = None,
    window: Window = None, extractor: Extractor = None, integrator: Integrator = None,
    similarity: Similarity = None, fusion: Fusion = None, position: Position = None, reduce: Reduce = None,
):
    """Multiply-accumulates per clip (the papers' "GFLOPs") and parameters of a configuration.

    Defaults are the paper's SELFYNet-TSM-R18 (res3, offsets -2..2, 9x9). Examples:

      selfy-lab flops --backbone tsn-r18 --offsets -3..3

      selfy-lab flops --paper --out results/flops
    """
    from .flops import model_cost, paper_table

    con = _console()
    if paper:
        rows = paper_table(size)
        con.print(_table(
            f"FLOPs per clip at {size}x{size} (multiply-accumulates), ours vs the paper",
            ["model", "backbone", "frames", "offsets", "window", "paper G", "ours G", "diff", "params M"],
            [[r["model"], r["backbone"], str(r["frames"]), r["offsets"], r["window"], f"{r['paper_gflops']:.1f}",
              f"{r['gflops']:.2f}", f"{r['rel_diff'] * 100:+.1f}%", f"{r['params_m']:.2f}"] for r in rows]))
        worst = max(abs(r["rel_diff"]) for r in rows)
        con.print(f"largest |difference|: {worst * 100:.1f}% over {len(rows)} rows")
        if out:
            from .results import write_csv

            cols = ["model", "backbone", "frames", "offsets", "window", "paper_gflops", "gflops", "rel_diff", "params_m"]
            path = write_csv(Path(out) / "paper_table.csv", rows, cols)
            con.print(f"wrote {path}")
        return
    cfg = model_config(ModelConfig(), locals())
    cost = model_cost(cfg, size)
    base = model_cost(replace(cfg, block="none"), size)
    v = cfg.variant()
    desc = cfg.backbone + (f" + {cfg.block} at {v['position']} offsets {format_offsets(cfg.offsets)} window {v['window']}"
                           f" {cfg.extractor}/{cfg.integrator}" if cfg.block != "none" else "")
    con.print(f"{desc}, {cfg.frames} frames at {size}x{size}")
    con.print(f"  {cost['gflops']:.2f} GFLOPs (multiply-accumulates) per clip, {cost['params_m']:.2f} M parameters")
    if cfg.block != "none":
        con.print(f"  backbone alone: {base['gflops']:.2f} GFLOPs, {base['params_m']:.2f} M parameters "
                  f"(+{cost['gflops'] - base['gflops']:.2f} G, x{cost['gflops'] / base['gflops']:.3f})")


@app.command()
def bench(
    out: Annotated[Path, typer.Option(help="Directory for bench.csv (tidy rows).")] = Path("results/bench"),
    device: Annotated[str, typer.Option(help="cpu, cuda or auto (cuda when present).")] = "auto",
    only: Annotated[str, typer.Option(help="Comma list of parts: stss, step, memory.")] = "stss,step,memory",
    sizes: Annotated[str, typer.Option(help="STSS map sizes (comma list).")] = "14,28,56",
    repeats: Annotated[int, typer.Option(help="Timed repeats per measurement (after one warm-up).")] = 5,
    channels_last: Annotated[bool, typer.Option(help="Run both models channels-last in the step benchmark.")] = True,
):
    """Speed and memory of the STSS and of a SELFYNet training step, as ratios measured side by side.

    (a) STSS forward+backward (8 frames, C=128, -2..2, 9x9) vs the reference code's global-matmul path
    and an F.unfold version; (b) SELFYNet-TSM-R18 vs TSM-R18 training step on one 8x3x224x224 clip,
    interleaved, median; (c) memory of those steps.
    """
    import torch
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from . import bench as B
    from .results import provenance, write_csv

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise SelfyError("--device cuda asked for, but torch sees no CUDA device: use --device cpu")
    if dev not in ("cpu",) and not dev.startswith("cuda"):
        raise SelfyError(f"unknown device '{device}': use cpu, cuda or auto")
    parts = [p.strip() for p in only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in ("stss", "step", "memory")]
    if unknown or not parts:
        raise SelfyError(f"unknown bench part '{unknown[0] if unknown else only}': use stss, step, memory")
    try:
        size_list = tuple(int(s) for s in sizes.split(","))
    except ValueError:
        raise SelfyError(f"--sizes '{sizes}' must be a comma list of integers, e.g. 14,28,56") from None
    if repeats < 1:
        raise SelfyError("--repeats must be at least 1")
    rows: list[dict] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as prog:
        task = prog.add_task("bench", total=None)

        def say(s):
            prog.update(task, description=s)

        if "stss" in parts:
            rows += B.bench_stss(size_list, dev, min(repeats, 3), progress=say)
        if "step" in parts:
            rows += B.bench_step(dev, repeats, channels_last, progress=say)
        if "memory" in parts:
            rows += B.bench_memory(dev, channels_last, progress=say)
    dev_name = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else f"cpu x{torch.get_num_threads()} threads"
    prov = provenance()
    rows = [{**r, "device": dev_name, "torch": torch.__version__, **prov} for r in rows]
    con = _console()
    con.print(_table(f"bench on {dev_name}", ["benchmark", "impl", "size", "metric", "value"],
                     [[r["benchmark"], r["impl"], str(r["size"]), r["metric"], f"{r['value']:.4g}"] for r in rows]))
    path = write_csv(Path(out) / "bench.csv", rows)
    con.print(f"wrote {path}")


class RunDisplay:
    """Renders ``fit()`` callbacks: a bar per epoch with loss / accuracy / ETA, one line per finished epoch."""

    def __init__(self, console, label: str = ""):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.con, self.label = console, label
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=console, transient=True)
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task(self.label or "preparing", total=None, info="")
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def __call__(self, event: str, **kw) -> None:
        p, t, pre = self.progress, self.task, f"{self.label} " if self.label else ""
        if event == "data":
            p.update(t, description=f"{pre}{kw['message']}")
        elif event == "resume":
            p.console.print(f"{pre}resuming after epoch {kw['epoch']} (checkpoint found)")
        elif event == "weights":
            p.console.print(f"{pre}loaded {kw['loaded']} backbone tensors from {kw['source']}; "
                            f"{len(kw['new'])} new parameter tensors (blocks, head)")
        elif event == "epoch_start":
            p.reset(t, total=kw["steps"], description=f"{pre}epoch {kw['epoch'] + 1}/{kw['epochs']}", info="")
        elif event == "step":
            p.update(t, completed=kw["step"], info=f"loss {kw['loss']:.3f} acc {kw['acc']:.3f}")
        elif event == "eval_start":
            p.reset(t, total=None, description=f"{pre}validating", info="")
        elif event == "eval_step":
            p.update(t, completed=kw["step"], total=kw["total"])
        elif event == "epoch_end":
            m = kw["metrics"]
            val = f" | val top-1 {m['top1']:.3f} top-5 {m['top5']:.3f}" if m else ""
            p.console.print(f"{pre}epoch {kw['epoch'] + 1}/{kw['epochs']}: train loss {kw['train_loss']:.3f} "
                            f"top-1 {kw['train_top1']:.3f} ({kw['train_seconds']:.0f} s){val}")
        elif event == "finished":
            p.console.print(f"{pre}already finished in {kw['run_dir']}")


def _metrics_table(title: str, metrics: dict[str, float]):
    return _table(title, ["metric", "value"], [[k, f"{v:.4f}"] for k, v in metrics.items()])


def default_run_dir(run) -> Path:
    return Path("runs") / (run.experiment or "train") / run.run_hash


@app.command()
def train(
    experiment: Experiment = None, preset: Preset = None, out: Annotated[Optional[Path], typer.Option(
        help="Run directory (default runs/<experiment>/<config hash>). Re-running resumes from its checkpoint.",
        rich_help_panel="Run")] = None,
    dataset: Dataset = None, data_root: DataRoot = None, train_list: TrainList = None, val_list: ValList = None,
    categories: Categories = None, frame_template: FrameTemplate = None, flip: Flip = None,
    test_clips: TestClips = None, workers: Workers = None,
    backbone: Backbone = None, frames: Frames = None, block: Block = None, offsets: Offsets = None,
    window: Window = None, extractor: Extractor = None, integrator: Integrator = None,
    similarity: Similarity = None, fusion: Fusion = None, position: Position = None, reduce: Reduce = None,
    pretrained: Pretrained = None,
    epochs: Epochs = None, batch_size: BatchSize = None, lr: Lr = None, seed: Seed = None,
    device: Device = "auto",
):
    """Train one model; writes config.yaml, checkpoint.pt (every epoch), history.csv and metrics.csv.

    Examples:

      selfy-lab train --preset quick --offsets -3..3          # built-in benchmark, CPU minutes

      selfy-lab train --dataset something-v1 --data-root /data/ssv1 --backbone tsm-r50

    Interrupt it at any time: re-running the same command resumes after the last finished epoch.
    Multi-GPU / multi-node: torchrun --nproc-per-node N -m selfy_lab.cli train ...
    """
    from .train import fit

    run, _ = run_from_flags(locals())
    run_dir = out or default_run_dir(run)
    con = _console()
    con.print(f"run {run.run_hash}: {run.model.backbone} block={run.model.block} offsets={run.model.variant()['offsets']} "
              f"on {run.data.dataset} ({run.preset} preset, {run.train.epochs} epochs) -> {run_dir}")
    try:
        with RunDisplay(con) as display:
            metrics = fit(run, run_dir, display, device)
    except KeyboardInterrupt:
        con.print(f"interrupted: re-run the same command to resume from the last checkpoint in {run_dir}")
        raise typer.Exit(130)
    if int(os.environ.get("RANK", "0")) == 0:
        con.print(_metrics_table(f"validation ({run_dir})", metrics))


@app.command("eval")
def evaluate_cmd(
    run_path: Annotated[Path, typer.Argument(help="Run directory or checkpoint.pt file.")],
    data_root: DataRoot = None, val_list: ValList = None, categories: Categories = None,
    frame_template: FrameTemplate = None, test_clips: TestClips = None, workers: Workers = None,
    out: Annotated[Optional[Path], typer.Option(help="CSV for the tidy rows (default RUN/eval.csv).")] = None,
    device: Device = "auto",
):
    """Evaluate a trained model on its dataset's validation split (optionally re-rooted, 1 or 2 clips)."""
    from dataclasses import replace as dc_replace

    from .results import RUN_COLUMNS, append_rows, provenance
    from .train import evaluate, load_run

    run, model = load_run(run_path, device)
    changes = {k: v for k, v in dict(data_root=data_root, val_list=val_list, categories=categories,
                                     frame_template=frame_template, test_clips=test_clips, workers=workers).items()
               if v is not None}
    try:
        run = dc_replace(run, data=dc_replace(run.data, **changes))
    except ValueError as e:
        raise SelfyError(str(e)) from None
    con = _console()
    with RunDisplay(con, "eval") as display:
        metrics = evaluate(run, model, callback=display)
    con.print(_metrics_table(f"validation of {run_path} ({run.data.test_clips} clip(s))", metrics))
    from .flops import model_cost

    cost = model_cost(run.model, run.data.size)
    base = {"experiment": "eval", "run_id": run.run_hash, **run.model.variant(), "gflops": cost["gflops"],
            "params_m": cost["params_m"], "seed": run.train.seed, "split": "val", **provenance(run.run_hash)}
    rows = [{**base, "metric": k, "value": v, "test_clips": run.data.test_clips} for k, v in metrics.items()]
    run_dir = run_path if run_path.is_dir() else run_path.parent
    path = append_rows(out or run_dir / "eval.csv", rows, key=("run_id", "metric", "test_clips"),
                       columns=[*RUN_COLUMNS, "test_clips"])
    con.print(f"wrote {path}")


@app.command()
def describe(
    dataset: Dataset = None, data_root: DataRoot = None, categories: Categories = None,
    out: Annotated[Optional[Path], typer.Option(help="Write a PNG with one clip per class (built-in benchmark).")] = None,
    index: Annotated[int, typer.Option(help="Which clip of each class to show (0, 1, ...).")] = 0,
    frames: Frames = None, size: Annotated[Optional[int], typer.Option(help="Frame side (built-in benchmark).")] = None,
):
    """List a dataset's classes (pairs, flip mirrors) and, for the built-in benchmark, show a clip per class."""
    from .data.flip import mirror_pairs

    con = _console()
    ds = dataset or "synthetic"
    if ds == "synthetic":
        from .data import synthetic as syn

        pairs = mirror_pairs(list(syn.CLASS_NAMES))
        con.print(_table("built-in motion benchmark (synthetic)", ["label", "class", "pair", "kind", "flip ->"],
                         [[str(i), c.name, c.pair, c.kind, str(pairs.get(i, "-"))] for i, c in enumerate(syn.CLASSES)]))
        con.print("reverse pairs: a clip played backwards is a clip of the partner class; a frame-order-blind "
                  "model (TSN) is at chance within them.")
        if out:
            from .viz import synthetic_gallery

            path = synthetic_gallery(Path(out) / "synthetic_classes.png", index=index, frames=frames or 8, size=size or 64)
            con.print(f"wrote {path}")
        return
    from .data.datasets import resolve_paths
    from .data.lists import read_categories
    from .config import DataConfig

    try:
        cfg = DataConfig(dataset=ds, data_root=data_root or "", categories=categories or "")
    except ValueError as e:
        raise SelfyError(str(e)) from None
    names = read_categories(resolve_paths(cfg, ("categories",))["categories"])
    pairs = mirror_pairs(names)
    con.print(_table(f"{ds}: {len(names)} classes", ["label", "class", "flip ->"],
                     [[str(i), n, str(pairs.get(i, "-"))] for i, n in enumerate(names)]))
    con.print(f"direction classes (never flipped under 'skip', swapped under 'swap'): {sorted(pairs)}")


def _comma(value: Optional[str]) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


class SweepDisplay:
    """Sweep progress: runs done / total, and the current run's epochs (one job) or the queue (several)."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.con = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=True)
        self.sweep = self.run = None

    def __enter__(self):
        self.progress.__enter__()
        self.sweep = self.progress.add_task("runs", total=None, info="")
        self.run = self.progress.add_task("", total=None, info="", visible=False)
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def __call__(self, event: str, **kw) -> None:
        p = self.progress
        if event == "plan":
            p.update(self.sweep, total=kw["total"], completed=kw["done"], description="runs done")
            if kw["done"]:
                p.console.print(f"{kw['done']} of {kw['total']} runs already finished: skipped")
        elif event == "run_start":
            p.update(self.run, visible=True, description=kw["run"].label, completed=0, total=None, info="")
        elif event == "run_progress":
            ev = kw["kind"]
            if ev == "epoch_start":
                p.update(self.run, total=kw["steps"], completed=0, info=f"epoch {kw['epoch'] + 1}/{kw['epochs']}")
            elif ev == "step":
                p.update(self.run, completed=kw["step"], info=f"epoch {kw['epoch'] + 1} loss {kw['loss']:.3f} acc {kw['acc']:.3f}")
            elif ev == "eval_start":
                p.update(self.run, info="validating")
            elif ev == "resume":
                p.console.print(f"{kw['run'].label}: resuming after epoch {kw['epoch']}")
        elif event == "run_end":
            row = kw["row"]
            p.advance(self.sweep)
            mark = "done" if row["status"] == "done" else f"FAILED: {row['error']}"
            p.console.print(f"{kw['run'].label}: {mark} ({row['seconds']} s)")


def print_sweep_summary(con, out: Path, paper_table: str = "") -> None:
    """The sweep's table in the paper's layout and its accuracy-vs-temporal-range figure."""
    from .results import load_runs, paper_column, summarize

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
        from .paper import TABLES
        from .viz import save_figure, temporal_range_figure

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
    from . import ablate as A

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
    from .corrupt import kinds as all_kinds
    from .grammar import parse_int_list

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
    from . import robustness as R

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
    from .corrupt import parse_frames
    from .train import read_run_config

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

    from .results import LADDER_ORDER
    from .robustness import load_robustness
    from .viz import robustness_figure, save_figure

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
    from .corrupt import parse_frames
    from .data.datasets import build_dataset
    from .robustness import CorruptedClips
    from .train import read_run_config
    from .viz import _plt, corruption_examples_figure

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


def _sweep_pair(results_root: Path) -> list[Path]:
    """The paper's Fig. 7 pair from the most recent offsets sweep: {1} and the widest range, seed 0."""
    from .explain import paper_pair
    from .robustness import find_sweep_models

    pair = paper_pair(find_sweep_models(results_root))
    if len(pair) < 2:
        raise SelfyError(f"the most recent offsets sweep under {results_root} lacks the {{1}} or a range run: pass --checkpoint twice")
    return pair


@app.command()
def cam(
    checkpoint: Annotated[Optional[list[Path]], typer.Option(
        help="Run directory or checkpoint (repeatable: models side by side). Default: the {1} and the widest-range "
        "run of the most recent offsets sweep under --results-root (the paper's Fig. 7).")] = None,
    clip: Annotated[Optional[list[int]], typer.Option(help="Validation clip index (repeatable).")] = None,
    class_: Annotated[Optional[str], typer.Option("--class", help="Show clips of this class (name or label id).")] = None,
    disagree: Annotated[bool, typer.Option("--disagree", help="Show clips where the models' predictions differ.")] = False,
    count: Annotated[int, typer.Option(help="How many clips with --class / --disagree.")] = 2,
    method: Annotated[str, typer.Option(help="CAM method of pytorch-grad-cam: gradcam, gradcam++, xgradcam, hirescam, "
                                        "layercam, eigencam, eigengradcam, gradcamelementwise.")] = "gradcam",
    layer: Annotated[str, typer.Option(help="Feature map: res5 (before global pooling, the paper), res4, res3, res2.")] = "res5",
    results_root: Annotated[Path, typer.Option(help="Where the default models' sweep is looked for.")] = Path("results"),
    out: Annotated[Path, typer.Option(help="Directory for the PNGs.")] = Path("results/cam"),
    data_root: DataRoot = None, val_list: ValList = None, categories: Categories = None,
    device: Device = "auto",
):
    """Per-frame Grad-CAM of trained models on validation clips, overlaid on the frames, models side by side.

    Each row is titled with the model's prediction, green if correct, red if wrong. Example:

      selfy-lab cam --disagree --count 3          # {1} vs -3..3 of the latest offsets sweep
    """
    from dataclasses import replace as dc_replace

    from .data.datasets import build_dataset
    from .explain import CAM_METHODS, compare_cams, model_label
    from .train import load_run
    from .viz import _plt, cam_figure

    if method not in CAM_METHODS:
        raise SelfyError(f"unknown CAM method '{method}': choose from {', '.join(CAM_METHODS)}")
    if layer not in ("res2", "res3", "res4", "res5"):
        raise SelfyError(f"unknown CAM layer '{layer}': choose from res2, res3, res4, res5")
    paths = list(checkpoint or []) or _sweep_pair(results_root)
    loaded = [load_run(p, device) for p in paths]
    run0 = loaded[0][0]
    changes = {k: v for k, v in dict(data_root=data_root, val_list=val_list, categories=categories).items() if v}
    ds = build_dataset(dc_replace(run0, data=dc_replace(run0.data, **changes, test_clips=1)), "val")
    if any(r.model.frames != run0.model.frames or r.data.size != run0.data.size for r, _ in loaded):
        raise SelfyError("the models differ in frames or input size: compare models trained on the same clips")
    labels = [model_label(r) for r, _ in loaded]
    if len(set(labels)) < len(labels):
        labels = [f"{lab} [{p.name}]" for lab, p in zip(labels, paths)]
    class_id = None
    if class_ is not None:
        names = ds.class_names
        class_id = int(class_) if class_.isdigit() else next((i for i, n in enumerate(names) if n.lower() == class_.lower()), None)
        if class_id is None or not 0 <= class_id < len(names):
            raise SelfyError(f"unknown class '{class_}': give a label id or a name of the dataset's classes")
    bad = [c for c in (clip or []) if not 0 <= c < len(ds)]
    if bad:
        raise SelfyError(f"--clip {bad[0]} is out of range: the validation set has {len(ds)} clips")
    want_disagree = disagree or (len(loaded) > 1 and class_id is None and not clip)
    results = compare_cams(list(zip(labels, [m for _, m in loaded])), ds, clip, class_id, want_disagree, count,
                           method, layer)
    if not results:
        raise SelfyError("no validation clip matches (the models agree everywhere?): pass --clip N")
    con = _console()
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        fig = cam_figure(r["frames"], r["rows"], f"clip {r['index']}: {r['label']}  ({method} at {layer}, normalised per clip)")
        path = out / f"cam_clip{r['index']}.png"
        fig.savefig(path, dpi=120)
        _plt().close(fig)
        con.print(f"wrote {path}: " + "; ".join(f"{x['label']} -> {x['pred']} ({'correct' if x['correct'] else 'wrong'})"
                                                for x in r["rows"]))


@app.command("stss")
def stss_cmd(
    out: Annotated[Path, typer.Option(help="Directory for the PNGs.")] = Path("results/stss"),
    checkpoint: Annotated[Optional[Path], typer.Option(help="Trained model: show the STSS at its SELFY block. "
                                                       "Default: raw pixels of a built-in benchmark clip.")] = None,
    clip: Annotated[int, typer.Option(help="Validation clip index.")] = 0,
    query: Annotated[Optional[str], typer.Option(help="Query t,y,x in STSS cells (default: centre frame, most moving cell).")] = None,
    offsets: Offsets = None, window: Window = None,
    cell: Annotated[int, typer.Option(help="Raw pixels: average cell x cell blocks first.")] = 4,
    frames: Frames = None, size: Annotated[int, typer.Option(help="Raw pixels: frame side of the built-in clip.")] = 64,
    device: Device = "auto",
):
    """Render STSS maps for a clip: the U x V similarities of a query per offset, the soft-argmax
    displacement field, and the motion likelihood across offsets.

      selfy-lab stss --out results/stss                         # a built-in clip, raw pixels

      selfy-lab stss --checkpoint results/ablate-offsets/runs/<id> --clip 5 --query 3,4,4
    """
    from .explain import stss_from_model, stss_from_pixels
    from .grammar import parse_offsets, parse_window
    from .viz import _plt, default_query, stss_flow_figure, stss_likelihood_figure, stss_query_figure

    try:
        offs = parse_offsets(offsets) if offsets else (-3, -2, -1, 0, 1, 2, 3)
        win = parse_window(window) if window else (5, 5)
    except ValueError as e:
        raise SelfyError(str(e)) from None
    if checkpoint is not None:
        from .data.datasets import build_dataset
        from .train import load_run

        if offsets or window:
            raise SelfyError("--offsets / --window apply to raw pixels; a model's STSS uses the model's own")
        run, model = load_run(checkpoint, device)
        ds = build_dataset(run, "val")
        if not 0 <= clip < len(ds):
            raise SelfyError(f"--clip {clip} is out of range: the validation set has {len(ds)} clips")
        x, y = ds[(clip, 0)]
        x = x[0] if x.dim() == 5 else x
        try:
            st = stss_from_model(model, x)
        except ValueError as e:
            raise SelfyError(str(e)) from None
        name = ds.class_names[y]
    else:
        from .data import synthetic as syn

        T = frames or 8
        if max(abs(o) for o in offs) >= T:
            raise SelfyError(f"offsets reach beyond a {T}-frame clip")
        arr, y = syn.render_clip(0, "val", clip, T, size)
        x = torch_from_numpy_clip(arr)
        st = stss_from_pixels(x, offs, win, cell)
        name = syn.CLASS_NAMES[y]
    T = st["S"].shape[0]
    h, w = st["size"]
    if query:
        try:
            q = tuple(int(v) for v in query.split(","))
            assert len(q) == 3
        except (ValueError, AssertionError):
            raise SelfyError(f"--query '{query}' must be t,y,x (integers)") from None
        if not (0 <= q[0] < T and 0 <= q[1] < h and 0 <= q[2] < w):
            raise SelfyError(f"--query {query} is outside the STSS: t < {T}, y < {h}, x < {w}")
    else:
        q = default_query(st)
    frames_np = x.permute(0, 2, 3, 1).numpy()
    out.mkdir(parents=True, exist_ok=True)
    con = _console()
    for stem, fig in (("stss_query", stss_query_figure(frames_np, st, q)), ("stss_flow", stss_flow_figure(frames_np, st, q[0])),
                      ("stss_likelihood", stss_likelihood_figure(frames_np, st, q))):
        path = out / f"{stem}.png"
        fig.savefig(path, dpi=120)
        _plt().close(fig)
        con.print(f"wrote {path}")
    con.print(f"clip {clip} ({name}), {st['source']}, query t,y,x = {q[0]},{q[1]},{q[2]}")


def torch_from_numpy_clip(arr):
    import torch

    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()  # (T, H, W, 3) -> (T, C, H, W)


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Directory for the HTML pages.")] = Path("results/report"),
    results_root: Annotated[Path, typer.Option(help="Results the notebooks read.")] = Path("results"),
    notebooks: Annotated[Path, typer.Option(help="Notebook directory.")] = Path("notebooks"),
    only: Annotated[Optional[str], typer.Option(help="Comma list of notebook names (default: all).")] = None,
    timeout: Annotated[int, typer.Option(help="Seconds per notebook cell.")] = 900,
):
    """Execute the notebooks against RESULTS_ROOT and write them as HTML, to share results without Jupyter."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    books = sorted(notebooks.glob("*.ipynb"))
    if only:
        wanted = set(_comma(only))
        missing = wanted - {b.stem for b in books}
        if missing:
            raise SelfyError(f"no notebook named {sorted(missing)[0]} in {notebooks}")
        books = [b for b in books if b.stem in wanted]
    if not books:
        raise SelfyError(f"no notebooks in {notebooks}: run from the repository root or pass --notebooks")
    if not results_root.is_dir():
        raise SelfyError(f"results directory {results_root} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    os.environ["SELFY_LAB_RESULTS"] = str(results_root.resolve())
    os.environ.pop("MPLBACKEND", None)  # the kernels' inline backend puts the figures in the pages
    con = _console()
    for book in books:
        nb = nbformat.read(book, as_version=4)
        t0 = time.time()
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(book.parent.resolve())}}).execute()
        except CellExecutionError as e:
            raise SelfyError(f"{book.name} failed: {str(e).strip().splitlines()[-1][:200]}") from None
        html, _ = HTMLExporter().from_notebook_node(nb)
        path = out / f"{book.stem}.html"
        path.write_text(html)
        con.print(f"wrote {path} ({time.time() - t0:.0f} s)")


def main() -> None:
    """Console entry point: user errors print one line and exit with status 2."""
    try:
        app()
    except SelfyError as e:
        from .errors import user_message

        print(f"error: {user_message(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
