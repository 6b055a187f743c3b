"""selfy-lab train, eval and describe."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SelfyError
from .common import (Backbone, BatchSize, Block, Categories, DataRoot, Dataset, Device, Epochs, Experiment,
                     Extractor, Flip, FrameTemplate, Frames, Fusion, Integrator, Lr, Offsets, Position, Preset,
                     Pretrained, Reduce, RunDisplay, Seed, Similarity, TestClips, TrainList, ValList, Window,
                     Workers, _console, _metrics_table, _table, app, default_run_dir, run_from_flags)


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
    from ..train import fit

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

    from ..results import RUN_COLUMNS, append_rows, provenance
    from ..train import evaluate, load_run

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
    from ..flops import model_cost

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
    from ..data.flip import mirror_pairs

    con = _console()
    ds = dataset or "synthetic"
    if ds == "synthetic":
        from ..data import synthetic as syn

        pairs = mirror_pairs(list(syn.CLASS_NAMES))
        con.print(_table("built-in motion benchmark (synthetic)", ["label", "class", "pair", "kind", "flip ->"],
                         [[str(i), c.name, c.pair, c.kind, str(pairs.get(i, "-"))] for i, c in enumerate(syn.CLASSES)]))
        con.print("reverse pairs: a clip played backwards is a clip of the partner class; a frame-order-blind "
                  "model (TSN) is at chance within them.")
        if out:
            from ..viz import synthetic_gallery

            path = synthetic_gallery(Path(out) / "synthetic_classes.png", index=index, frames=frames or 8, size=size or 64)
            con.print(f"wrote {path}")
        return
    from ..data.datasets import resolve_paths
    from ..data.lists import read_categories
    from ..config import DataConfig

    try:
        cfg = DataConfig(dataset=ds, data_root=data_root or "", categories=categories or "")
    except ValueError as e:
        raise SelfyError(str(e)) from None
    names = read_categories(resolve_paths(cfg, ("categories",))["categories"])
    pairs = mirror_pairs(names)
    con.print(_table(f"{ds}: {len(names)} classes", ["label", "class", "flip ->"],
                     [[str(i), n, str(pairs.get(i, "-"))] for i, n in enumerate(names)]))
    con.print(f"direction classes (never flipped under 'skip', swapped under 'swap'): {sorted(pairs)}")


