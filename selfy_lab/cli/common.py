"""Shared pieces of the command line: the app, the flags every model command takes (named like the config
fields they set), edge checks of numeric flags, tables and progress displays."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)
from rich.table import Table

from ..config.grammar import parse_list
from ..config.vocabulary import AUX_LOSSES, BLOCKS, EXTRACTORS, FUSIONS, HIERARCHIES, INTEGRATORS, SIMILARITIES
from ..core.errors import SelfyError

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
    help=f"Inserted block: {', '.join(BLOCKS)} (none = plain backbone), or your own module as "
    "PACKAGE.MODULE:CLASS, built as CLASS(channels=C, frames=T) and called on (B*T, C, H, W).",
    rich_help_panel="Model")]
BlockOptions = Annotated[Optional[str], typer.Option(
    help="Named options of a motion module or your own module, NAME=VALUE joined by commas (e.g. "
    "subsample=false for nonlocal, shrink=1 for cp); the defaults follow each module's authors.",
    rich_help_panel="Model")]
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
    help="Where blocks go: pool1, res2, res3, res4, res5, or several joined by + (res2+res3+res4). Motion modules "
    "also take STAGE:every, one module inside every residual block of the stage (STM/TEA/TANet's placement).",
    rich_help_panel="Model")]
Reduce = Annotated[Optional[int], typer.Option(
    help="STSS resolution reduction 1, 2 or 4 (0 = per position: 14x14 at 224 input, as the reference code).",
    rich_help_panel="Model")]
StssMemory = Annotated[Optional[str], typer.Option(
    help="A SELFY block's STSS volume and its extraction: save (kept for the backward pass), recompute (rebuilt "
    "there: same results, less memory, more time) or auto (recompute for large volumes, the default).",
    rich_help_panel="Model")]

Hierarchy = Annotated[Optional[str], typer.Option(
    help=f"Motion hierarchy of hierarchical contrastive motion learning: {', '.join(HIERARCHIES)} (diff = "
    "frame-difference encoders, selfy = SELFY's STSS branch); --aux hcml adds diff unless this names one.",
    rich_help_panel="Model")]
HierarchyLevels = Annotated[Optional[str], typer.Option(
    help="Stages the hierarchy attaches to, joined by + (default res2+res3+res4); each predicts the stage before it.",
    rich_help_panel="Model")]

HcmlTarget = Annotated[Optional[str], typer.Option(
    help="What each motion level predicts: motion (the level below's motion features at a future frame, the "
    "paper's objective) or backbone (the stage before's output).", rich_help_panel="Model")]
HcmlPredictor = Annotated[Optional[str], typer.Option(
    help="The predictor's input: motion (the level's motion features) or motion+appearance (also the stage's "
    "output, a shortcut the paper's objective does not have).", rich_help_panel="Model")]
HcmlTau = Annotated[Optional[float], typer.Option(help="Temperature of the contrastive loss (default 0.1).",
                                                  rich_help_panel="Model")]
HcmlDelta = Annotated[Optional[int], typer.Option(help="Frames ahead that each level predicts (default 1).",
                                                  rich_help_panel="Model")]
HcmlAllowLeak = Annotated[Optional[bool], typer.Option(
    "--hcml-allow-leak/--no-hcml-allow-leak", help="Train the contrastive objective on a backbone that already "
    "shows a level the future it predicts (TSM, a block with later frames before a level); refused otherwise.",
    rich_help_panel="Model")]

# ---- flags shared by the commands that train or evaluate ----
Experiment = Annotated[Optional[Path], typer.Option(
    help="YAML experiment file (only the fields that differ from the defaults); flags override it.",
    rich_help_panel="Run")]
Preset = Annotated[Optional[str], typer.Option(
    help="smoke (seconds), quick (CPU default on the built-in benchmark), paper (the paper's recipe, Appendix A). "
    "Default: quick on synthetic, paper otherwise.", rich_help_panel="Run")]
Dataset = Annotated[Optional[str], typer.Option(
    help="synthetic (built-in benchmark, default), something-v1, something-v2, diving48, gym99, gym288, kinetics400, "
    "kinetics600, kinetics700 (the official CSVs), custom (your own lists and categories file, which sets the class "
    "count), or videos (pretrain only: every video file and frame folder under --data-root, no list, no labels).",
    rich_help_panel="Data")]
DataRoot = Annotated[Optional[str], typer.Option(help="Dataset root; listed absolute paths keep their last component under it.",
                                                 rich_help_panel="Data")]
TrainList = Annotated[Optional[str], typer.Option(
    help="Training clips: a TSN list, a two-column video list, or the SS-V2 / Diving-48 JSON (see --list-format).",
    rich_help_panel="Data")]
ValList = Annotated[Optional[str], typer.Option(help="Validation clips, in any format --train-list takes.",
                                                rich_help_panel="Data")]
TestList = Annotated[Optional[str], typer.Option(
    help="A labelled test list (Diving-48, FineGym), in any format --train-list takes: scored once after the last "
    "epoch as the 'test' split, which reported tables read and nothing chooses on. The built-in benchmark has its "
    "own; Something-Something publishes none with labels (report validation, as the paper does).",
    rich_help_panel="Data")]
AllowDirty = Annotated[bool, typer.Option(
    "--allow-dirty", help="Write results although the package's code has uncommitted changes (each run stores the "
    "diff as source.diff). Without it such a checkout stops before any work, so that every result names a commit.",
    rich_help_panel="Run")]
Categories = Annotated[Optional[str], typer.Option(
    help="Class names: a file with one per line, Something-Something V2's labels.json or Diving-48's vocabulary JSON.",
    rich_help_panel="Data")]
ListFormat = Annotated[Optional[str], typer.Option(
    help="Format of --train-list / --val-list: auto (told from the file), tsn (<folder> <frames> <label>), "
    "two-column (<video> <label>: MMAction2, FineGym), ssv2-json, diving48-json, kinetics-csv (the official "
    "Kinetics CSVs).", rich_help_panel="Data")]
FrameTemplate = Annotated[Optional[str], typer.Option(help="Frame file names, e.g. {:05d}.jpg or img_{:05d}.jpg (1-based).",
                                                      rich_help_panel="Data")]
Flip = Annotated[Optional[str], typer.Option(
    help="Horizontal flips: none, skip (never flip direction classes), swap (flip and take the mirrored class).",
    rich_help_panel="Data")]
TestClips = Annotated[Optional[int], typer.Option(
    "--clips", "--test-clips", help="Clips averaged at test time (1 or 2; the built-in benchmark has one).",
    rich_help_panel="Data")]
TestCrops = Annotated[Optional[int], typer.Option(
    "--crops", "--test-crops", help="Crops per test clip: 1 (centre) or 3 (left / centre / right, TSN's three-crop; "
    "the built-in benchmark's frames are the crop).", rich_help_panel="Data")]
Workers = Annotated[Optional[int], typer.Option(help="Data-loading worker processes.", rich_help_panel="Data")]
OnMissing = Annotated[Optional[str], typer.Option(
    help="A listed clip that is not on disk: stop (default; one line naming the list's line) or skip (counted, "
    "printed, and left out).", rich_help_panel="Data")]
Epochs = Annotated[Optional[int], typer.Option(help="Training epochs.", rich_help_panel="Run")]
BatchSize = Annotated[Optional[int], typer.Option(help="Clips per batch (over all processes).", rich_help_panel="Run")]
Lr = Annotated[Optional[float], typer.Option(help="Peak learning rate.", rich_help_panel="Run")]
Seed = Annotated[Optional[int], typer.Option(help="Random seed (data order, augmentation, init).", rich_help_panel="Run")]
Pretrained = Annotated[Optional[str], typer.Option(
    help="Starting weights: none, imagenet, a run folder or its checkpoint.pt (selfy-lab train / pretrain), an "
    "export folder (selfy-lab export), or a state-dict file (.pt, .pth, .safetensors).", rich_help_panel="Model")]

# every flag that lists things to run or show takes a comma list, or the flag repeated (each value a comma list)
LIST = "comma list or repeat the flag"

# every command that takes a trained model names it the same way, and accepts the same three forms
MODEL_HELP = "The model: a run folder, an export folder (selfy-lab export) or a checkpoint.pt file."
Model = Annotated[Optional[Path], typer.Option("--checkpoint", help=MODEL_HELP)]
ModelArg = Annotated[Optional[Path], typer.Argument(help=MODEL_HELP + " The same as --checkpoint.", show_default=False)]


def path_list(values: Optional[list[Path]]) -> list[Path]:
    """The paths of a repeated path flag, each value a path or a comma list of paths (a value that exists as it
    is, commas and all, stays one path)."""
    out: list[Path] = []
    for v in values or []:
        out += [v] if Path(v).exists() or "," not in str(v) else [Path(p.strip()) for p in str(v).split(",") if p.strip()]
    return out


def one_model(positional: Optional[Path], option: Optional[Path], command: str) -> Path:
    """The model of a command that takes it as its argument or as --checkpoint: exactly one of them."""
    if positional is None and option is None:
        raise SelfyError(f"selfy-lab {command} needs a model: selfy-lab {command} RUN_OR_EXPORT, or --checkpoint "
                         f"RUN_OR_EXPORT")
    if positional is not None and option is not None and positional != option:
        raise SelfyError(f"selfy-lab {command} got two models ({positional} and --checkpoint {option}): give one")
    return positional if positional is not None else option

Aux = Annotated[Optional[str], typer.Option(
    help=f"Auxiliary loss: {', '.join(AUX_LOSSES)} (hcml = the motion hierarchy's contrastive loss).", rich_help_panel="Run")]
AuxWeight = Annotated[Optional[float], typer.Option(help="Weight of the auxiliary loss (default 1).", rich_help_panel="Run")]
LabelFraction = Annotated[Optional[float], typer.Option(
    help="Share of the training clips (and labels) used, the same share of every class and the same clips for "
    "every seed (e.g. 0.1).", rich_help_panel="Data")]
FreezeBackbone = Annotated[Optional[bool], typer.Option(
    "--freeze-backbone/--no-freeze-backbone", help="A linear probe: keep the pretrained backbone (and hierarchy) "
    "fixed, BatchNorm statistics included; needs --pretrained.", rich_help_panel="Run")]
Tensorboard = Annotated[Optional[bool], typer.Option(
    "--tensorboard/--no-tensorboard", help="Also write TensorBoard event files (RUN/tensorboard): loss, lr, top-1/5 "
    "per epoch and the config as hparams (needs the tensorboard package).", rich_help_panel="Run")]
Compile = Annotated[Optional[bool], typer.Option(
    "--compile/--no-compile", help="Run the training step under torch.compile (inductor; its own run key; the "
    "first step of a process compiles, 1-2 minutes on a CPU). Measure it first with `selfy-lab bench --only step "
    "--compile --device cuda`: on a CPU it was slower.",
    rich_help_panel="Run")]
Deterministic = Annotated[Optional[bool], typer.Option(
    "--deterministic/--no-deterministic", help="Only PyTorch's deterministic kernels, so that a re-run on the same "
    "CUDA machine gives the same bits (slower there; its own run key). CPU runs repeat without it, on the same "
    "number of threads.",
    rich_help_panel="Run")]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.", rich_help_panel="Run")]
Settings = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Any configuration field, SECTION.FIELD=VALUE (repeatable; SECTION model, data or train), e.g. "
    "--set train.weight_decay=0.01 --set model.dropout=0.5; applied last, typed and checked like an experiment "
    "file. `selfy-lab config` prints every field.", rich_help_panel="Run")]

def at_least(value, lo, flag: str):
    """A numeric flag checked at the edge: a one-line error below ``lo``."""
    if value is not None and value < lo:
        raise SelfyError(f"{flag} must be at least {lo}, got {value}")
    return value


def comma_list(value) -> list[str]:
    """``a,b, c`` or a repeated flag's values ['a,b', 'c'] -> ['a', 'b', 'c'] (empty items dropped)."""
    return parse_list(value)


def console(stderr: bool = False):
    """The commands' console (``stderr``: for notes beside data written to standard output)."""
    # piped output (logs, CI) gets a wide table instead of rich's 80-column fallback; a message stays one line
    # whatever the width (the terminal wraps it, a log keeps it whole for grep and copy)
    return Console(width=shutil.get_terminal_size((140, 24)).columns, soft_wrap=True, stderr=stderr)


def table(title: str, columns: list[str], rows: list[list[str]]):
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


def progress_bar(console=None, *, info: bool = False, eta: bool = False, spinner: bool = False):
    """The one progress display of the CLI (a rich Progress, cleared when done): description, then a bar with
    done / total (or, with ``spinner``, a spinner for work of unknown length), an ``info`` field, the time
    elapsed and with ``eta`` the time left."""
    if spinner:
        cols = [SpinnerColumn(), TextColumn("{task.description}")]
    else:
        cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    cols += [TextColumn("{task.fields[info]}")] if info else []
    cols += [TimeElapsedColumn()] + ([TextColumn("ETA"), TimeRemainingColumn()] if eta else [])
    return Progress(*cols, console=console, transient=True)


class RunDisplay:
    """Renders ``fit()`` callbacks: a bar per epoch with loss / accuracy / ETA, one line per finished epoch."""

    def __init__(self, console, label: str = ""):
        self.con, self.label = console, label
        self.progress = progress_bar(console, info=True, eta=True)
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
            # deferred: these load torch, which the command line's start (--help, completion) must not
            from ..core.runtime import thread_note

            p.console.print(f"{pre}resuming after epoch {kw['epoch']} (checkpoint found){thread_note(kw)}")
        elif event == "dataset":
            parts = [f"{kw[k]} {what} clips" for k, what in (("train", "training"), ("val", "validation"),
                                                              ("test", "test"))
                     if kw.get(k) is not None]
            parts += [f"{kw['classes']} classes"] if kw.get("classes") is not None else ["labels unread"]
            if kw.get("skipped"):
                n = kw["skipped"]
                parts.append(f"{n} clip{'s' if n > 1 else ''} skipped (not on disk, or unreadable)")
            p.console.print(f"{pre}data: {', '.join(parts)}")
        elif event == "weights":
            p.console.print(f"{pre}loaded {kw['loaded']} backbone tensors from {kw['source']}; "
                            f"{len(kw['new'])} new parameter tensors (blocks, head)")
        elif event == "epoch_start":
            p.reset(t, total=kw["steps"], description=f"{pre}epoch {kw['epoch'] + 1}/{kw['epochs']}", info="")
        elif event == "step":
            p.update(t, completed=kw["step"], info=f"loss {kw['loss']:.3f} acc {kw['acc']:.3f}")
        elif event == "eval_start":
            p.reset(t, total=None, description=f"{pre}validating", info="")
        elif event == "test_start":
            p.reset(t, total=None, description=f"{pre}testing ({kw['clips']} held-out clips)", info="")
        elif event == "eval_step":
            p.update(t, completed=kw["step"], total=kw["total"])
        elif event == "epoch_end":
            m = kw["metrics"]
            val = f" | val top-1 {m['top1']:.3f} top-5 {m['top5']:.3f}" if m else ""
            top1 = "" if kw["train_top1"] != kw["train_top1"] else f" top-1 {kw['train_top1']:.3f}"  # nan: no labels
            p.console.print(f"{pre}epoch {kw['epoch'] + 1}/{kw['epochs']}: train loss {kw['train_loss']:.3f}"
                            f"{top1} ({kw['train_seconds']:.0f} s){val}")
        elif event == "finished":
            p.console.print(f"{pre}already finished in {kw['run_dir']}")
        elif event == "retrain":
            p.console.print(f"{pre}{kw['run_dir']} trains again: {kw['why']}")
        elif event == "rescore":
            p.console.print(f"{pre}{kw['run_dir']} is scored again from its checkpoint: {kw['why']}")


def metrics_table(title: str, metrics: dict[str, float]):
    return table(title, ["metric", "value"], [[k, f"{v:.4f}"] for k, v in metrics.items()])


class SweepDisplay:
    """Sweep progress: runs done / total, and the current run's epochs (one job) or the queue (several)."""

    def __init__(self, console):
        self.con = console
        self.progress = progress_bar(console, info=True)
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
        elif event == "stale":
            p.console.print(f"{kw['run'].label}: not counted as finished, {kw['why']}: it trains again")
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
            elif ev == "test_start":
                p.update(self.run, info="testing")
            elif ev == "resume":
                # deferred: these load torch, which the command line's start (--help, completion) must not
                from ..core.runtime import thread_note

                p.console.print(f"{kw['run'].label}: resuming after epoch {kw['epoch']}{thread_note(kw)}")
        elif event == "run_end":
            row = kw["row"]
            p.advance(self.sweep)
            mark = "done" if row["status"] == "done" else f"{row['status'].upper()}: {row['error']}"
            p.console.print(f"{kw['run'].label}: {mark} ({row['seconds']} s)")


