"""The results/ layout and the tidy schema. The only module that reads or writes result files.

Tidy (long) rows: one per run x split x metric (x corruption x severity), columns
``experiment, run_id, <variant fields>, seed, split, metric, value`` plus provenance
(``config_hash, version, git_rev, time``). Files are replaced atomically (write to a temporary file
in the same directory, then ``os.replace``), so a kill at any moment leaves either the old or the new
file, never a torn one. Values are raw floats; formatting happens in notebooks and printed tables.
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from . import __version__

PROVENANCE = ("config_hash", "version", "git_rev", "time")
VARIANT_FIELDS = ("backbone", "frames", "block", "offsets", "window", "extractor", "integrator", "similarity",
                  "fusion", "position")
RUN_COLUMNS = ("experiment", "run_id", *VARIANT_FIELDS, "gflops", "params_m", "seed", "split", "metric", "value",
               *PROVENANCE)


def git_revision() -> str:
    """Short git revision of the source tree the package runs from, ``+dirty`` if it has changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config_hash: str = "") -> dict[str, str]:
    return {"config_hash": config_hash, "version": __version__, "git_rev": git_revision(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], columns: Iterable[str] | None = None) -> Path:
    """Write rows atomically; ``columns`` fixes the order (default: first row's keys, then new ones)."""
    rows = list(rows)
    cols = list(columns) if columns else []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="raise", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k, "")) for k in cols})
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def _fmt(v: Any) -> Any:
    return repr(v) if isinstance(v, float) else v  # repr keeps every digit of a float


def read_csv(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_rows(path: str | Path, rows: Iterable[dict[str, Any]], key: Iterable[str] = (),
                columns: Iterable[str] | None = None) -> Path:
    """Append rows to a CSV atomically. Rows whose ``key`` columns match an existing row replace it,
    so re-running a finished piece of work never duplicates rows."""
    key = tuple(key)
    old = read_csv(path)
    new = [{k: (_fmt(v) if isinstance(v, float) else str(v)) for k, v in r.items()} for r in rows]
    if key:
        fresh = {tuple(r.get(k, "") for k in key) for r in new}
        old = [r for r in old if tuple(r.get(k, "") for k in key) not in fresh]
    cols = list(columns) if columns else (list(old[0].keys()) if old else [])
    return write_csv(path, old + new, cols or None)


def write_json(path: str | Path, data: Any) -> Path:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def read_json(path: str | Path) -> Any:
    with open(path) as f:
        return json.load(f)


# ---- reading results for tables and notebooks (pandas) ----

LADDER_ORDER = ("none", "{0}", "{1}", "-1..1", "-2..2", "-3..3", "-4..4")


def load_runs(*paths: str | Path):
    """Tidy rows of one or more runs.csv files (or sweep directories, or a glob root) as a DataFrame."""
    import pandas as pd

    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(p.glob("**/runs.csv"))
        elif p.exists():
            files.append(p)
    if not files:
        return pd.DataFrame(columns=list(RUN_COLUMNS))
    df = pd.concat([pd.read_csv(f, dtype={"offsets": str, "window": str, "seed": int}) for f in files],
                   ignore_index=True)
    df["value"] = df["value"].astype(float)
    return df.drop_duplicates(subset=["run_id", "split", "metric"], keep="last")


def summarize(df, metrics=("top1", "top5"), split: str = "val", by=None):
    """Mean, std and count over seeds of each variant: one row per variant, wide in the metrics."""
    import pandas as pd

    by = list(by or [c for c in VARIANT_FIELDS if c in df.columns])
    sub = df[(df["split"] == split) & (df["metric"].isin(metrics))]
    if sub.empty:
        return pd.DataFrame(columns=[*by, "gflops"])
    g = sub.groupby([*by, "metric"])["value"].agg(["mean", "std", "count"]).unstack("metric")
    g.columns = [f"{metric}_{stat}" for stat, metric in g.columns]
    flops = df.groupby(by)["gflops"].first()
    out = g.join(flops).reset_index()
    out["ladder"] = out["offsets"].map({o: i for i, o in enumerate(LADDER_ORDER)}).fillna(len(LADDER_ORDER))
    return out.sort_values([c for c in ("backbone", "block") if c in out] + ["ladder"]).drop(columns="ladder").reset_index(drop=True)


def paper_column(summary, table_id: str):
    """The paper's top-1 / top-5 for each summary row of a sweep that reproduces ``paper.TABLES[table_id]``:
    rows match on the fields the paper's row names (the backbone by family, tsn / tsm)."""
    from .paper import TABLES

    table = TABLES[table_id]
    family = table["default"].get("backbone", "").split("-")[0]
    top1, top5 = [], []
    for _, r in summary.iterrows():
        hit = None
        if not family or str(r.get("backbone", "")).startswith(family):
            for row in table["rows"]:
                if all(str(r.get(k)) == str(v) for k, v in row["variant"].items() if k != "block" or v == "none") and (
                        row["variant"].get("block", "selfy") == "none") == (r.get("block") == "none"):
                    hit = row
                    break
        top1.append(hit["top1"] if hit else float("nan"))
        top5.append(hit["top5"] if hit else float("nan"))
    return summary.assign(paper_top1=top1, paper_top5=top5)


def table_view(df, table_id: str):
    """One paper table rebuilt from tidy run rows: a row per paper row, our top-1 / top-5 (mean and std over
    seeds, GFLOPs) beside the paper's. Our cells are empty where no run matches."""
    import pandas as pd

    from .paper import TABLE_EXPERIMENTS, TABLES

    table = TABLES[table_id]
    family = table["default"].get("backbone", "").split("-")[0]
    exps = TABLE_EXPERIMENTS.get(table_id, ())
    sub = df[df["experiment"].isin(exps) & df["backbone"].astype(str).str.startswith(family)] if len(df) else df
    summ = summarize(sub) if len(sub) else pd.DataFrame()
    out = []
    for row in table["rows"]:
        variant = row["variant"]
        label = ", ".join(f"{k}={v}" for k, v in variant.items())
        hit = pd.DataFrame()
        if len(summ):
            is_base = variant.get("block") == "none"
            m = (summ["block"] == "none") if is_base else (summ["block"] != "none")
            for k, v in variant.items():
                if k in summ.columns and not (k == "block" and is_base):
                    m &= summ[k].astype(str) == str(v)
            hit = summ[m]
        rec = {"variant": label, "paper_top1": row["top1"], "paper_top5": row["top5"],
               "paper_gflops": row.get("gflops", float("nan"))}
        if len(hit):
            h = hit.iloc[0]
            rec.update(top1=100 * h["top1_mean"], top1_std=100 * (h.get("top1_std") or 0), top5=100 * h["top5_mean"],
                       top5_std=100 * (h.get("top5_std") or 0), seeds=int(h["top1_count"]), gflops=h["gflops"],
                       backbone=h["backbone"])
        out.append(rec)
    return pd.DataFrame(out)


def load_robustness_results(root: str | Path):
    """Every robustness.csv under ``root`` (or one file) as a DataFrame."""
    import pandas as pd

    root = Path(root)
    files = [root] if root.is_file() else sorted(root.glob("**/robustness.csv"))
    if not files:
        return pd.DataFrame()
    df = pd.concat([pd.read_csv(f, dtype={"offsets": str, "window": str, "corrupted_frames": str}) for f in files],
                   ignore_index=True)
    df["value"] = df["value"].astype(float)
    return df.drop_duplicates(subset=["run_id", "kind", "severity", "corrupted_frames", "metric"], keep="last")


def load_robustness_summary(root: str | Path):
    import pandas as pd

    files = sorted(Path(root).glob("**/robustness_summary.csv"))
    if not files:
        return pd.DataFrame()
    df = pd.concat([pd.read_csv(f, dtype={"offsets": str}) for f in files], ignore_index=True)
    df["value"] = df["value"].astype(float)
    return df


def find_figures(root: str | Path, pattern: str) -> list[Path]:
    """Figures written by the CLI under ``root`` (e.g. ``cam/*.png``, ``**/examples/*.png``)."""
    return sorted(Path(root).glob(pattern))


def find_checkpoints(root: str | Path) -> list[Path]:
    """Run directories with a checkpoint under ``root`` (checkpoints are local: never committed)."""
    return sorted(p.parent for p in Path(root).glob("**/runs/*/checkpoint.pt"))


def load_flops_table(root: str | Path):
    import pandas as pd

    f = Path(root) / "flops" / "paper_table.csv"
    return pd.read_csv(f) if f.exists() else pd.DataFrame()
