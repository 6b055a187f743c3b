"""A run's model: built from its configuration with its seed's initialisation and pretrained weights
(:func:`build_run_model`), saved after every epoch (:func:`save_checkpoint`, atomic) and loaded back from a run
directory, a checkpoint file or an exported folder (:func:`load_run`), every damaged or foreign file one line."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..config.run import RunConfig
from ..core.errors import SelfyError, user_message
from ..core.frozen import from_dict, to_dict
from ..core.runtime import channels_last, select_device
from ..data.loader import sample_seed
from ..models import build_model
from ..store import results as R
from .weights import load_pretrained

INIT_STREAM = 2**31 - 1  # the "epoch" of the seed stream that initialises the weights (epochs count from 0)


def build_run_model(run: RunConfig, device: torch.device, *, pretrained: bool = True):
    """The run's network on ``device`` (channels-last where asked), with its pretrained backbone. The random
    initialisation is a function of the run's seed alone, whatever the process drew before (other runs of
    a sweep, a test)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sample_seed(run.train.seed, INIT_STREAM, 0))
        model = build_model(run.model)
    report = load_pretrained(model, run.model.pretrained, run.model.depth, run.model.width) if pretrained else None
    model = model.to(device)
    if run.train.channels_last:
        model = channels_last(model)
    return model, report


def save_checkpoint(path: Path, model, opt, scaler, epoch: int, history: list, run: RunConfig) -> None:
    """The run's state after ``epoch`` epochs (weights, optimiser, scaler, history, config), written atomically."""
    tmp = path.with_suffix(".pt.tmp")
    try:
        torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scaler": scaler.state_dict(), "history": history, "config": to_dict(run),
                    "run_hash": run.run_hash}, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # a full disk: the previous epoch's checkpoint stays whole
        tmp.unlink(missing_ok=True)
        raise SelfyError(f"cannot write checkpoint {path} ({reason(e)}): free some space and run the same command "
                         f"again; it resumes from the last checkpoint written") from None


def run_config_of(path: str | Path) -> RunConfig:
    """The resolved config of a run directory, a checkpoint file or an exported folder, without building the model
    where the folder holds its config.yaml."""
    path = Path(path)
    folder = R.run_dir_of(path)
    if (folder / R.CONFIG).is_file():
        run = R.read_run_config(folder)
        ckpt = R.checkpoint_path(path)
        if not R.is_exported(path) and ckpt.is_file():  # the weights' own config must agree (cheap: no model)
            ck = read_checkpoint(ckpt, "cpu", mmap=True)  # the config only: no tensor is read from disk
            if ck.get("run_hash") not in (None, run.run_hash):
                check_same_run(run, from_dict(RunConfig, ck["config"]), ckpt)
        return run
    return load_run(path, "cpu")[0]


def load_run(path: str | Path, device: str = "auto") -> tuple[RunConfig, torch.nn.Module]:
    """A trained model from a run directory or a checkpoint file, in eval mode."""
    if R.is_exported(path):  # a folder of selfy-lab export: safetensors weights and the run's config
        run, state = R.read_exported(path)  # checks the weights' run key against the folder's config.yaml
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
        raise SelfyError(f"checkpoint {ckpt} holds no usable run configuration ({reason(e)})") from None
    if (ckpt.parent / R.CONFIG).is_file():  # the run folder's config.yaml must be the one the weights trained with
        check_same_run(R.read_run_config(ckpt.parent), run, ckpt)
    dev = select_device(device)
    model, _ = build_run_model(run, dev, pretrained=False)
    load_weights(model, ck, ckpt)
    return run, model.eval()


def check_same_run(written: RunConfig, trained: RunConfig, weights: Path) -> None:
    """Stop with one line when a run folder's config.yaml (``written``) is not the configuration its weights
    were trained with (``trained``; edited by hand, or copied from another run), naming the fields that differ."""
    if written.run_hash == trained.run_hash:
        return
    diff = R.config_difference(trained, written)
    shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
    raise SelfyError(f"{weights.parent / R.CONFIG} is not the configuration {weights.name} was trained with "
                     f"({shown or 'the run keys differ'}): restore it, or train the edited configuration as a "
                     f"new run")


def reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {user_message(e)[:120]}"


def read_checkpoint(path: Path, device, run: RunConfig | None = None, mmap: bool = False) -> dict:
    """A checkpoint file read whole (``mmap``: its tensors mapped, read only when touched), or one line: empty,
    truncated, not a checkpoint, or (``run`` given) the checkpoint of another run than the one resumed."""
    if path.stat().st_size == 0:
        raise SelfyError(f"checkpoint {path} is empty (a run killed while its disk was full?): delete it to train "
                         f"the run from the start")
    try:
        ck = torch.load(path, map_location=device, weights_only=True, mmap=mmap)
    except Exception as e:  # truncated zip, foreign pickle, ...: the file cannot be used as it is
        raise SelfyError(f"cannot read checkpoint {path} ({reason(e)}): it is damaged or not a selfy-lab "
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
