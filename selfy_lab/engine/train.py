"""Training: ``fit()``, a plain function returning the run's validation metrics (evaluation: :mod:`.evaluate`,
the run's model and checkpoints: :mod:`.checkpoint`).

``fit`` trains a run in its run directory (layout: :mod:`selfy_lab.store.results`), writing the checkpoint
atomically after every epoch; calling it again on the same directory resumes from the last checkpoint,
and a finished run returns its metrics at once.

Runs are deterministic on CPU for a given seed and thread count: data order, augmentation and dropout draw
from seeds derived from (seed, epoch), so a resumed run matches an uninterrupted one; the thread count sets the
round-off, so every epoch records it and a resume on another count says so. On CUDA, where cuDNN and the
backward of indexing may accumulate in a varying order, ``deterministic`` makes that a guarantee. On CUDA the loop keeps the
hot path free of host synchronisation (running sums stay on the device), uses automatic mixed precision
and channels-last memory. Under ``torchrun`` it trains with DistributedDataParallel; only rank 0 writes.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as tdist
import torch.nn.functional as F

from ..config.run import RunConfig
from ..core.errors import DivergedError, SelfyError
from ..core.metrics import classification_metrics
from ..core.runtime import compiled, deterministic_algorithms, device_label, is_main_process, keep_freed_memory
from ..data.clips import Unlabeled, label_subset
from ..data.datasets import build_dataset, scored_splits
from ..data.loader import make_loader, sample_seed
from ..store import results as R
from .checkpoint import build_run_model, load_weights, read_checkpoint, reason, save_checkpoint
from .distributed import Dist, init_distributed
from .evaluate import Callback, amp_dtype, extra_metrics, predict, quiet, to_input


def lr_at(run: RunConfig, epoch: float) -> float:
    """Learning rate at a fractional epoch: linear warm-up, then step decay or cosine."""
    t = run.train
    if t.warmup and epoch < t.warmup:
        return t.lr * (epoch + 1e-3) / t.warmup
    if t.schedule == "step":
        return t.lr * 0.1 ** sum(epoch >= s for s in t.lr_steps)
    span = max(t.epochs - t.warmup, 1e-9)
    return t.lr * 0.5 * (1 + math.cos(math.pi * min((epoch - t.warmup) / span, 1.0)))


def _optimizer(run: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:  # a probe's frozen parts are not optimised
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BN and biases
    t = run.train
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr)
    return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov and t.momentum > 0)


def fit(run: RunConfig, run_dir: str | Path, callback: Callback = quiet, device: str = "auto") -> dict[str, float]:
    """Train ``run`` in ``run_dir`` (resuming if it holds a checkpoint); returns the final val metrics."""
    with deterministic_algorithms(run.train.deterministic), _training_lock(run_dir):
        return _fit(run, run_dir, callback, device)


@contextlib.contextmanager
def _training_lock(run_dir: str | Path):
    """One process trains a run directory at a time (the main process of a distributed run holds it)."""
    if not is_main_process():
        yield
        return
    with R.exclusive(R.ensure_writable(run_dir), "the run directory"):
        yield


@dataclass
class _Training:
    """What the epochs of a run share: the model and the module a step runs (wrapped for the contrastive loss,
    DistributedDataParallel, compiling), the optimiser and its scaler, the loaders and where training stands."""

    run: RunConfig
    dist: Dist
    model: torch.nn.Module
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp: torch.dtype | None
    train_loader: object
    val_loader: object
    frozen: list
    board: object
    start: int = 0
    history: list = field(default_factory=list)

    @property
    def pretrain(self) -> bool:  # self-supervised: the hierarchy's InfoNCE, labels never read, no validation
        return self.run.train.objective == "hcml"

    @property
    def aux(self) -> bool:
        return self.run.train.aux == "hcml"


def _fit(run: RunConfig, run_dir: str | Path, callback: Callback, device: str) -> dict[str, float]:
    keep_freed_memory()
    run_dir = Path(run_dir)
    dist = init_distributed(device)
    if _is_finished(run, run_dir, callback):
        return R.read_metrics(run_dir)
    if dist.main:
        R.ensure_writable(run_dir)
        R.check_source(run_dir)  # uncommitted package code: stops, or (--allow-dirty) stores the diff
        R.write_run_config(run_dir, run)
    tr = _prepare(run, run_dir, dist, callback)
    t = run.train
    ckpt_path = R.checkpoint_path(run_dir)
    for epoch in range(tr.start, t.epochs):
        loss, top1, aux_loss, train_time = _train_epoch(tr, epoch, callback)
        val = _validate(tr, epoch, callback)
        tr.history.append({"epoch": epoch + 1, "train_loss": loss, "train_top1": top1, "train_seconds": train_time,
                           "lr": lr_at(run, epoch + 1 - 1e-9),
                           **({"train_aux_loss": aux_loss} if tr.aux else {}),
                           **{f"val_{k}": v for k, v in val.items()},
                           **cpu_threads(dist.device)})
        if dist.main:
            save_checkpoint(ckpt_path, tr.model, tr.opt, tr.scaler, epoch + 1, tr.history, run)
            R.write_history(run_dir, tr.history)
        if tr.board is not None:
            log_epoch(tr.board, tr.history[-1])
        dist.barrier()
        callback("epoch_end", epoch=epoch, epochs=t.epochs, metrics=val, train_seconds=train_time,
                 train_loss=loss, train_top1=top1)
    test = _test(tr, callback)
    if dist.main:
        R.write_metrics(run_dir, run_rows(run, tr.history, test, device_label(dist.device, dist.world)))
    if tr.board is not None:
        log_hparams(tr.board, run, tr.history[-1])
        tr.board.close()
    dist.barrier()
    return {k[4:]: v for k, v in tr.history[-1].items() if k.startswith("val_")}


def _is_finished(run: RunConfig, run_dir: Path, callback: Callback) -> bool:
    """Whether the run directory holds this run finished (a pretraining only with its checkpoint: its product is
    its weights, so one whose checkpoint is gone trains again); another run's directory is one line."""
    if (run_dir / R.CONFIG).exists() and R.read_run_config(run_dir).run_hash != run.run_hash:
        trained = [f for f in (R.CHECKPOINT, R.HISTORY, R.METRICS) if (run_dir / f).exists()]
        if trained:
            raise SelfyError(f"{run_dir} holds a run of another configuration ({', '.join(trained)}): choose another "
                             "--out, or delete it to start over")
        # a start that failed before its first epoch (missing data, a bad flag caught late) left only its config:
        # it trained nothing, so the corrected command takes the folder
        (run_dir / R.CONFIG).unlink()
    finished = R.is_finished(run_dir, scored_splits(run))
    if not finished and R.is_finished(run_dir) and R.checkpoint_path(run_dir).is_file():
        callback("rescore", run_dir=str(run_dir), why=R.metrics_problem(run_dir, scored_splits(run)))
    if finished and run.train.objective == "hcml" and not R.checkpoint_path(run_dir).is_file():
        callback("retrain", run_dir=str(run_dir), why="its checkpoint.pt is missing, and pretraining is its weights")
        (run_dir / R.METRICS).unlink()
        finished = False
    if finished:
        callback("finished", run_dir=str(run_dir))
    return finished


def _prepare(run: RunConfig, run_dir: Path, dist: Dist, callback: Callback) -> _Training:
    """The model (first: missing weights stop before any data is prepared), the data, the optimiser, the state
    of the last checkpoint, and the module a step runs."""
    t = run.train
    pretrain, aux = t.objective == "hcml", t.aux == "hcml"
    model, report = build_run_model(run, dist.device)
    if report and report["loaded"]:
        callback("weights", **report)
    callback("data", message="preparing data")
    checking = lambda i, n: callback("data", message=f"checking {i}/{n}")  # noqa: E731
    train_ds = training_set(run, checking)
    val_ds = None if pretrain else build_dataset(run, "val", progress=checking)
    # unreadable videos of a folder, listed clips not on disk (--on-missing skip)
    skipped = sum(getattr(getattr(ds, "dataset", ds), "skipped", 0) for ds in (train_ds, val_ds) if ds is not None)
    callback("dataset", train=len(train_ds), val=None if val_ds is None else len(val_ds),
             classes=None if pretrain else run.model.num_classes, skipped=skipped)
    frozen = freeze(model, report["prefixes"]) if t.freeze_backbone else []
    if t.tensorboard:
        tensorboard_writer(None)  # every rank checks the package, so none waits for a rank that stopped
    board = tensorboard_writer(run_dir) if t.tensorboard and dist.main else None
    opt = _optimizer(run, model)
    amp = amp_dtype(run, dist.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    start, history = _resume(run, R.checkpoint_path(run_dir), model, opt, scaler, dist, callback)
    # the contrastive loss is part of the wrapped module's output, so DistributedDataParallel sees its graph; a
    # hierarchy trained without its loss leaves its heads without gradients, pretraining the classifier (and
    # the stages above the last level)
    unused = (run.model.hierarchy != "none" and not aux) or pretrain
    step_module = WithContrastive(model, "only" if pretrain else "added") if (aux or pretrain) else model
    net = torch.nn.parallel.DistributedDataParallel(step_module, find_unused_parameters=unused) if dist.world > 1 else step_module
    if t.compile:  # the training step only (it shares the model's parameters); validation runs the eager model
        net = compiled(net)
    pin = dist.device.type == "cuda"
    loading = dict(batch_size=t.batch_size, seed=t.seed, workers=run.data.workers, rank=dist.rank, world=dist.world,
                   pin_memory=pin)
    train_loader = make_loader(train_ds, train=True, **loading)
    val_loader = None if pretrain else make_loader(val_ds, train=False, **loading)
    if len(train_loader) == 0:
        raise SelfyError(f"the training set has {len(train_ds)} clips, fewer than one batch of {t.batch_size // dist.world}")
    return _Training(run, dist, model, net, opt, scaler, amp, train_loader, val_loader, frozen, board, start, history)


def _resume(run: RunConfig, ckpt_path: Path, model, opt, scaler, dist: Dist, callback: Callback) -> tuple[int, list]:
    """(epochs done, history) of the run's last checkpoint, its state loaded; (0, []) without one."""
    if not ckpt_path.exists():
        return 0, []
    ck = read_checkpoint(ckpt_path, dist.device, run)
    load_weights(model, ck, ckpt_path)
    try:
        opt.load_state_dict(ck["optimizer"])
        scaler.load_state_dict(ck["scaler"])
        start, history = int(ck["epoch"]), list(ck["history"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise SelfyError(f"checkpoint {ckpt_path} is incomplete ({reason(e)}): delete it to train the run "
                         f"from the start") from None
    callback("resume", epoch=start, **thread_change(history, dist.device))
    return start, history


def _train_epoch(tr: _Training, epoch: int, callback: Callback) -> tuple[float, float, float, float]:
    """One epoch of training steps: (mean loss, top-1 (nan when pretraining), mean auxiliary loss, seconds). The
    running sums stay on the device; the host reads them every 10 steps, for the display."""
    run, t, dist, opt, scaler = tr.run, tr.run.train, tr.dist, tr.opt, tr.scaler
    torch.manual_seed(sample_seed(t.seed, epoch, 2**32 - 1))  # dropout etc.: a function of (seed, epoch)
    tr.train_loader.batch_sampler.set_epoch(epoch)
    tr.net.train()
    for m in tr.frozen:  # a probe keeps the pretrained BatchNorm statistics
        m.eval()
    t0 = time.perf_counter()
    loss_sum, hits, aux_sum = (torch.zeros((), device=dist.device) for _ in range(3))
    seen, steps = 0, len(tr.train_loader)
    callback("epoch_start", epoch=epoch, epochs=t.epochs, steps=steps)
    for step, (clips, labels) in enumerate(tr.train_loader):
        for g in opt.param_groups:
            g["lr"] = lr_at(run, epoch + step / steps)
        x = to_input(clips, dist.device, t.channels_last)
        y = labels.to(dist.device, non_blocking=True)
        with torch.autocast(dist.device.type, dtype=tr.amp or torch.float32, enabled=tr.amp is not None):
            if tr.pretrain:  # the motion hierarchy's InfoNCE alone
                loss = tr.net(x)
                logits = torch.zeros(len(y), 1, device=dist.device)
            else:
                out = tr.net(x)
                logits, aux_loss = out if tr.aux else (out, None)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=t.label_smoothing)
            if tr.aux:  # plus the motion hierarchy's InfoNCE of this forward pass
                loss = loss + t.aux_weight * aux_loss
                aux_sum += aux_loss.detach() * len(y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if t.clip_grad:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(tr.net.parameters(), t.clip_grad)
        scaler.step(opt)
        scaler.update()
        loss_sum += loss.detach() * len(y)
        hits += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        if (step + 1) % 10 == 0 or step + 1 == steps:  # one host sync every 10 steps, for the display
            mean_loss = check_finite((loss_sum / seen).item(), epoch, step + 1, opt.param_groups[0]["lr"])
            callback("step", epoch=epoch, step=step + 1, steps=steps, loss=mean_loss,
                     acc=(hits / seen).item(), lr=opt.param_groups[0]["lr"])
    if dist.world > 1:
        tot = torch.stack([loss_sum, hits, aux_sum, torch.tensor(float(seen), device=dist.device)])
        tdist.all_reduce(tot)
        loss_sum, hits, aux_sum, seen = tot[0], tot[1], tot[2], int(tot[3].item())
    train_time = time.perf_counter() - t0
    loss = check_finite((loss_sum / seen).item(), epoch, steps, opt.param_groups[0]["lr"])  # before anything is saved
    top1 = float("nan") if tr.pretrain else (hits / seen).item()
    return loss, top1, (aux_sum / seen).item(), train_time


def _validate(tr: _Training, epoch: int, callback: Callback) -> dict[str, float]:
    """Validation metrics after ``epoch`` when it is the last or ``eval_every`` asks for it; else nothing."""
    t = tr.run.train
    last = epoch + 1 == t.epochs
    if tr.pretrain or not (last or (t.eval_every and (epoch + 1) % t.eval_every == 0)):
        return {}
    callback("eval_start", epoch=epoch)
    logits, labels = predict(tr.model, tr.val_loader, tr.dist.device, tr.amp, t.channels_last, tr.dist,
                             callback=lambda ev, **kw: callback(ev, epoch=epoch, **kw))
    return {**classification_metrics(logits, labels), **extra_metrics(tr.run.data.dataset, logits, labels)}


def _test(tr: _Training, callback: Callback) -> dict[str, float]:
    """The trained model's metrics on the held-out test split, once, after the last epoch (nothing where the
    dataset has none). Nothing chooses on them: reported tables read them, choices read validation."""
    if "test" not in scored_splits(tr.run):
        return {}
    ds = build_dataset(tr.run, "test")
    loader = make_loader(ds, batch_size=tr.run.train.batch_size, seed=tr.run.train.seed, train=False,
                         workers=tr.run.data.workers, rank=tr.dist.rank, world=tr.dist.world,
                         pin_memory=tr.dist.device.type == "cuda")
    callback("test_start", clips=len(ds))
    logits, labels = predict(tr.model, loader, tr.dist.device, tr.amp, tr.run.train.channels_last, tr.dist,
                             callback=lambda ev, **kw: callback(ev, epoch=tr.run.train.epochs - 1, **kw))
    return {**classification_metrics(logits, labels), **extra_metrics(tr.run.data.dataset, logits, labels)}


def check_finite(loss: float, epoch: int, step: int, lr: float) -> float:
    """The mean training loss so far, or a :class:`DivergedError` when it is nan or infinite: the run stops
    before its epoch is saved, so it is never recorded as finished."""
    if not math.isfinite(loss):
        raise DivergedError(f"the training loss became {loss} in epoch {epoch + 1} by step {step} (lr {lr:.3g}): "
                            f"the run diverged; lower --lr and run it again")
    return loss


class WithContrastive(torch.nn.Module):
    """The model with its motion hierarchy's contrastive loss in the output: (logits, loss) ("added") or the
    loss alone ("only", pretraining), so that DistributedDataParallel sees the loss's graph."""

    def __init__(self, model: torch.nn.Module, mode: str):
        super().__init__()
        self.model, self.mode = model, mode
        model.hierarchy.loss_enabled = True  # computed only where it is used

    def forward(self, x: torch.Tensor):
        logits = self.model(x)
        loss = self.model.hierarchy.loss()
        return loss if self.mode == "only" else (logits, loss)


def training_set(run: RunConfig, progress=None):
    """The run's training clips: all, or ``label_fraction`` of each class; without labels when pretraining."""
    ds = build_dataset(run, "train", progress=progress)
    if run.data.label_fraction < 1:
        if run.train.objective != "supervised":
            raise SelfyError("pretraining reads no labels, so it cannot pick a share of them: drop --label-fraction")
        ds = label_subset(ds, run.data.label_fraction)
    return Unlabeled(ds) if run.train.objective != "supervised" else ds


def freeze(model: torch.nn.Module, prefixes: list[str]) -> list[torch.nn.Module]:
    """Fix the parameters under ``prefixes`` (the pretrained parts); returns their modules, which training
    keeps in eval mode (BatchNorm statistics fixed too)."""
    if not prefixes:
        raise SelfyError("--freeze-backbone: nothing pretrained was loaded to freeze")
    for name, p in model.named_parameters():
        if any(name.startswith(pre) for pre in prefixes):
            p.requires_grad_(False)
    return [getattr(model, pre.rstrip(".")) for pre in prefixes]


def tensorboard_writer(run_dir: Path | None):
    """A TensorBoard writer into RUN/tensorboard (a resumed run adds an event file beside the first); with
    ``run_dir`` None, only check that the package is there."""
    try:  # optional: tensorboard (the [tensorboard] extra)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise SelfyError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(run_dir / R.TENSORBOARD_DIR)) if run_dir is not None else None


def log_epoch(board, row: dict) -> None:
    """One epoch's history row as scalars: train/loss, train/top1, lr, val/<metric>, at step = epoch."""
    step = row["epoch"]
    for key, value in row.items():
        if key in ("epoch", "train_seconds") or value != value:  # NaN: not measured (e.g. pretraining's top-1)
            continue
        board.add_scalar(key.replace("train_", "train/").replace("val_", "val/"), value, step)


def log_hparams(board, run: RunConfig, row: dict) -> None:
    """The run's variant and recipe as TensorBoard hparams, beside its final metrics."""
    hp = {**run.variant(), "seed": run.train.seed, "epochs": run.train.epochs, "lr": run.train.lr,
          "batch_size": run.train.batch_size, "preset": run.preset, "run_id": run.run_hash}
    final = {f"hparam/{k}": v for k, v in row.items() if k.startswith(("val_", "train_loss")) and v == v}
    board.add_hparams(hp, final, run_name=".")


def run_rows(run: RunConfig, history: list[dict], test: dict[str, float] | None = None,
             device: str = "cpu") -> list[dict]:
    """Tidy rows of a finished run: final val metrics, the ``test`` metrics (where the dataset has a test split),
    last-epoch train loss/top-1, total train seconds; every row names the ``device`` (``cpu`` or the GPUs'
    name) and, on the CPU, the thread count."""
    last = history[-1]
    train = {"loss": last["train_loss"], **({} if math.isnan(last["train_top1"]) else {"top1": last["train_top1"]}),
             "seconds": sum(h["train_seconds"] for h in history),
             **({"aux_loss": last["train_aux_loss"]} if "train_aux_loss" in last else {})}
    val = {k[4:]: v for k, v in last.items() if k.startswith("val_")}
    return (R.result_rows(run, val, "val", device=device) + R.result_rows(run, test or {}, "test", device=device)
            + R.result_rows(run, train, "train", device=device))


def cpu_threads(device: torch.device) -> dict[str, int]:
    """What an epoch of history records of the CPU threads it trained on: ``{"threads": N}`` on the CPU, where
    the thread count decides how the kernels split their sums and so sets the round-off (the same run on 1 and on
    2 threads gives other digits); nothing on a GPU."""
    return {"threads": torch.get_num_threads()} if device.type == "cpu" else {}


def thread_change(history: list[dict], device: torch.device) -> dict[str, int]:
    """``{"threads_before": M, "threads": N}`` when a CPU run trained its last epoch on M threads and resumes on
    N != M (its digits will then differ from an uninterrupted run's); else nothing."""
    before, now = history[-1].get("threads") if history else None, cpu_threads(device).get("threads")
    return {"threads_before": before, "threads": now} if before and now and before != now else {}
