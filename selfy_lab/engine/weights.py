"""Pretrained backbone weights: torchvision's ImageNet weights (online or from its cache) or a local
torchvision-format state dict. Files are always read with ``torch.load(..., weights_only=True)``.

Every backbone tensor must land (strict on the backbone); torchvision's 1000-way classifier is dropped
and the keys that are new (SELFY blocks, our head) are reported.
"""
from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch
import torch.nn as nn
from torchvision import models as tvm

from ..core.errors import SelfyError, user_message
from ..store import results as R

# the ImageNet weights TSN/TSM/SELFY were trained from (torchvision's original V1 release)
IMAGENET = {18: tvm.ResNet18_Weights.IMAGENET1K_V1, 34: tvm.ResNet34_Weights.IMAGENET1K_V1,
            50: tvm.ResNet50_Weights.IMAGENET1K_V1}


def imagenet_cache_path(depth: int) -> Path:
    url = IMAGENET[depth].url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def fetch_imagenet(depth: int) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict for ResNet-``depth`` from the cache, else downloaded into it."""
    path = imagenet_cache_path(depth)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(IMAGENET[depth].url, str(path), progress=True)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise SelfyError(
                f"ImageNet weights for ResNet-{depth} are not cached and cannot be downloaded ({type(e).__name__}): "
                f"copy {path.name} from {IMAGENET[depth].url} to {path} or pass a state-dict file as --pretrained PATH"
            ) from None
    return read_state_dict(path)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    return _state_dict_of(_read(path), Path(path))


def _read(path: str | Path):
    """The object a weights file holds (read once; every failure is one line)."""
    path = Path(path)
    if not path.is_file():
        raise SelfyError(f"weights file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle / zip errors of every kind: the file is not a plain state dict
        raise SelfyError(f"cannot read {path} as a state dict ({type(e).__name__}: {user_message(e)[:120]})") from None


def _state_dict_of(sd, path: Path) -> dict[str, torch.Tensor]:
    """A torchvision-format state dict from what a weights file holds."""
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise SelfyError(f"{path} does not hold a state dict of tensors")
    if all(k.startswith("module.") for k in sd):  # saved from DataParallel / DDP
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _weights_file(source: str | Path) -> Path:
    """The file behind ``--pretrained``: a run directory's checkpoint.pt, else the path itself."""
    path = Path(source)
    if path.is_dir():
        path = R.checkpoint_path(path)
        if not path.is_file():
            hint = "pass a run directory of selfy-lab train / pretrain or a weights file"
            if (Path(source) / R.CONFIG).is_file():  # a run whose checkpoint was not kept (results/ holds none)
                run = R.read_run_config(source)
                cmd = (f"selfy-lab pretrain --method hcml --seed {run.train.seed} --out {source}"
                       if run.train.objective == "hcml" else f"the command that trained it, with --out {source}")
                hint = f"its checkpoint was not kept; train it again ({cmd})"
            raise SelfyError(f"{source} holds no {R.CHECKPOINT}: {hint}")
    return path


def _run_model_state(ck, path: Path, source) -> dict[str, torch.Tensor] | None:
    """The model state dict when ``ck`` is a selfy-lab run checkpoint (e.g. one ``selfy-lab pretrain`` wrote),
    else None; a run that has not finished is refused."""
    if not (isinstance(ck, dict) and isinstance(ck.get("model"), dict) and "config" in ck):
        return None
    if not R.is_finished(path.parent):
        epochs = ck["config"].get("train", {}).get("epochs", "?")
        raise SelfyError(f"{source} has not finished (epoch {ck.get('epoch', '?')} of {epochs}): finish it "
                         f"first (re-run its command), then train from it")
    return ck["model"]


def load_pretrained(model: nn.Module, source: str, depth: int, width: int = 64) -> dict:
    """Load ``source`` (``none``, ``imagenet``, a torchvision-format file, or a selfy-lab run directory /
    checkpoint) into ``model.backbone`` (and, from a run, into its motion hierarchy); returns a report whose
    ``prefixes`` name the loaded parts."""
    if source in ("", "none", None):
        return {"source": "none", "loaded": 0, "new": [n for n, _ in model.named_parameters()], "prefixes": []}
    if source == "imagenet":
        if width != 64:
            raise SelfyError("ImageNet weights exist only for the full-width backbones: drop the -wN suffix or use --pretrained none")
        sd = fetch_imagenet(depth)
    elif R.is_exported(source):  # selfy-lab export: a run's weights as safetensors
        return _load_run_parts(model, R.read_exported(source)[1], source)
    elif Path(str(source)).name == R.WEIGHTS and R.is_exported(Path(str(source)).parent):
        # the export's weights file named instead of its folder: the folder holds the configuration they need
        return _load_run_parts(model, R.read_exported(Path(str(source)).parent)[1], str(Path(str(source)).parent))
    elif str(source).endswith(".safetensors"):
        raise SelfyError(f"{source}: a safetensors file without the config.yaml of a selfy-lab export beside it; pass "
                         "the export folder (selfy-lab export RUN --out DIR writes both), or torchvision-format "
                         "ResNet weights (.pth)")
    else:
        path = _weights_file(source)
        ck = _read(path)
        run_sd = _run_model_state(ck, path, source)
        if run_sd is not None:
            return _load_run_parts(model, run_sd, source)
        sd = _state_dict_of(ck, path)
    sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}  # torchvision's classifier: ours replaces it
    own = model.backbone.state_dict()
    # 2017-era torchvision files predate BN's num_batches_tracked; BatchNorm fills it in on load
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise SelfyError(
            f"{source} does not match the ResNet-{depth} backbone ({len(missing)} missing, {len(unexpected)} unexpected "
            f"tensors, e.g. {what}): pass torchvision-format ResNet-{depth} weights"
        )
    bad = [k for k in sd if own[k].shape != sd[k].shape]
    if bad:
        raise SelfyError(f"{source}: tensor {bad[0]} has shape {tuple(sd[bad[0]].shape)}, the backbone needs {tuple(own[bad[0]].shape)}")
    model.backbone.load_state_dict(sd, strict=True)
    new = [n for n, _ in model.named_parameters() if not n.startswith("backbone.")]
    return {"source": str(source), "loaded": len(sd), "new": new, "prefixes": ["backbone."]}


def _load_run_parts(model: nn.Module, sd: dict[str, torch.Tensor], source: str) -> dict:
    """A selfy-lab run's backbone, and its motion hierarchy where both have one (a model with a hierarchy
    from a run without one starts its hierarchy afresh; the reverse is refused, not to drop what was
    pretrained); every tensor of a loaded part must fit, the classifier and the blocks are not taken."""
    has_hierarchy = any(k.startswith("hierarchy.") for k in sd)
    prefixes = ["backbone."] + (["hierarchy."] if getattr(model, "hierarchy", None) is not None and has_hierarchy else [])
    if "hierarchy." not in prefixes and has_hierarchy:
        raise SelfyError(f"{source} was trained with a motion hierarchy and this model has none: pass the same "
                         f"--hierarchy and --hierarchy-levels to use it")
    own = model.state_dict()
    for prefix in prefixes:
        mine = {k for k in own if k.startswith(prefix) and not k.endswith("num_batches_tracked")}
        theirs = {k for k in sd if k.startswith(prefix) and not k.endswith("num_batches_tracked")}
        if mine != theirs or any(own[k].shape != sd[k].shape for k in mine):
            what = prefix.rstrip(".")
            raise SelfyError(f"{source}: its {what} does not match this model's ({len(mine ^ theirs)} tensors differ, "
                             f"e.g. {sorted(mine ^ theirs)[:1] or 'a shape'}): use the same backbone and hierarchy")
    take = {k: v for k, v in sd.items() if any(k.startswith(p) for p in prefixes)}
    model.load_state_dict(take, strict=False)
    new = [n for n, _ in model.named_parameters() if not any(n.startswith(p) for p in prefixes)]
    return {"source": str(source), "loaded": len(take), "new": new, "prefixes": prefixes}
