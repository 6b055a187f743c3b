"""Presets (partial configurations applied on top of the defaults) and :func:`resolve`, which layers
defaults -> preset -> dataset conventions -> experiment file -> flags into a :class:`RunConfig`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import SelfyError
from ..core.frozen import deep_merge, from_dict
from ..core.textfiles import read_lines
from .run import RunConfig
from .vocabulary import DATASETS

# Presets: partial configs applied on top of the defaults (then dataset conventions, YAML, flags).
PRESETS: dict[str, dict[str, Any]] = {
    # seconds: for tests and for checking an installation
    "smoke": dict(
        model=dict(backbone="tsn-r18-w8", frames=4, window=(5, 5), reduce=1, dropout=0.0),
        data=dict(size=32, synthetic_train=64, synthetic_val=32, synthetic_test=32, workers=0,
                  synthetic_distractors=1),
        train=dict(epochs=1, batch_size=16, optimizer="adamw", lr=0.002, weight_decay=0.05, schedule="cosine",
                   warmup=0, lr_steps=()),
    ),
    # the CPU default on the built-in benchmark (tuned on seeds >= 100, results/tuning/): narrow TSN-R18 from
    # scratch at 64x64. The STSS takes the reference code's per-position reduction (res3's 8x8 -> 4x4, as
    # 28x28 -> 14x14 at 224) with a 3x3 window (+-25% of the frame, as 9x9 on 14x14). From scratch, the
    # block's last BN starts at 1 (zero_init false): it learns from the first step, and the classifier starts
    # at std 0.01 (TSN's 0.001 left some seeds at the uniform prediction for epochs; results/tuning/README.md). Learning follows the clips seen, and a batch of 32 costs less per clip
    # than 16 on a CPU; no dropout; validation after the last epoch only.
    "quick": dict(
        model=dict(backbone="tsn-r18-w16", frames=8, reduce=0, window=(3, 3), dropout=0.0, zero_init=False,
                   head_std=0.01),
        data=dict(size=64, workers=0, synthetic_distractors=0),
        train=dict(epochs=6, batch_size=32, optimizer="adamw", lr=0.004, weight_decay=0.05, schedule="cosine",
                   warmup=1, lr_steps=(), eval_every=0),
    ),
    # the paper's recipe (Appendix A: lr 0.01, x0.1 at 30/40 of 50 epochs) with its reference script's SGD +
    # Nesterov, dropout 0.5, gradient clipping 20 and batch 64
    "paper": dict(model=dict(pretrained="imagenet", dropout=0.5), data=dict(size=224), train=dict()),
}
# the paper (Appendix A): Diving-48 and FineGym use a cosine schedule with 10 warm-up epochs, 30 / 40 epochs
PAPER_DATASET_TRAIN = {
    "diving48": dict(schedule="cosine", warmup=10, epochs=30, lr_steps=()),
    "gym99": dict(schedule="cosine", warmup=10, epochs=40, lr_steps=()),
    "gym288": dict(schedule="cosine", warmup=10, epochs=40, lr_steps=()),
}


def custom_classes(data: dict[str, Any]) -> int:
    """The class count of ``--dataset custom``: the names in its categories file (``--categories``, else
    DATA_ROOT/categories.txt), one a line."""
    path = data.get("categories") or (Path(data["data_root"]) / "categories.txt" if data.get("data_root") else None)
    if not path:
        raise ValueError("--dataset custom takes its classes from a file, one name a line: pass --categories FILE "
                         "(or --data-root DIR holding categories.txt)")
    if not Path(path).is_file():
        raise ValueError(f"--dataset custom: the categories file {path} does not exist (one class name a line)")
    try:
        names = [n.strip() for n in read_lines(path) if n.strip()]
    except SelfyError as e:
        raise ValueError(str(e)) from None
    if len(names) < 2:
        raise ValueError(f"--dataset custom: {path} names {len(names)} class(es); a classifier needs at least 2")
    return len(names)


def resolve(preset: str = "paper", dataset: str | None = None, overrides: dict[str, Any] | None = None,
            experiment: str = "") -> RunConfig:
    """defaults -> preset -> dataset conventions -> ``overrides`` (YAML, then flags) -> RunConfig."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}': choose from {', '.join(PRESETS)}")
    layers: list[dict[str, Any]] = [PRESETS[preset]]
    overrides = dict(overrides or {})
    ds = dataset or (overrides.get("data") or {}).get("dataset") or "synthetic"
    if ds not in DATASETS:
        raise ValueError(f"unknown dataset '{ds}': choose from {', '.join(DATASETS)}")
    classes = DATASETS[ds]["num_classes"] or custom_classes(overrides.get("data") or {})
    layers.append(dict(model=dict(num_classes=classes), data=dict(dataset=ds)))
    if preset == "paper" and ds in PAPER_DATASET_TRAIN:
        layers.append(dict(train=PAPER_DATASET_TRAIN[ds]))
    if preset != "paper" and ds != "synthetic":
        layers.append(dict(data=dict(size=112)))  # real frames: keep the CPU presets small, not 64
    layers.append(overrides)
    merged = deep_merge(*layers)
    merged["preset"] = preset
    merged["experiment"] = experiment
    return from_dict(RunConfig, merged)
