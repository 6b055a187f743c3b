"""Models a colleague can load: a trained run written as safetensors weights, the run's configuration and a
model card (``selfy-lab export``), and the reading of such a folder wherever a run is accepted.

The folder holds no pickled code: ``model.safetensors`` (the model's state dict, tensors only),
``config.yaml`` (the resolved run configuration it was trained with) and ``README.md`` (architecture, data,
recipe, seed, validation metrics with the command that measured them, the git revision that trained it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from safetensors import safe_open
from safetensors.torch import save_file

from ..config.run import RunConfig
from ..core.errors import SelfyError
from ..core.frozen import to_dict
from ..core.textfiles import current_umask
from ..engine.checkpoint import load_run
from ..store import results as R


CARD_MARK = "<!-- written by selfy-lab export -->"


def _ours(path: Path) -> bool:
    """Did ``selfy-lab export`` write this file of an export folder?"""
    if path.name == R.WEIGHTS:
        try:
            with safe_open(str(path), "pt") as f:
                return (f.metadata() or {}).get("format") == "selfy-lab"
        except Exception:  # not a safetensors file at all
            return False
    if path.name == R.HUB_CONFIG:
        try:
            return json.loads(path.read_text()).get("library_name") == "selfy-lab"
        except (OSError, ValueError, AttributeError):
            return False
    if path.name == R.MODEL_CARD:
        try:
            return CARD_MARK in path.read_text(errors="replace")
        except OSError:
            return False
    try:
        R.read_run_config(path.parent)
        return True
    except SelfyError:
        return False


def export_run(run_dir: str | Path, out: str | Path, force: bool = False) -> list[Path]:
    """Write the finished run ``run_dir`` to ``out`` (weights, config, model card); returns the files. A file of
    those names already in ``out`` stops with one line, and nothing is written: one the user wrote always, an
    earlier export unless ``force`` (which replaces only the files an export wrote)."""
    if R.is_exported(run_dir):
        raise SelfyError(f"{run_dir} is an export already: copy the folder as it is, or export the run it came "
                         "from (its run folder)")
    run_dir = R.run_dir_of(run_dir)
    if not R.is_finished(run_dir):
        raise SelfyError(f"{run_dir} has not finished ({R.metrics_problem(run_dir)}): finish it first, then export it")
    out = R.claim_folder(out, (R.WEIGHTS, R.CONFIG, R.HUB_CONFIG, R.MODEL_CARD))  # a folder of the user's stops
    targets = [out / R.WEIGHTS, out / R.CONFIG, out / R.HUB_CONFIG, out / R.MODEL_CARD]
    existing = [p for p in targets if p.exists()]
    foreign = [p for p in existing if p.is_dir() or not _ours(p)]
    if foreign:
        raise SelfyError(f"{foreign[0]} exists and was not written by selfy-lab export: nothing was written; move it "
                         "or choose another --out")
    if existing and not force:
        raise SelfyError(f"{out} already holds an export: pass --force to replace it (only the export's "
                         f"{len(targets)} files), or choose another --out")
    run, model = load_run(run_dir, "cpu")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = out / f".{R.WEIGHTS}.tmp"
    try:
        save_file(state, str(tmp), metadata={"run_hash": run.run_hash, "format": "selfy-lab"})
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, out / R.WEIGHTS)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SelfyError(f"cannot write {out / R.WEIGHTS} ({e.strerror or type(e).__name__}): free some space and "
                         "export again") from None
    R.write_run_config(out, run)
    R.atomic_write_text(out / R.HUB_CONFIG, hub_config(run, run_dir))
    R.atomic_write_text(out / R.MODEL_CARD, model_card(run, run_dir).rstrip("\n") + f"\n\n{CARD_MARK}\n")
    return targets


def hub_config(run: RunConfig, run_dir: Path) -> str:
    """config.json: what hub tooling reads of a model folder (library, architecture, classes, input), beside
    the whole configuration that ``config.yaml`` holds."""
    m, d = run.model, run.data
    return json.dumps({"library_name": "selfy-lab", "model_type": "selfynet" if m.block != "none" else m.backbone,
                       "architectures": [f"{m.backbone}+{m.block}"], "num_classes": m.num_classes,
                       "num_frames": m.frames, "image_size": d.size, "dataset": d.dataset, "run_id": run.run_hash,
                       "selfy_lab_config": to_dict(run)}, indent=1, default=str) + "\n"


def card_metadata(run: RunConfig, run_dir: Path) -> str:
    """The model card's YAML front matter (library, license, tags, dataset, metrics), as hub tooling reads it."""
    val = R.read_metrics(run_dir)
    meta = {"library_name": "selfy-lab", "license": "mit", "pipeline_tag": "video-classification",
            "tags": ["video-classification", "action-recognition", "self-similarity", run.model.backbone,
                     run.model.block],
            "datasets": [run.data.dataset],
            "metrics": ["accuracy"],
            "model-index": [{"name": f"{run.model.backbone}+{run.model.block}-{run.run_hash}", "results": [{
                "task": {"type": "video-classification"}, "dataset": {"name": run.data.dataset, "type": run.data.dataset},
                "metrics": [{"type": "accuracy", "name": f"{k} (validation)", "value": round(100 * val[k], 2)}
                            for k in ("top1", "top5") if k in val]}]}]}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n"


def model_card(run: RunConfig, run_dir: Path) -> str:
    """The README of an exported model, from its run's files."""
    m, d, t = run.model, run.data, run.train
    val = R.read_metrics(run_dir)
    rows = R.read_csv(run_dir / R.METRICS)
    rev = rows[0].get("git_rev", "") if rows else ""
    v = run.variant()
    block = "none (the plain backbone)" if m.block == "none" else f"{m.block} at {v['position']}" + (
        f", offsets {v['offsets']}, window {v['window']}" if v["offsets"] != "none" else "")
    data = "the built-in motion benchmark (selfy_lab.data.synthetic)" if d.dataset == "synthetic" else d.dataset
    top = "".join(f"| {k} | {100 * val[k]:.1f} % |\n" for k in ("top1", "top5", "order_pairs_binary") if k in val)
    return card_metadata(run, run_dir) + f"""# {m.backbone} + {m.block} ({run.run_hash})

A SELFYNet model trained with selfy-lab.

| | |
|---|---|
| architecture | {m.backbone}, {m.frames} frames, block {block}, hierarchy {v['hierarchy']} |
| data | {data}, {d.size}x{d.size} crops, {"all" if d.label_fraction == 1 else f"{d.label_fraction:.0%} of the"} training labels |
| recipe | {run.preset} preset: {t.optimizer} lr {t.lr:g}, {t.schedule} schedule, {t.epochs} epochs, batch {t.batch_size}, weight decay {t.weight_decay:g} |
| seed | {t.seed} |
| trained by | selfy-lab at git revision {rev or 'unrecorded'} |

Validation, measured by the run that trained it ({d.test_clips} clip x {d.test_crops} crop; `selfy-lab eval DIR`
measures it again; on a real dataset `--clips 2 --crops 3` is the paper's protocol):

| metric | value |
|---|---|
{top}
Load it where a run is accepted: `selfy-lab eval DIR`, `selfy-lab cam --checkpoint DIR`,
`selfy-lab stss --checkpoint DIR`, `selfy-lab corrupt --checkpoint DIR`, or `--pretrained DIR` to start a
new run from its backbone. `config.yaml` is the full resolved configuration it was trained with
(`selfy_lab.store.results.read_run_config` reads it; its run key is {run.run_hash}).

```python
from selfy_lab.engine.checkpoint import load_run
run, model = load_run("DIR")   # eval mode; input (B, T, 3, H, W) normalised frames -> (B, K) logits
```
"""
