"""Training and evaluation: ``fit()`` and ``evaluate()``, plain functions returning metric dicts.

``fit`` trains a run in its run directory (layout: :mod:`selfy_lab.results`), writing the checkpoint
atomically after every epoch; calling it again on the same directory resumes from the last checkpoint,
and a finished run returns its metrics at once.

Runs are deterministic on CPU for a given seed and thread count: data order, augmentation and dropout draw
from seeds derived from (seed, epoch), so a resumed run matches an uninterrupted one; the thread count sets the
round-off, so every epoch records it and a resume on another count says so. On CUDA, where cuDNN and the
backward of indexing may accumulate in a varying order, ``deterministic`` makes that a guarantee (on an H200
the quick preset repeated to the bit without it too: results/gpu). On CUDA the loop keeps the
hot path free of host synchronisation (running sums stay on the device), uses automatic mixed precision
and channels-last memory. Under ``torchrun`` it trains with DistributedDataParallel; only rank 0 writes.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as tdist
import torch.nn.functional as F

from . import results as R
from .config import RunConfig, from_dict, to_dict
from .data.datasets import build_dataset
from .data.loader import make_loader, sample_seed
from .data.transforms import normalize
from .errors import DivergedError, SelfyError, user_message
from .metrics import classification_metrics
from .models import build_model
from .runtime import is_main_process, select_device

Callback = Callable[..., None]
INIT_STREAM = 2**31 - 1  # the "epoch" of the seed stream that initialises the weights (epochs count from 0)


def _quiet(event: str, **info) -> None:
    pass


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            tdist.barrier()


def init_distributed(pref: str = "auto") -> Dist:
    """One process per device under ``torchrun`` (env WORLD_SIZE > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = select_device(pref)
    if world == 1:
        return Dist(0, 1, device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, device)


def lr_at(run: RunConfig, epoch: float) -> float:
    """Learning rate at a fractional epoch: linear warm-up, then step decay or cosine."""
    t = run.train
    if t.warmup and epoch < t.warmup:
        return t.lr * (epoch + 1e-3) / t.warmup
    if t.schedule == "step":
        return t.lr * 0.1 ** sum(epoch >= s for s in t.lr_steps)
    span = max(t.epochs - t.warmup, 1e-9)
    return t.lr * 0.5 * (1 + math.cos(math.pi * min((epoch - t.warmup) / span, 1.0)))


def _amp(run: RunConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or not run.train.amp:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def build_run_model(run: RunConfig, device: torch.device, pretrained: bool = True):
    """The run's network on ``device`` (channels-last where asked), with its pretrained backbone. The random
    initialisation is a function of the run's seed alone, whatever the process drew before (other runs of
    a sweep, a test)."""
    from .runtime import channels_last
    from .weights import load_pretrained

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sample_seed(run.train.seed, INIT_STREAM, 0))
        model = build_model(run.model)
    report = load_pretrained(model, run.model.pretrained, run.model.depth, run.model.width) if pretrained else None
    model = model.to(device)
    if run.train.channels_last:
        model = channels_last(model)
    return model, report


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


def _to_input(clips: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = normalize(clips.to(device, non_blocking=True))  # uint8 (B, T, C, H, W) -> float
    if channels_last:
        B, T = x.shape[:2]
        x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(x.shape)
    return x


def predict(model: torch.nn.Module, loader, device: torch.device, amp: torch.dtype | None = None,
            channels_last: bool = False, dist: Dist | None = None,
            callback: Callback = _quiet) -> tuple[torch.Tensor, torch.Tensor]:
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
                out = model(_to_input(x, device, channels_last)).float()
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
        from .data.synthetic import pair_metrics

        return pair_metrics(logits, labels)
    return {}


def fit(run: RunConfig, run_dir: str | Path, callback: Callback = _quiet, device: str = "auto") -> dict[str, float]:
    """Train ``run`` in ``run_dir`` (resuming if it holds a checkpoint); returns the final val metrics."""
    from .runtime import deterministic_algorithms

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


def _fit(run: RunConfig, run_dir: str | Path, callback: Callback, device: str) -> dict[str, float]:
    from .runtime import keep_freed_memory

    keep_freed_memory()
    run_dir = Path(run_dir)
    dist = init_distributed(device)
    if (run_dir / R.CONFIG).exists() and R.read_run_config(run_dir).run_hash != run.run_hash:
        raise SelfyError(f"{run_dir} holds a run of another configuration: choose another --out, or delete it to start over")
    finished = R.is_finished(run_dir)
    if finished and run.train.objective == "hcml" and not R.checkpoint_path(run_dir).is_file():
        # a pretraining's product is its weights: one whose checkpoint is gone (not committed, deleted) trains again
        callback("retrain", run_dir=str(run_dir), why="its checkpoint.pt is missing, and pretraining is its weights")
        (run_dir / R.METRICS).unlink()
        finished = False
    if finished:
        callback("finished", run_dir=str(run_dir))
        return R.read_metrics(run_dir)
    if dist.main:
        R.ensure_writable(run_dir)
        R.write_run_config(run_dir, run)

    t = run.train
    pretrain = t.objective == "hcml"  # self-supervised: the hierarchy's InfoNCE, labels never read, no validation
    model, report = build_run_model(run, dist.device)  # first: missing weights stop before any data is prepared
    if report and report["loaded"]:
        callback("weights", **report)
    callback("data", message="preparing data")
    train_ds = training_set(run, lambda i, n: callback("data", message=f"checking {i}/{n}"))
    val_ds = None if pretrain else build_dataset(run, "val", progress=lambda i, n: callback("data", message=f"checking {i}/{n}"))
    skipped = getattr(getattr(train_ds, "dataset", train_ds), "skipped", 0)  # unreadable videos of a folder
    callback("dataset", train=len(train_ds), val=None if val_ds is None else len(val_ds),
             classes=None if pretrain else run.model.num_classes, skipped=skipped)
    frozen = freeze(model, report["prefixes"]) if t.freeze_backbone else []
    if t.tensorboard:
        tensorboard_writer(None)  # every rank checks the package, so none waits for a rank that stopped
    board = tensorboard_writer(run_dir) if t.tensorboard and dist.main else None
    opt = _optimizer(run, model)
    amp = _amp(run, dist.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    start, history = 0, []
    ckpt_path = R.checkpoint_path(run_dir)
    if ckpt_path.exists():
        ck = read_checkpoint(ckpt_path, dist.device, run)
        load_weights(model, ck, ckpt_path)
        try:
            opt.load_state_dict(ck["optimizer"])
            scaler.load_state_dict(ck["scaler"])
            start, history = int(ck["epoch"]), list(ck["history"])
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise SelfyError(f"checkpoint {ckpt_path} is incomplete ({_reason(e)}): delete it to train the run "
                             f"from the start") from None
        callback("resume", epoch=start, **thread_change(history, dist.device))
    aux = t.aux == "hcml"
    # the contrastive loss is part of the wrapped module's output, so DistributedDataParallel sees its graph; a
    # hierarchy trained without its loss leaves its heads without gradients, pretraining the classifier (and
    # the stages above the last level)
    unused = (run.model.hierarchy != "none" and not aux) or pretrain
    step_module = WithContrastive(model, "only" if pretrain else "added") if (aux or pretrain) else model
    net = torch.nn.parallel.DistributedDataParallel(step_module, find_unused_parameters=unused) if dist.world > 1 else step_module
    if t.compile:  # the training step only (it shares the model's parameters); validation runs the eager model
        from .runtime import compiled

        net = compiled(net)
    pin = dist.device.type == "cuda"
    train_loader = make_loader(train_ds, t.batch_size, t.seed, True, run.data.workers, dist.rank, dist.world, pin)
    val_loader = None if pretrain else make_loader(val_ds, t.batch_size, t.seed, False, run.data.workers, dist.rank,
                                                   dist.world, pin)
    if len(train_loader) == 0:
        raise SelfyError(f"the training set has {len(train_ds)} clips, fewer than one batch of {t.batch_size // dist.world}")
    steps = len(train_loader)
    val = {}
    for epoch in range(start, t.epochs):
        torch.manual_seed(sample_seed(t.seed, epoch, 2**32 - 1))  # dropout etc.: a function of (seed, epoch)
        train_loader.batch_sampler.set_epoch(epoch)
        net.train()
        for m in frozen:  # a probe keeps the pretrained BatchNorm statistics
            m.eval()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=dist.device)
        hits = torch.zeros((), device=dist.device)
        aux_sum = torch.zeros((), device=dist.device)
        seen = 0
        callback("epoch_start", epoch=epoch, epochs=t.epochs, steps=steps)
        for step, (clips, labels) in enumerate(train_loader):
            for g in opt.param_groups:
                g["lr"] = lr_at(run, epoch + step / steps)
            x = _to_input(clips, dist.device, t.channels_last)
            y = labels.to(dist.device, non_blocking=True)
            with torch.autocast(dist.device.type, dtype=amp or torch.float32, enabled=amp is not None):
                if pretrain:  # the motion hierarchy's InfoNCE alone
                    loss = net(x)
                    logits = torch.zeros(len(y), 1, device=dist.device)
                else:
                    out = net(x)
                    logits, aux_loss = out if aux else (out, None)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=t.label_smoothing)
                if aux:  # plus the motion hierarchy's InfoNCE of this forward pass
                    loss = loss + t.aux_weight * aux_loss
                    aux_sum += aux_loss.detach() * len(y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if t.clip_grad:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(net.parameters(), t.clip_grad)
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
        check_finite((loss_sum / seen).item(), epoch, steps, opt.param_groups[0]["lr"])  # before anything is saved
        last = epoch + 1 == t.epochs
        if not pretrain and (last or (t.eval_every and (epoch + 1) % t.eval_every == 0)):
            callback("eval_start", epoch=epoch)
            logits, labels = predict(model, val_loader, dist.device, amp, t.channels_last, dist,
                                     callback=lambda ev, **kw: callback(ev, epoch=epoch, **kw))
            val = {**classification_metrics(logits, labels), **extra_metrics(run.data.dataset, logits, labels)}
        else:
            val = {}
        history.append({"epoch": epoch + 1, "train_loss": (loss_sum / seen).item(),
                        "train_top1": float("nan") if pretrain else (hits / seen).item(),
                        "train_seconds": train_time, "lr": lr_at(run, epoch + 1 - 1e-9),
                        **({"train_aux_loss": (aux_sum / seen).item()} if aux else {}),
                        **{f"val_{k}": v for k, v in val.items()},
                        **cpu_threads(dist.device)})
        if dist.main:
            _save_checkpoint(ckpt_path, model, opt, scaler, epoch + 1, history, run)
            R.write_history(run_dir, history)
        if board is not None:
            log_epoch(board, history[-1])
        dist.barrier()
        callback("epoch_end", epoch=epoch, epochs=t.epochs, metrics=val, train_seconds=train_time,
                 train_loss=history[-1]["train_loss"], train_top1=history[-1]["train_top1"])
    if dist.main:
        R.write_metrics(run_dir, run_rows(run, history, device_label(dist.device, dist.world)))
    if board is not None:
        log_hparams(board, run, history[-1])
        board.close()
    dist.barrier()
    return {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")}


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
    from .data.datasets import Unlabeled, label_subset

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
    try:
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


def _save_checkpoint(path: Path, model, opt, scaler, epoch: int, history: list, run: RunConfig) -> None:
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict(), "history": history, "config": to_dict(run),
                "run_hash": run.run_hash}, tmp)
    os.replace(tmp, path)


def run_rows(run: RunConfig, history: list[dict], device: str = "") -> list[dict]:
    """Tidy rows of a finished run: final val metrics, last-epoch train loss/top-1, total train seconds. A run
    trained on GPUs carries their name in a last column, ``device`` (CPU runs have none: rows without it)."""
    last = history[-1]
    train = {"loss": last["train_loss"], **({} if math.isnan(last["train_top1"]) else {"top1": last["train_top1"]}),
             "seconds": sum(h["train_seconds"] for h in history),
             **({"aux_loss": last["train_aux_loss"]} if "train_aux_loss" in last else {})}
    rows = (R.result_rows(run, {k[4:]: v for k, v in last.items() if k.startswith("val_")}, "val")
            + R.result_rows(run, train, "train"))
    return [{**r, "device": device} for r in rows] if device else rows


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


def thread_note(resume: dict) -> str:
    """What a resume message adds when a CPU run goes on with another thread count than it trained on."""
    if "threads_before" not in resume:
        return ""
    return (f"; it trained on {resume['threads_before']} CPU threads and goes on with {resume['threads']}, so its "
            "digits will differ from an uninterrupted run's")


def device_label(device: torch.device, world: int = 1) -> str:
    """What a result row records of the device a run trained on: the GPU's name (times the processes of a
    distributed run), or "" on the CPU."""
    if device.type != "cuda":
        return ""
    name = torch.cuda.get_device_name(device)
    return f"{world}x {name}" if world > 1 else name


def read_run_config(path: str | Path) -> RunConfig:
    """The resolved config of a run directory or of a checkpoint file, without building the model."""
    path = Path(path)
    if (R.run_dir_of(path) / R.CONFIG).is_file():
        return R.read_run_config(R.run_dir_of(path))
    return load_run(path, "cpu")[0]


def load_run(path: str | Path, device: str = "auto") -> tuple[RunConfig, torch.nn.Module]:
    """A trained model from a run directory or a checkpoint file, in eval mode."""
    if R.is_exported(path):  # a folder of selfy-lab export: safetensors weights and the run's config
        run, state = R.read_exported(path)
        model, _ = build_run_model(run, select_device(device), pretrained=False)
        load_weights(model, {"model": state}, Path(path) / R.WEIGHTS)
        return run, model.eval()
    ckpt = R.checkpoint_path(path)
    if not ckpt.is_file():
        raise SelfyError(f"no checkpoint at {ckpt}: pass a run directory, a checkpoint.pt file or an exported model")
    ck = read_checkpoint(ckpt, "cpu")
    try:
        run = from_dict(RunConfig, ck["config"])
    except (KeyError, ValueError, TypeError) as e:
        raise SelfyError(f"checkpoint {ckpt} holds no usable run configuration ({_reason(e)})") from None
    dev = select_device(device)
    model, _ = build_run_model(run, dev, pretrained=False)
    load_weights(model, ck, ckpt)
    return run, model.eval()


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {user_message(e)[:120]}"


def read_checkpoint(path: Path, device, run: RunConfig | None = None) -> dict:
    """A checkpoint file read whole, or one line: empty, truncated, not a checkpoint, or (``run`` given) the
    checkpoint of another run than the one resumed."""
    if path.stat().st_size == 0:
        raise SelfyError(f"checkpoint {path} is empty (a run killed while its disk was full?): delete it to train "
                         f"the run from the start")
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, ...: the file cannot be used as it is
        raise SelfyError(f"cannot read checkpoint {path} ({_reason(e)}): it is damaged or not a selfy-lab "
                         f"checkpoint; delete it to train the run from the start") from None
    if not isinstance(ck, dict) or "model" not in ck:
        raise SelfyError(f"{path} is not a selfy-lab checkpoint (no model weights in it)")
    if run is not None and ck.get("run_hash", run.run_hash) != run.run_hash:
        raise SelfyError(f"checkpoint {path} belongs to run {ck['run_hash']}, not to run {run.run_hash} that "
                         f"trains here: move it away or choose another --out")
    return ck


def load_weights(model: torch.nn.Module, ck: dict, path: Path) -> None:
    """A checkpoint's weights into ``model``; a model of another architecture is one line naming the difference."""
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError:
        theirs, mine = set(ck["model"]), set(model.state_dict())
        diff = sorted(theirs ^ mine)
        what = f"e.g. {diff[0]}" if diff else "a tensor's shape"
        raise SelfyError(f"checkpoint {path} holds another architecture than its configuration builds "
                         f"({len(diff)} tensors differ, {what})") from None


def predictions(run: RunConfig, model: torch.nn.Module, split: str = "val", dataset=None,
                callback: Callback = _quiet) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, K) and labels (N,) of a trained ``model`` on ``split`` of the run's dataset (or on
    ``dataset``), every test view of a clip averaged."""
    dev = next(model.parameters()).device
    ds = dataset if dataset is not None else build_dataset(run, split)
    loader = make_loader(ds, run.train.batch_size, run.train.seed, False, run.data.workers)
    return predict(model, loader, dev, _amp(run, dev), run.train.channels_last, callback=callback)


def evaluate(run: RunConfig, model: torch.nn.Module, split: str = "val", dataset=None,
             callback: Callback = _quiet) -> dict[str, float]:
    """Metrics of a trained ``model`` on ``split`` of the run's dataset (or on ``dataset``, e.g. a
    corrupted view of it)."""
    logits, labels = predictions(run, model, split, dataset, callback)
    return {**classification_metrics(logits, labels), **extra_metrics(run.data.dataset, logits, labels)}


@dataclass
class EvalReport:
    """What `selfy-lab eval` found beyond the metrics: the most frequent confusions (true class, predicted
    class, clips, share of the true class) and the files written."""

    confusions: list[tuple[str, str, int, float]]
    files: list[Path]


def evaluate_run(path: str | Path, data_changes: dict | None = None, out: str | Path | None = None,
                 device: str = "auto", callback: Callback = _quiet) -> tuple[RunConfig, dict[str, float], Path, EvalReport]:
    """`selfy-lab eval`: a trained run on its validation split, with the data settings in ``data_changes``
    (re-rooted lists, test clips and crops, ...). Appends tidy rows to ``out`` (default RUN/eval.csv, keyed by
    the trained run's id and the test protocol) and writes, beside it, the confusion matrix (CSV + PNG) and
    per-class accuracy of the protocol."""
    from .config import override
    from .metrics import confusion_matrix, top_confusions
    from .viz import confusion_figure, save_figure

    trained, model = load_run(path, device)
    try:
        run = override(trained, {"data": {k: v for k, v in (data_changes or {}).items() if v is not None}})
    except (ValueError, TypeError) as e:
        raise SelfyError(str(e)) from None
    target = Path(out) if out else R.run_dir_of(path) / R.EVAL
    R.ensure_writable(target.parent)
    ds = build_dataset(run, "val")
    callback("dataset", train=None, val=len(ds), classes=len(ds.class_names))
    logits, labels = predictions(run, model, dataset=ds, callback=callback)
    metrics = {**classification_metrics(logits, labels), **extra_metrics(run.data.dataset, logits, labels)}
    protocol = {"test_clips": run.data.test_clips, "test_crops": run.data.test_crops}
    csv_path = R.append_eval(target, R.result_rows(trained, metrics, "val", "eval", protocol))
    conf = confusion_matrix(logits, labels, len(ds.class_names))
    name = R.eval_protocol(run.data.test_clips, run.data.test_crops)
    files = list(R.write_confusion(target.parent, name, conf, ds.class_names))
    files += save_figure(confusion_figure(conf, ds.class_names, f"{R.run_dir_of(path).name}: {name}, "
                                          f"top-1 {metrics['top1']:.1%}"), target.parent / f"confusion-{name}", ("png",))
    names = ds.class_names
    report = EvalReport([(names[i], names[j], c, share) for i, j, c, share in top_confusions(conf)], files)
    return run, metrics, csv_path, report
