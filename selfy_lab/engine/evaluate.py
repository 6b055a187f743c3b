"""Evaluation: a trained model's predictions over a loader (:func:`predict`, gathered in dataset order across
``torchrun`` processes), its metrics on a split (:func:`evaluate`), and ``selfy-lab eval`` (:func:`evaluate_run`:
tidy rows, confusion matrix, per-class accuracy)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as tdist

from ..config.run import RunConfig
from ..core.errors import SelfyError
from ..core.frozen import override
from ..core.metrics import classification_metrics, confusion_matrix, top_confusions
from ..core.runtime import device_label
from ..data.datasets import build_dataset
from ..data.loader import make_loader
from ..data.synthetic import pair_metrics
from ..data.transforms import normalize
from ..store import results as R
from .checkpoint import load_run
from .distributed import Dist

Callback = Callable[..., None]


def quiet(event: str, **info) -> None:
    pass


def amp_dtype(run: RunConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or not run.train.amp:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def to_input(clips: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = normalize(clips.to(device, non_blocking=True))  # uint8 (B, T, C, H, W) -> float
    if channels_last:
        B, T = x.shape[:2]
        x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(x.shape)
    return x


def predict(model: torch.nn.Module, loader, device: torch.device, amp: torch.dtype | None = None,
            channels_last: bool = False, dist: Dist | None = None,
            callback: Callback = quiet) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, K) and labels (N,) of a whole loader, in dataset order; multi-clip items are averaged."""
    dist = dist or Dist(device=device)
    model.eval()
    logit_all, label_all = [], []
    with torch.no_grad():
        for step, (clips, labels) in enumerate(loader):
            multi = clips.dim() == 6  # (B, clips, T, C, H, W)
            B = clips.shape[0]
            x = clips.flatten(0, 1) if multi else clips
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                out = model(to_input(x, device, channels_last)).float()
            if multi:
                out = out.view(B, -1, out.shape[-1]).mean(1)
            logit_all.append(out)
            label_all.append(labels.to(device))
            callback("eval_step", step=step + 1, total=len(loader))
    logits = torch.cat(logit_all) if logit_all else torch.empty(0)
    labels = torch.cat(label_all) if label_all else torch.empty(0, dtype=torch.long)
    if dist.world > 1:  # every rank holds a strided share of each batch: gather and restore dataset order
        gathered = [None] * dist.world
        tdist.all_gather_object(gathered, (logits.cpu(), labels.cpu()))
        n = sum(len(g[1]) for g in gathered)
        K = gathered[0][0].shape[1]
        logits, labels = torch.empty(n, K), torch.empty(n, dtype=torch.long)
        order = _strided_order(loader, dist.world)
        for r, (lg, lb) in enumerate(gathered):
            logits[order[r]], labels[order[r]] = lg, lb
    return logits.cpu(), labels.cpu()


def _strided_order(loader, world: int) -> list[torch.Tensor]:
    """Dataset positions of each rank's predictions under EpochBatchSampler's evaluation sharding."""
    bs, n = loader.batch_sampler.batch_size, loader.batch_sampler.n
    pos = [[] for _ in range(world)]
    for start in range(0, n, bs):
        for r in range(world):
            pos[r].extend(range(start + r, min(start + bs, n), world))
    return [torch.tensor(p, dtype=torch.long) for p in pos]


def extra_metrics(dataset_name: str, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    if dataset_name == "synthetic":
        return pair_metrics(logits, labels)
    return {}


def predictions(run: RunConfig, model: torch.nn.Module, split: str = "val", dataset=None,
                callback: Callback = quiet) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, K) and labels (N,) of a trained ``model`` on ``split`` of the run's dataset (or on
    ``dataset``), every test view of a clip averaged."""
    dev = next(model.parameters()).device
    ds = dataset if dataset is not None else build_dataset(run, split)
    loader = make_loader(ds, batch_size=run.train.batch_size, seed=run.train.seed, train=False,
                         workers=run.data.workers)
    return predict(model, loader, dev, amp_dtype(run, dev), run.train.channels_last, callback=callback)


def evaluate(run: RunConfig, model: torch.nn.Module, split: str = "val", dataset=None,
             callback: Callback = quiet) -> dict[str, float]:
    """Metrics of a trained ``model`` on ``split`` of the run's dataset (or on ``dataset``, e.g. a
    corrupted view of it)."""
    logits, labels = predictions(run, model, split, dataset, callback)
    return {**classification_metrics(logits, labels), **extra_metrics(run.data.dataset, logits, labels)}


@dataclass
class EvalReport:
    """What `selfy-lab eval` found beyond the metrics: the most frequent confusions (true class, predicted
    class, clips, share of the true class), the files written, and the confusion matrix with its class names,
    title and figure path (without suffix), which :func:`selfy_lab.reports.viz.save_confusion_figure` draws."""

    confusions: list[tuple[str, str, int, float]]
    files: list[Path]
    confusion: Any = None  # (K, K) counts, true class down
    class_names: list[str] = field(default_factory=list)
    title: str = ""
    figure: Path | None = None


def evaluate_run(path: str | Path, data_changes: dict | None = None, out: str | Path | None = None,
                 device: str = "auto", callback: Callback = quiet,
                 split: str = "val") -> tuple[RunConfig, dict[str, float], Path, EvalReport]:
    """`selfy-lab eval`: a trained run on its ``split`` (val, or the held-out test), with the data settings in
    ``data_changes`` (re-rooted lists, test clips and crops, ...). Appends tidy rows to ``out`` (default
    RUN/eval.csv, keyed by the trained run's id, the split and the test protocol) and writes, beside it, the
    confusion matrix (CSV) and per-class accuracy of the split and protocol; its figure is the report's
    (:func:`selfy_lab.reports.viz.save_confusion_figure`)."""
    if not Path(path).exists():
        raise SelfyError(f"no model at {path}: pass a run folder, an export folder or a checkpoint.pt file")
    target = Path(out) if out else R.run_dir_of(path) / R.EVAL
    if target.is_dir():
        raise SelfyError(f"--out {target} is a folder, where eval writes a CSV file: nothing was written; pass a file "
                         f"path (e.g. {target / 'eval.csv'})")
    R.ensure_writable(target.parent)
    R.check_own_table(target, R.EVAL_COLUMNS)  # a file of the user's there stops now, before the evaluation
    trained, model = load_run(path, device)
    note = R.unfinished_note(path)
    if note:
        callback("unfinished", message=note)
    try:
        run = override(trained, {"data": {k: v for k, v in (data_changes or {}).items() if v is not None}})
    except (ValueError, TypeError) as e:
        raise SelfyError(str(e)) from None
    R.check_source()
    ds = build_dataset(run, split)
    callback("dataset", train=None, **{split: len(ds)}, classes=len(ds.class_names), skipped=getattr(ds, "skipped", 0))
    logits, labels = predictions(run, model, dataset=ds, callback=callback)
    metrics = {**classification_metrics(logits, labels), **extra_metrics(run.data.dataset, logits, labels)}
    protocol = {"test_clips": run.data.test_clips, "test_crops": run.data.test_crops}
    dev = next(model.parameters()).device
    experiment = "eval-unfinished" if note else "eval"  # the rows of an unfinished run say so
    csv_path = R.append_eval(target, R.result_rows(trained, metrics, split, experiment, protocol, device_label(dev)))
    conf = confusion_matrix(logits, labels, len(ds.class_names))
    name = R.eval_protocol(run.data.test_clips, run.data.test_crops) + ("-test" if split == "test" else "")
    files = list(R.write_confusion(target.parent, name, conf, ds.class_names))
    names = ds.class_names
    report = EvalReport([(names[i], names[j], c, share) for i, j, c, share in top_confusions(conf)], files, conf,
                        list(names), f"{R.run_dir_of(path).name}: {name}, top-1 {metrics['top1']:.1%}",
                        target.parent / f"confusion-{name}")
    return run, metrics, csv_path, report
