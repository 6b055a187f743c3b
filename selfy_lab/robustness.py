"""Robustness evaluation (Sec. 4.5): trained models on corrupted validation clips, resumably.

``OUT/robustness.csv`` holds tidy rows (run, variant fields, seed, kind, severity, corrupted_frames, metric,
value, provenance), one per (model, corruption kind, severity, corrupted frames, metric); finished cells are
never recomputed. ``OUT/robustness_summary.csv`` is derived from it: the clean top-1, the mean corrupted
top-1 over severities (mPC) and the relative robustness rPC = mPC / clean, per model and kind.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .corrupt import corrupt_tensor, kinds, parse_frames
from .data.loader import sample_seed
from .errors import SelfyError
from .results import PROVENANCE, VARIANT_FIELDS, append_rows, provenance, read_csv, write_csv

# "frames" (a variant field) is the clip length; "corrupted_frames" says which frames a corruption touched
ROBUSTNESS_COLUMNS = ("experiment", "run_id", *VARIANT_FIELDS, "seed", "kind", "severity", "corrupted_frames", "split",
                      "metric", "value", *PROVENANCE)
SUMMARY_COLUMNS = ("run_id", *VARIANT_FIELDS, "seed", "kind", "corrupted_frames", "metric", "value")


class CorruptedClips(torch.utils.data.Dataset):
    """A validation dataset whose clips are corrupted after the test transform, before normalisation."""

    def __init__(self, base, kind: str, severity: int, frames: tuple[int, ...], seed: int = 0):
        self.base, self.kind, self.severity, self.frames, self.seed = base, kind, severity, frames, seed
        self.class_names = base.class_names

    def __len__(self) -> int:
        return len(self.base)

    def clip_seed(self, index: int) -> int:
        return sample_seed(self.seed, 0xC0FFEE, index)  # per clip; the same for every model and severity

    def __getitem__(self, item):
        index = item[0] if isinstance(item, tuple) else item
        clip, label = self.base[item]
        s = self.clip_seed(index)
        if clip.dim() == 5:  # two test clips
            clip = torch.stack([corrupt_tensor(c, self.kind, self.severity, self.frames, s) for c in clip])
        else:
            clip = corrupt_tensor(clip, self.kind, self.severity, self.frames, s)
        return clip, label


def find_sweep_models(root: str | Path = "results") -> list[Path]:
    """Run directories (with checkpoints) of the most recent offsets sweep under ``root``."""
    import yaml

    root = Path(root)
    sweeps = []
    for f in root.glob("**/sweep.yaml"):
        try:
            rec = yaml.safe_load(f.read_text())
        except Exception:  # an unreadable record is not a sweep
            continue
        if is_offsets_sweep(rec):
            sweeps.append(f.parent)
    if not sweeps:
        raise SelfyError(f"no offsets sweep under {root}: run 'selfy-lab ablate --offsets -3..3 --out {root}/<name>' "
                         f"first, or pass --sweep DIR / --checkpoint PATH")
    latest = max(sweeps, key=lambda d: (d / "sweep.yaml").stat().st_mtime)
    return sweep_models(latest)


def is_offsets_sweep(record: dict) -> bool:
    """A sweep whose runs differ only in their offsets (and seed), with at least two offset values."""
    runs = [r for r in record.get("runs") or [] if isinstance(r, dict)]
    if len({r.get("offsets") for r in runs}) < 2:
        return False
    others = {tuple((k, r.get(k)) for k in VARIANT_FIELDS if k not in ("offsets", "block", "window", "extractor",
                                                                         "integrator", "similarity", "fusion", "position"))
              for r in runs}
    selfy = {tuple((k, r.get(k)) for k in VARIANT_FIELDS if k != "offsets") for r in runs if r.get("block") != "none"}
    return len(others) == 1 and len(selfy) <= 1


def sweep_models(sweep_dir: str | Path) -> list[Path]:
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / "runs").is_dir():
        raise SelfyError(f"{sweep_dir} is not a sweep directory (no runs/): pass the --out of a selfy-lab ablate run")
    runs = sorted(d for d in (sweep_dir / "runs").iterdir() if (d / "checkpoint.pt").exists() and (d / "metrics.csv").exists())
    if not runs:
        raise SelfyError(f"{sweep_dir} has no finished runs with checkpoints")
    return runs


def evaluate_robustness(model_paths: list[Path], kind_names: list[str], severities: list[int], frames_spec: str,
                        out: str | Path, seed: int = 0, device: str = "auto",
                        on_event: Callable[..., None] = lambda e, **k: None) -> Path:
    """Evaluate every model on every (kind, severity); appends to OUT/robustness.csv, skipping finished cells."""
    from .data.datasets import build_dataset
    from .train import evaluate, load_run, read_run_config

    out = Path(out)
    path = out / "robustness.csv"
    done = {(r["run_id"], r["kind"], r["severity"], r["corrupted_frames"]) for r in read_csv(path)}
    all_kinds = kinds()
    on_event("plan", total=len(model_paths) * len(kind_names) * (len(severities) + 1))
    clean: dict[str, dict] = {}
    for mpath in model_paths:
        run = read_run_config(mpath)
        T = run.model.frames
        model = base = None  # loaded only if some cell of this model is missing
        for kind in kind_names:
            temporal = all_kinds[kind].temporal
            frames = tuple(range(T)) if temporal else parse_frames(frames_spec, T)
            ftag = "all" if temporal else _frames_tag(frames_spec, frames)
            for sev in [0, *severities]:
                key = (run.run_hash, kind, str(sev), ftag if sev else "none")
                if key in done:
                    on_event("cell", skipped=True, run=run, kind=kind, severity=sev)
                    continue
                if model is None:
                    run, model = load_run(mpath, device)
                    base = build_dataset(run, "val")
                t0 = time.time()
                if sev == 0 and run.run_hash in clean:
                    metrics = clean[run.run_hash]  # clean accuracy: evaluated once per model
                else:
                    metrics = evaluate(run, model, dataset=base if sev == 0 else CorruptedClips(base, kind, sev, frames, seed))
                    if sev == 0:
                        clean[run.run_hash] = metrics
                rows = [{"experiment": "robustness", "run_id": run.run_hash, **run.model.variant(), "seed": run.train.seed,
                         "kind": kind, "severity": sev, "corrupted_frames": key[3], "split": "val", "metric": m, "value": v,
                         **provenance(run.run_hash)} for m, v in metrics.items() if m in ("top1", "top5", "mean_class", "loss")]
                append_rows(path, rows, key=("run_id", "kind", "severity", "corrupted_frames", "metric"),
                            columns=ROBUSTNESS_COLUMNS)
                done.add(key)
                on_event("cell", skipped=False, run=run, kind=kind, severity=sev, top1=metrics["top1"],
                         seconds=time.time() - t0)
    write_summary(out)
    return path


def _frames_tag(spec: str, frames: tuple[int, ...]) -> str:
    spec = str(spec).strip().lower()
    return spec if spec in ("center", "centre", "all") else ",".join(str(f + 1) for f in frames)


def write_summary(out: str | Path) -> Path:
    """mPC (mean top-1 over the corrupted severities) and rPC = mPC / clean, per model and kind."""
    out = Path(out)
    rows = [r for r in read_csv(out / "robustness.csv") if r["metric"] == "top1"]
    groups: dict[tuple, dict] = {}
    for r in rows:
        g = groups.setdefault((r["run_id"], r["kind"]), {"meta": r, "clean": None, "corrupted": {}})
        if r["severity"] == "0":
            g["clean"] = float(r["value"])
        else:
            g["corrupted"][(r["severity"], r["corrupted_frames"])] = float(r["value"])
            g["corrupted_frames"] = r["corrupted_frames"]
    summary = []
    for (run_id, kind), g in groups.items():
        if g["clean"] is None or not g["corrupted"]:
            continue
        mpc = float(np.mean(list(g["corrupted"].values())))
        meta = {k: g["meta"][k] for k in ("run_id", *VARIANT_FIELDS, "seed")}
        for metric, value in (("clean_top1", g["clean"]), ("mPC", mpc), ("rPC", mpc / g["clean"] if g["clean"] else float("nan"))):
            summary.append({**meta, "kind": kind, "corrupted_frames": g.get("corrupted_frames", ""), "metric": metric,
                            "value": value})
    return write_csv(out / "robustness_summary.csv", summary, SUMMARY_COLUMNS)


def load_robustness(path: str | Path):
    import pandas as pd

    p = Path(path)
    f = p / "robustness.csv" if p.is_dir() else p
    df = pd.read_csv(f, dtype={"offsets": str, "window": str, "corrupted_frames": str})
    df["value"] = df["value"].astype(float)
    return df
