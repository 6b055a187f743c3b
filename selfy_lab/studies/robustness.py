"""Robustness evaluation (Sec. 4.5): trained models on corrupted validation clips, resumably.

The robustness directory (layout and columns: :mod:`selfy_lab.store.results`) holds ``robustness.csv``, tidy rows
per (model, corruption kind, severity, corrupted frames, metric), never recomputed once there, and
``robustness_summary.csv`` derived from it: the clean top-1, the mean corrupted top-1 over severities (mPC)
and the relative robustness rPC = mPC / clean, per model and kind.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config.grammar import parse_int_list
from ..core.errors import SelfyError
from ..data.clips import item_address
from ..data.corrupt import corrupt_tensor, kinds, parse_frames
from ..data.datasets import build_dataset, scored_splits
from ..data.loader import sample_seed
from ..engine.checkpoint import load_run, run_config_of
from ..engine.evaluate import evaluate
from ..store import results as R


class CorruptedClips(torch.utils.data.Dataset):
    """A validation dataset whose clips are corrupted after the test transform, before normalisation."""

    def __init__(self, base, *, kind: str, severity: int, frames: tuple[int, ...], seed: int = 0):
        self.base, self.kind, self.severity, self.frames, self.seed = base, kind, severity, frames, seed
        self.class_names = base.class_names

    def __len__(self) -> int:
        return len(self.base)

    def clip_seed(self, index: int) -> int:
        return sample_seed(self.seed, 0xC0FFEE, index)  # per clip; the same for every model and severity

    def __getitem__(self, item):
        index = item_address(item)[0]
        clip, label = self.base[item]
        s = self.clip_seed(index)
        if clip.dim() == 5:  # two test clips
            clip = torch.stack([corrupt_tensor(c, self.kind, self.severity, self.frames, s) for c in clip])
        else:
            clip = corrupt_tensor(clip, self.kind, self.severity, self.frames, s)
        return clip, label


@dataclass(frozen=True)
class RobustnessPlan:
    models: list[Path]  # run directories or checkpoint files
    kinds: list[str]
    severities: list[int]
    frames: str  # center, all or 1-based numbers
    out: Path
    clips: int = 1  # the test protocol: clips x crops per validation clip, predictions averaged
    crops: int = 1


def plan_robustness(kind_specs: list[str], severity: str | None, frames: str, sweeps: list[Path],
                    checkpoints: list[Path], results_root: Path, out: Path | None, clips: int = 1,
                    crops: int = 1) -> RobustnessPlan:
    """What `selfy-lab corrupt` evaluates: the kinds (names or comma lists), severities (``3``, ``1-6``,
    ``1,3,5``; default all of the kinds), corrupted frames, the models of the given sweeps and checkpoints
    (default: the Table 3a sweep ``results_root``'s README names) and the output directory (default: the
    sweep's robustness directory, or runs/robustness for models of several sweeps or outside any)."""
    table = kinds()
    names = [n.strip() for spec in (kind_specs or ["blur"]) for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown or not names:
        raise SelfyError(f"unknown corruption '{unknown[0] if unknown else ''}': see selfy-lab corrupt --list")
    hi = min(table[n].severities for n in names)
    try:
        levels = list(parse_int_list(severity, "severity", 1, hi)) if severity else list(range(1, hi + 1))
    except ValueError as e:
        which = ", ".join(f"{n} 1-{table[n].severities}" for n in names)
        raise SelfyError(f"{e} (valid range per kind: {which})") from None
    spec = frames.strip().lower()
    if spec not in ("center", "centre", "all"):
        try:
            parse_int_list(spec, "frame", 1)
        except ValueError as e:
            raise SelfyError(f"--corrupted-frames: {e}; use center, all or numbers like 4,5") from None
    models: list[Path] = []
    for s in sweeps:
        models += R.sweep_run_dirs(s)
    for c in checkpoints:
        if not (R.is_exported(c) or R.checkpoint_path(c).is_file()):
            raise SelfyError(f"no model at {c}: pass a run folder, an export folder or a checkpoint.pt file")
        models.append(Path(c))
    if not models:
        models = R.sweep_run_dirs(R.readme_offsets_sweep(results_root))
    if out is None:
        parents = {R.run_dir_of(m).parent.parent for m in models if R.run_dir_of(m).parent.name == R.RUNS_DIR}
        out = R.robustness_dir(parents.pop()) if len(parents) == 1 else Path("runs") / R.ROBUSTNESS_DIR

    for m in models:  # frame numbers must exist in every model's clips
        try:
            parse_frames(spec, run_config_of(m).model.frames)
        except ValueError as e:
            raise SelfyError(f"--corrupted-frames {frames}: {e}; use center, all or numbers like 4,5") from None
    if clips not in (1, 2) or crops not in (1, 3):
        raise SelfyError(f"the test protocol is --clips 1 or 2 and --crops 1 or 3, got {clips} and {crops}")
    return RobustnessPlan(models, names, levels, spec, R.claim_folder(out, R.ROBUSTNESS_OWNED), clips, crops)


@dataclass(frozen=True)
class RobustnessResult:
    """What `selfy-lab corrupt` computed: its robustness table (the summary beside it) and the clips of its
    clean-vs-corrupted strips (:func:`example_clips`), which :func:`selfy_lab.reports.viz.write_robustness_report`
    draws with the curves."""

    table: Path
    examples: list[dict]


def run_plan(plan: RobustnessPlan, seed: int = 0, examples: int = 0, device: str = "auto",
             on_event: Callable[..., None] = lambda e, **k: None, split: str | None = None) -> RobustnessResult:
    """`selfy-lab corrupt`: evaluate a plan, and pick ``examples`` clips per kind for its strips."""
    table = evaluate_robustness(plan.models, plan.kinds, plan.severities, plan.frames, plan.out, seed, device, on_event,
                                plan.clips, plan.crops, split)
    strips = example_clips(plan.models[0], plan.kinds, plan.severities, plan.frames, seed, examples) if examples else []
    return RobustnessResult(table, strips)


def evaluate_robustness(model_paths: list[Path], kind_names: list[str], severities: list[int], frames_spec: str,
                        out: str | Path, seed: int = 0, device: str = "auto",
                        on_event: Callable[..., None] = lambda e, **k: None, clips: int = 1, crops: int = 1,
                        split: str | None = None) -> Path:
    """Evaluate every model on every (kind, severity) with the test protocol ``clips`` x ``crops`` (every view
    of a clip corrupted alike, predictions averaged) on ``split`` (default: each model's reported split, the
    held-out test split where its dataset has one, else val); appends to the robustness table in ``out``,
    skipping finished cells, then rewrites the summary. Writing from uncommitted package code stops as
    :func:`selfy_lab.store.results.check_source` says."""
    out = R.ensure_writable(out)
    R.check_source(out)
    done = R.robustness_cells(out)
    all_kinds = kinds()
    on_event("plan", total=len(model_paths) * len(kind_names) * (len(severities) + 1))
    for mpath in model_paths:
        run = run_config_of(mpath)
        note = R.unfinished_note(mpath)
        weights = R.weights_tag(mpath)  # the cells of an unfinished run's checkpoint count only for those weights
        if note:
            on_event("unfinished", message=note)
        on = split or (scored_splits(run) or ("val",))[-1]
        T = run.model.frames
        model = base = clean = None  # loaded only if some cell of this model is missing
        for kind in kind_names:
            temporal = all_kinds[kind].temporal
            frames = tuple(range(T)) if temporal else parse_frames(frames_spec, T)
            ftag = "all" if temporal else _frames_tag(frames_spec, frames)
            for sev in [0, *severities]:
                key = (run.run_hash, kind, str(sev), ftag if sev else "none", str(clips), str(crops), on, weights)
                if key in done:
                    on_event("cell", skipped=True, run=run, kind=kind, severity=sev)
                    continue
                if model is None:
                    run, model = load_run(mpath, device)
                    base = build_dataset(replace(run, data=replace(run.data, test_clips=clips, test_crops=crops)), on)
                t0 = time.time()
                if sev == 0:
                    clean = clean or evaluate(run, model, dataset=base)  # clean accuracy: once per model
                    metrics = clean
                else:
                    corrupted = CorruptedClips(base, kind=kind, severity=sev, frames=frames, seed=seed)
                    metrics = evaluate(run, model, dataset=corrupted)
                keep = {m: v for m, v in metrics.items() if m in ("top1", "top5", "mean_class", "loss")}
                experiment = "robustness-unfinished" if note else "robustness"  # an unfinished run's rows say so
                R.append_robustness(out, R.result_rows(run, keep, on, experiment,
                                                       {"kind": kind, "severity": sev, "corrupted_frames": key[3],
                                                        "test_clips": clips, "test_crops": crops,
                                                        "weights": weights}))
                done.add(key)
                on_event("cell", skipped=False, run=run, kind=kind, severity=sev, top1=metrics["top1"],
                         seconds=time.time() - t0)
    R.write_robustness_summary(out, summary_rows(R.read_robustness(out)))
    return out / R.ROBUSTNESS_TABLE


def _frames_tag(spec: str, frames: tuple[int, ...]) -> str:
    spec = str(spec).strip().lower()
    return spec if spec in ("center", "centre", "all") else ",".join(str(f + 1) for f in frames)


def summary_rows(rows: list[dict]) -> list[dict]:
    """mPC (mean top-1 over the corrupted severities) and rPC = mPC / clean, per model and kind."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        if r["metric"] != "top1":
            continue
        protocol = tuple(r.get(k) or R.PROTOCOL_DEFAULTS[k] for k in R.EVAL_KEYS)  # older rows: the 1 x 1 test
        key = (r["run_id"], r["kind"], protocol, r.get("split") or "val")
        g = groups.setdefault(key, {"meta": r, "clean": None, "corrupted": {}})
        if r["severity"] == "0":
            g["clean"] = float(r["value"])
        else:
            g["corrupted"][(r["severity"], r["corrupted_frames"])] = float(r["value"])
            g["corrupted_frames"] = r["corrupted_frames"]
    summary = []
    for (run_id, kind, (clips, crops), split), g in groups.items():
        if g["clean"] is None or not g["corrupted"]:
            continue
        mpc = float(np.mean(list(g["corrupted"].values())))
        meta = {k: g["meta"].get(k, "") for k in ("run_id", *R.VARIANT_FIELDS, "seed")}
        for metric, value in (("clean_top1", g["clean"]), ("mPC", mpc),
                              ("rPC", mpc / g["clean"] if g["clean"] else float("nan"))):
            summary.append({**meta, "kind": kind, "corrupted_frames": g.get("corrupted_frames", ""), "test_clips": clips,
                            "test_crops": crops, "split": split, "metric": metric, "value": value})
    return summary


def example_clips(model_path: Path, kind_names: list[str], severities: list[int], frames_spec: str, seed: int,
                  n: int) -> list[dict]:
    """``n`` validation clips per kind for clean-vs-corrupted strips (Fig. 5c): each its ``kind``, clip index
    ``idx``, ``clip`` (uint8 (T, H, W, 3), before corruption), ``severities``, corrupted ``frames``, the
    per-clip ``seed`` the evaluation corrupts it with, and a ``title``."""
    run = run_config_of(model_path)
    base = build_dataset(run, "val")
    if n > len(base):
        raise SelfyError(f"--examples {n}: the validation split holds {len(base)} clips; ask for at most {len(base)}")
    step = max(1, len(base) // n)
    frames = parse_frames(frames_spec, run.model.frames)
    out = []
    for k in kind_names:
        for i in range(n):
            idx = i * step
            clip, label = base[(idx, 0)]
            clip = clip[0] if clip.dim() == 5 else clip
            out.append({"kind": k, "idx": idx, "clip": clip.permute(0, 2, 3, 1).numpy(), "severities": list(severities),
                        "frames": frames, "seed": CorruptedClips(base, kind=k, severity=1, frames=frames, seed=seed).clip_seed(idx),
                        "title": f"{k}, clip {idx}: {base.class_names[label]}"})
    return out
