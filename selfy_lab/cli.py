"""``selfy-lab``: each command parses its flags, builds a config and calls one library function."""
from __future__ import annotations

import os
import sys
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
    import yaml

    from . import ablate as A
    from .results import atomic_write_text

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
    atomic_write_text(out / "sweep.yaml", yaml.safe_dump(A.sweep_record(run, runs, axes, sets, seed_list), sort_keys=False))
    try:
        with SweepDisplay(con) as display:
            status = A.run_sweep(runs, out, jobs, device, display, name)
    except KeyboardInterrupt:
        con.print(f"interrupted: re-run the same command to skip finished runs and resume the rest ({out})")
        raise typer.Exit(130)
    print_sweep_summary(con, out, exp.paper_table)
    failed = [s for s in status if s["status"] == "failed"]
    con.print(f"wrote {out / 'runs.csv'} and {out / 'status.csv'}")
    if failed:
        con.print(f"{len(failed)} of {len(status)} runs failed: see {out / 'status.csv'} and runs/<id>/error.txt")
        raise typer.Exit(1)


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
