"""selfy-lab train, pretrain, eval and describe."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from ..config.experiments import run_from_flags, set_overrides
from ..config.vocabulary import OBJECTIVES
from ..core.errors import SelfyError
from ..core.frozen import to_dict
from ..store.results import RUN_OWNED, allow_dirty_source, claim_folder, default_run_dir, unfinished_note
from .common import (
    AllowDirty, Aux, AuxWeight, Backbone, BatchSize, Block, BlockOptions, Categories, Compile, DataRoot, Dataset,
    Deterministic, Device, Epochs, Experiment, Extractor, Flip, FrameTemplate, Frames, FreezeBackbone, Fusion,
    HcmlAllowLeak, HcmlDelta, HcmlPredictor, HcmlTarget, HcmlTau, Hierarchy, HierarchyLevels, Integrator,
    LabelFraction, ListFormat, Lr, Model, ModelArg, Offsets, OnMissing, Position, Preset, Pretrained, Reduce,
    RunDisplay, Seed, Settings, Similarity, StssMemory, Tensorboard, TestClips, TestCrops, TestList, TrainList,
    ValList, Window, Workers, app, at_least, console, metrics_table, one_model, table,
)


@app.command()
def train(
    experiment: Experiment = None, preset: Preset = None, out: Annotated[Optional[Path], typer.Option(
        help="Run directory (default runs/<experiment>/<run id>). Re-running resumes from its checkpoint.",
        rich_help_panel="Run")] = None,
    dataset: Dataset = None, data_root: DataRoot = None, train_list: TrainList = None, val_list: ValList = None,
    test_list: TestList = None,
    categories: Categories = None, list_format: ListFormat = None, frame_template: FrameTemplate = None, flip: Flip = None,
    test_clips: TestClips = None, workers: Workers = None, on_missing: OnMissing = None, label_fraction: LabelFraction = None,
    backbone: Backbone = None, frames: Frames = None, block: Block = None, block_options: BlockOptions = None, offsets: Offsets = None,
    window: Window = None, extractor: Extractor = None, integrator: Integrator = None,
    similarity: Similarity = None, fusion: Fusion = None, position: Position = None, reduce: Reduce = None,
    stss_memory: StssMemory = None,
    pretrained: Pretrained = None, hierarchy: Hierarchy = None, hierarchy_levels: HierarchyLevels = None,
    hcml_target: HcmlTarget = None, hcml_predictor: HcmlPredictor = None, hcml_tau: HcmlTau = None,
    hcml_delta: HcmlDelta = None, hcml_allow_leak: HcmlAllowLeak = None,
    epochs: Epochs = None, batch_size: BatchSize = None, lr: Lr = None, seed: Seed = None,
    aux: Aux = None, aux_weight: AuxWeight = None, freeze_backbone: FreezeBackbone = None,
    tensorboard: Tensorboard = None, compile: Compile = None, deterministic: Deterministic = None,
    device: Device = "auto", allow_dirty: AllowDirty = False, settings: Settings = None,
):
    """Train one model; writes config.yaml, checkpoint.pt (every epoch), history.csv and metrics.csv (validation
    and, where the dataset has one, held-out test rows).

    Examples:

      selfy-lab train --preset quick --offsets -3..3          # built-in benchmark, CPU minutes

      selfy-lab train --dataset something-v1 --data-root /data/ssv1 --backbone tsm-r50

      selfy-lab train --aux hcml --aux-weight 0.5             # + hierarchical contrastive motion loss

      selfy-lab train --pretrained runs/hcml --hierarchy diff --freeze-backbone --label-fraction 0.1  # probe

    Interrupt it at any time: re-running the same command resumes after the last finished epoch.
    Multi-GPU / multi-node: torchrun --nproc-per-node N -m selfy_lab.cli train ...
    """
    flags = dict(locals())
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..engine.train import fit

    allow_dirty_source(allow_dirty)
    run, _ = run_from_flags(flags)
    run_dir = claim_folder(out or default_run_dir(run), RUN_OWNED)
    con = console()
    con.print(f"run {run.run_hash}: {run.model.backbone} block={run.model.block} offsets={run.model.variant()['offsets']} "
              f"on {run.data.dataset} ({run.preset} preset, {run.train.epochs} epochs) -> {run_dir}")
    try:
        with RunDisplay(con) as display:
            metrics = fit(run, run_dir, display, device)
    except KeyboardInterrupt:
        con.print(f"interrupted: re-run the same command to resume from the last checkpoint in {run_dir}")
        raise typer.Exit(130)
    # deferred: loads torch, which the command line's start must not
    from ..core.runtime import is_main_process

    if is_main_process():
        con.print(metrics_table(f"validation ({run_dir})", metrics))


@app.command()
def pretrain(
    method: Annotated[str, typer.Option(help="Self-supervised objective: hcml (hierarchical contrastive motion "
                                              "learning: the motion hierarchy's InfoNCE).")] = "hcml",
    out: Annotated[Optional[Path], typer.Option(
        help="Run directory (default runs/pretrain/<run id>); fine-tune with train --pretrained OUT.",
        rich_help_panel="Run")] = None,
    experiment: Experiment = None, preset: Preset = None,
    dataset: Dataset = None, data_root: DataRoot = None, train_list: TrainList = None,
    categories: Categories = None, list_format: ListFormat = None, frame_template: FrameTemplate = None, workers: Workers = None,
    on_missing: OnMissing = None,
    backbone: Backbone = None, frames: Frames = None, pretrained: Pretrained = None, hierarchy: Hierarchy = None,
    hierarchy_levels: HierarchyLevels = None, offsets: Offsets = None, window: Window = None,
    hcml_target: HcmlTarget = None, hcml_predictor: HcmlPredictor = None, hcml_tau: HcmlTau = None,
    hcml_delta: HcmlDelta = None, hcml_allow_leak: HcmlAllowLeak = None,
    epochs: Epochs = None, batch_size: BatchSize = None, lr: Lr = None, seed: Seed = None,
    tensorboard: Tensorboard = None, compile: Compile = None, deterministic: Deterministic = None,
    device: Device = "auto", allow_dirty: AllowDirty = False, settings: Settings = None,
):
    """Pretrain a backbone and its motion hierarchy on unlabeled training clips (labels are never read).

    Examples:

      selfy-lab pretrain --method hcml --out runs/hcml                   # built-in benchmark, quick preset

      selfy-lab pretrain --dataset videos --data-root ~/my_videos --pretrained imagenet --backbone tsn-r50  # your videos

      selfy-lab train --pretrained runs/hcml --hierarchy diff --label-fraction 0.1   # fine-tune, 10% labels

    Writes config.yaml, checkpoint.pt (every epoch), history.csv and metrics.csv (the final InfoNCE); re-running the same command resumes from the last checkpoint.
    """
    flags = {**dict(locals()), "objective": method, "block": "none"}  # the hierarchy alone, no block
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..engine.train import fit

    allow_dirty_source(allow_dirty)
    if method not in OBJECTIVES[1:]:
        raise SelfyError(f"unknown pretraining method '{method}': use {', '.join(OBJECTIVES[1:])}")
    run, _ = run_from_flags(flags, "pretrain")
    run_dir = claim_folder(out or default_run_dir(run), RUN_OWNED)
    con = console()
    con.print(f"pretrain {run.run_hash}: {run.model.backbone} + {run.model.hierarchy} motion hierarchy at "
              f"{'+'.join(run.model.hierarchy_levels)} on {run.data.dataset}, labels unread "
              f"({run.preset} preset, {run.train.epochs} epochs) -> {run_dir}")
    try:
        with RunDisplay(con) as display:
            fit(run, run_dir, display, device)
    except KeyboardInterrupt:
        con.print(f"interrupted: re-run the same command to resume from the last checkpoint in {run_dir}")
        raise typer.Exit(130)
    con.print(f"pretrained: {run_dir} (fine-tune: selfy-lab train --pretrained {run_dir} --hierarchy "
              f"{run.model.hierarchy} --hierarchy-levels {'+'.join(run.model.hierarchy_levels)})")


@app.command("eval")
def evaluate_cmd(
    run_path: ModelArg = None, checkpoint: Model = None,
    split: Annotated[str, typer.Option(help="val (what choices read) or test (the held-out split reported tables "
                                            "read: the built-in benchmark's, or --test-list).")] = "val",
    data_root: DataRoot = None, val_list: ValList = None, test_list: TestList = None, categories: Categories = None,
    list_format: ListFormat = None, frame_template: FrameTemplate = None, test_clips: TestClips = None,
    test_crops: TestCrops = None,
    workers: Workers = None, on_missing: OnMissing = None,
    out: Annotated[Optional[Path], typer.Option(help="CSV for the tidy rows (default RUN/eval.csv).")] = None,
    device: Device = "auto", allow_dirty: AllowDirty = False,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Any data field of the run, data.FIELD=VALUE (repeatable), e.g. --set data.size=96; the model "
        "and its training are the run's.", rich_help_panel="Run")] = None,
):
    """Evaluate a trained model on its dataset's validation (or, --split test, held-out test) split: the paper's
    test protocol (--clips 1|2, --crops 1|3, predictions averaged), optionally re-rooted data. Writes tidy rows
    (RUN/eval.csv, one set per split and protocol) and, beside them, the confusion matrix (CSV + PNG) and
    per-class accuracy, and lists the most frequent confusions.

    Examples:

      selfy-lab eval runs/train/abc123 --clips 2 --crops 3          # 2 clips x 3 crops, as the paper's Table 1

      selfy-lab eval runs/train/abc123 --split test                 # the held-out test split
    """
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..engine.evaluate import evaluate_run
    from ..reports.viz import save_confusion_figure

    run_path = one_model(run_path, checkpoint, "eval")
    at_least(workers, 0, "--workers")
    if split not in ("val", "test"):
        raise SelfyError(f"--split {split}: use val or test")
    allow_dirty_source(allow_dirty)
    con = console()

    note = unfinished_note(run_path) if run_path.exists() else ""
    if note:
        con.print(f"note: {note}")

    sets = set_overrides(settings)
    if set(sets) - {"data"}:
        raise SelfyError(f"eval --set takes data fields only (data.FIELD=VALUE): the {', '.join(sorted(set(sets) - {'data'}))} "
                         "settings are the trained run's")
    with RunDisplay(con, "eval") as display:
        run, metrics, path, report = evaluate_run(
            run_path, {**sets.get("data", {}), **{k: v for k, v in dict(
                data_root=data_root, val_list=val_list, test_list=test_list, categories=categories,
                list_format=list_format, frame_template=frame_template, test_clips=test_clips,
                test_crops=test_crops, workers=workers, on_missing=on_missing).items() if v is not None}}, out, device,
            display, split)
    figures = save_confusion_figure(report.confusion, report.class_names, title=report.title, stem=report.figure)
    name = "validation" if split == "val" else "test split"
    con.print(metrics_table(f"{name} of {run_path} ({run.data.test_clips} clip(s) x {run.data.test_crops} "
                            f"crop(s))", metrics))
    if report.confusions:
        con.print(table("most frequent confusions", ["true class", "predicted", "clips", "share of true"],
                        [[t, p, str(c), f"{s:.0%}"] for t, p, c, s in report.confusions]))
    con.print(f"wrote {path}, " + ", ".join(str(f) for f in [*report.files, *figures]))


@app.command()
def describe(
    dataset: Dataset = None, data_root: DataRoot = None, categories: Categories = None,
    out: Annotated[Optional[Path], typer.Option(help="Write a PNG with one clip per class (built-in benchmark).")] = None,
    index: Annotated[int, typer.Option(help="Which clip of each class to show (0, 1, ...).")] = 0,
    frames: Frames = None, size: Annotated[Optional[int], typer.Option(help="Frame side (built-in benchmark).")] = None,
):
    """List a dataset's classes (pairs, flip mirrors) and, for the built-in benchmark, show a clip per class."""
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..data.datasets import class_rows

    at_least(index, 0, "--index")
    at_least(frames, 1, "--frames")
    at_least(size, 16, "--size")
    con = console()
    ds = dataset or "synthetic"
    columns, rows = class_rows(ds, data_root or "", categories or "")
    if ds == "synthetic":
        con.print(table("built-in motion benchmark (synthetic)", columns, rows))
        con.print("reverse pairs: a clip played backwards is a clip of the partner class; a frame-order-blind "
                  "model (TSN) is at chance within them.")
        if out:
            # deferred: loads torch, which the command line's start must not
            from ..reports.viz import synthetic_gallery

            path = synthetic_gallery(claim_folder(out, ("synthetic_classes.png",)) / "synthetic_classes.png", index=index, frames=frames or 8,
                                     size=size or 64)
            con.print(f"wrote {path}")
        return
    con.print(table(f"{ds}: {len(rows)} classes", columns, rows))
    con.print(f"direction classes (never flipped under 'skip', swapped under 'swap'): "
              f"{[int(r[0]) for r in rows if r[-1] != '-']}")
    # deferred: PyAV, which the command line's start need not load
    from ..data.video import decoder

    con.print(f"video files are decoded with {decoder()}" + (
        " (torchcodec is not installed or cannot load its FFmpeg libraries here)" if decoder() == "pyav" else ""))


@app.command("config")
def config_cmd(
    experiment: Experiment = None, preset: Preset = None, dataset: Dataset = None, backbone: Backbone = None,
    block: Block = None, offsets: Offsets = None, position: Position = None, epochs: Epochs = None,
    batch_size: BatchSize = None, lr: Lr = None, seed: Seed = None, settings: Settings = None,
):
    """Print the resolved configuration a train command with these flags would run (YAML: every field of the
    model, data and train sections) and its run id, without training.

    Examples:

      selfy-lab config --preset quick --offsets -3..3

      selfy-lab config --experiment experiments/table7d.yaml --set train.weight_decay=0.01
    """
    flags = dict(locals())


    run, _ = run_from_flags(flags)
    typer.echo(yaml.safe_dump(to_dict(run), sort_keys=False).rstrip())
    typer.echo(f"# run id: {run.run_hash}")


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="Folder for model.safetensors, config.yaml and README.md (the model card).")],
    run_path: Annotated[Optional[Path], typer.Argument(help="The model: a finished run folder or its checkpoint.pt. "
                                                       "The same as --checkpoint.", show_default=False)] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="The model: a finished run folder or its checkpoint.pt "
                                                       "(an export folder is exported already).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an earlier export in --out (only the files an export "
                                             "wrote; a file of yours there always stops the export).")] = False,
):
    """Write a trained model that a colleague can load: safetensors weights (no pickled code), the run's
    configuration and a model card (architecture, data, recipe, seed, validation metrics, git revision).

    Examples:

      selfy-lab export runs/train/abc123 --out models/selfy-tsn-r18

      selfy-lab eval models/selfy-tsn-r18          # any command that takes a run takes the folder

      selfy-lab train --pretrained models/selfy-tsn-r18 --dataset something-v1 --data-root /data/ssv1
    """
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..studies.export import export_run

    files = export_run(one_model(run_path, checkpoint, "export"), out, force)
    console().print("wrote " + ", ".join(str(f) for f in files))
