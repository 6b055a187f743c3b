"""Pandas views of the result files (read through :mod:`selfy_lab.store.results`' layout): the tables the
notebooks, the README and the command line show. Summaries are group-bys of the tidy rows, never edited.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..config.grammar import EVERY
from ..config.pairs import module_configs, module_settings
from ..core.errors import SelfyError
from ..core.paper import PAPER_FLOPS_TABLE, TABLES, TABLE_EXPERIMENTS
from ..core.stats import RULE, direction, family, ordering_verdict, welch
from ..store import results as R
from ..store.results import VARIANT_FIELDS

# Table 3a's ladder, in the order it is shown
LADDER_ORDER = ("none", "{0}", "{1}", "-1..1", "-2..2", "-3..3", "-4..4")
_DTYPES = {"offsets": str, "window": str, "options": str, "corrupted_frames": str, "seed": int, "labels": str, "test_clips": str,
           "test_crops": str}


def ladder_index(offsets: str) -> int:
    """Position of an offsets label in the ladder; other sets after it."""
    return LADDER_ORDER.index(offsets) if offsets in LADDER_ORDER else len(LADDER_ORDER)


# metrics that are shares of clips: a value outside [0, 1] is a damaged or hand-edited file, never a result
SHARES = ("top1", "top5", "mean_class", "order_pairs_top1", "order_pairs_binary", "context_pairs_top1",
          "context_pairs_binary", "clean_top1", "mPC")


def _read_checked(f: Path, needed) -> pd.DataFrame:
    """One result CSV, validated before anything reads it: the columns a table needs, whole rows, numeric
    values, shares within [0, 1]; anything else stops with one line naming the file and the line."""
    ints = [k for k, v in _DTYPES.items() if v is int]  # read as text first: a torn row leaves them empty
    try:
        df = pd.read_csv(f, dtype={k: (str if v is int else v) for k, v in _DTYPES.items()})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise SelfyError(f"{f}: not a results table ({str(e).splitlines()[0][:100]})") from None
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise SelfyError(f"{f}: no column {', '.join(missing[:3])} (a results table of another version, or edited)")
    value = pd.to_numeric(df["value"], errors="coerce")
    bad = value.isna() | df[list(needed)].isna().any(axis=1)  # a torn row ends early: its last cells are empty
    for c in (c for c in ints if c in df):
        bad |= pd.to_numeric(df[c], errors="coerce").isna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise SelfyError(f"{f}:{i + 2}: an incomplete row or a value that is not a number "
                         f"({str(df['value'].iloc[i])[:20]!r}); restore the file from its run folders (re-run the same "
                         "command) or from git")
    share = df["metric"].isin(SHARES) & ((value < 0) | (value > 1))
    if share.any():
        i = int(share.to_numpy().nonzero()[0][0])
        raise SelfyError(f"{f}:{i + 2}: {df['metric'].iloc[i]} = {value.iloc[i]:g} is not a share in [0, 1]; "
                         "restore the file from its run folders (re-run the same command) or from git")
    return df.assign(value=value.astype(float), **{c: df[c].astype(float).astype(int) for c in ints if c in df})


def _read(files: list[Path], columns, subset) -> pd.DataFrame:
    if not files:
        return pd.DataFrame(columns=list(columns))
    needed = ("run_id", "metric", "value")
    df = pd.concat([_read_checked(f, needed) for f in files], ignore_index=True)
    subset = [c for c in subset if c in df.columns]  # rows of older versions lack a later key (the split)
    return df.drop_duplicates(subset=subset, keep="last").reset_index(drop=True)


def _files(paths, name: str) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(p.glob(f"**/{name}"))
        elif p.exists():
            files.append(p)
    return files


def load_runs(*paths: str | Path) -> pd.DataFrame:
    """Tidy rows of one or more runs.csv files (or every runs.csv under a directory)."""
    return _read(_files(paths, R.RUNS_TABLE), R.RUN_COLUMNS, ["experiment", "run_id", "split", "metric"])


def load_robustness(*paths: str | Path) -> pd.DataFrame:
    """Tidy rows of one or more robustness.csv files (or every one under a directory)."""
    return _read(_files(paths, R.ROBUSTNESS_TABLE), R.ROBUSTNESS_COLUMNS,
                 ["run_id", *R.ROBUSTNESS_KEYS, "split", "metric"])


def load_robustness_summary(*paths: str | Path) -> pd.DataFrame:
    """mPC / rPC rows of one or more robustness_summary.csv files (or every one under a directory)."""
    return _read(_files(paths, R.ROBUSTNESS_SUMMARY), R.ROBUSTNESS_SUMMARY_COLUMNS,
                 ["run_id", "kind", "corrupted_frames", *R.EVAL_KEYS, "metric"])


REPORTED_SPLIT = "test"


def reported_split(df: pd.DataFrame) -> str:
    """The split a table of these run rows reports: ``test`` (the held-out split nothing chooses on) where every
    run scored on val was scored on test too, else ``val`` for the whole table (runs written before the test
    split existed: their val clips are those that chose the quick preset's recipe, and a table marks them). One
    split for every row of a table: never test rows beside val rows."""
    if df is None or not len(df):
        return "val"
    top1 = df[df["metric"] == "top1"]
    val = set(top1.loc[top1["split"] == "val", "run_id"])
    test = set(top1.loc[top1["split"] == REPORTED_SPLIT, "run_id"])
    return REPORTED_SPLIT if test and val <= test else "val"


def summarize(df: pd.DataFrame, metrics=("top1", "top5"), split: str | None = None, by=None) -> pd.DataFrame:
    """Mean, std and count over seeds of each variant: one row per variant, wide in the metrics
    (``top1_mean``, ``top1_std``, ``top1_count``, ...), with its GFLOPs and the ``split`` it was scored on
    (default :func:`reported_split`); in ladder order."""
    by = list(by or [c for c in R.VARIANT_FIELDS if c in df.columns])
    split = split or reported_split(df)
    sub = df[(df["split"] == split) & (df["metric"].isin(metrics))]
    if sub.empty:
        return pd.DataFrame(columns=[*by, "gflops"])
    g = sub.groupby([*by, "metric"], dropna=False)["value"].agg(["mean", "std", "count"]).unstack("metric")
    g.columns = [f"{metric}_{stat}" for stat, metric in g.columns]
    out = g.join(df.groupby(by, dropna=False)["gflops"].first()).reset_index().assign(split=split)
    out["_ladder"] = out["offsets"].map(ladder_index)
    keys = [c for c in ("backbone", "block") if c in out] + ["_ladder"]
    return out.sort_values(keys).drop(columns="_ladder").reset_index(drop=True)


def _matches(row, variant: dict) -> bool:
    """Does a summary row hold the paper row ``variant`` (the fields it names; a baseline by block only)?"""
    is_base = variant.get("block") == "none"
    if is_base != (row.get("block") == "none"):
        return False
    return all(str(row.get(k)) == str(v) for k, v in variant.items() if not (k == "block" and is_base) and k in row)


def paper_column(summary: pd.DataFrame, table_id: str) -> pd.DataFrame:
    """``summary`` with the paper's top-1 / top-5 of the row each variant reproduces in
    ``paper.TABLES[table_id]`` (NaN where none); the backbone must be of the table's family (tsn / tsm)."""
    table = TABLES[table_id]
    family = table["default"].get("backbone", "").split("-")[0]
    top1, top5 = [], []
    for _, r in summary.iterrows():
        hit = None
        if not family or str(r.get("backbone", "")).startswith(family):
            hit = next((row for row in table["rows"] if _matches(r, row["variant"])), None)
        top1.append(hit["top1"] if hit else float("nan"))
        top5.append(hit["top5"] if hit else float("nan"))
    return summary.assign(paper_top1=top1, paper_top5=top5)


def table_view(df: pd.DataFrame, table_id: str) -> pd.DataFrame:
    """One paper table rebuilt from tidy run rows: a row per paper row, our top-1 / top-5 (%, mean and std
    over seeds, GFLOPs; on the :func:`reported_split` of the table's runs, in ``split``) beside the paper's. Our
    cells are empty where no run matches."""
    table = TABLES[table_id]
    family = table["default"].get("backbone", "").split("-")[0]
    exps = TABLE_EXPERIMENTS.get(table_id, ())
    sub = df[df["experiment"].isin(exps) & df["backbone"].astype(str).str.startswith(family)] if len(df) else df
    sub = sub.drop_duplicates(["run_id", "split", "metric"]) if len(sub) else sub  # a run two sweeps share counts once
    split = reported_split(sub)
    summ = summarize(sub, split=split) if len(sub) else pd.DataFrame()
    out = []
    for row in table["rows"]:
        variant = row["variant"]
        rec = {"variant": ", ".join(f"{k}={v}" for k, v in variant.items()), "paper_top1": row["top1"],
               "paper_top5": row["top5"], "paper_gflops": row.get("gflops", float("nan")),
               **dict.fromkeys(("top1", "top1_std", "top5", "top5_std", "seeds", "gflops"), float("nan")), "backbone": "",
               "split": split}
        hit = next((h for _, h in summ.iterrows() if _matches(h, variant)), None) if len(summ) else None
        if hit is not None:
            rec.update(top1=100 * hit["top1_mean"], top1_std=100 * _zero_nan(hit.get("top1_std")),
                       top5=100 * hit["top5_mean"], top5_std=100 * _zero_nan(hit.get("top5_std")),
                       seeds=int(hit["top1_count"]), gflops=hit["gflops"], backbone=hit["backbone"])
        out.append(rec)
    return pd.DataFrame(out)


def _zero_nan(v) -> float:
    return 0.0 if v is None or v != v else float(v)


def protocol_rows(d: pd.DataFrame, clips: int = 1, crops: int = 1, split: str | None = None) -> pd.DataFrame:
    """The robustness rows of one test protocol (``clips`` x ``crops``) and one split (default: test where every
    run of the rows was scored on it, else val, as :func:`reported_split`); frames built without the protocol
    columns hold the 1 x 1 test, rows without a split the val split (written before the test split existed)."""
    if not len(d):
        return d

    def col(c: str) -> pd.Series:
        return d[c].astype(str) if c in d else pd.Series(R.PROTOCOL_DEFAULTS[c], index=d.index)

    d = d[(col("test_clips") == str(clips)) & (col("test_crops") == str(crops))]
    splits = d["split"].fillna("val").astype(str) if "split" in d else pd.Series("val", index=d.index)
    if split is None:
        ids = d["run_id"] if "run_id" in d else pd.Series(0, index=d.index)
        runs = set(ids)
        split = REPORTED_SPLIT if runs and runs <= set(ids[splits == REPORTED_SPLIT]) else "val"
    return d[splits == split]


def robustness_by_severity(df: pd.DataFrame, summary: pd.DataFrame, kind: str, metric: str = "top1",
                           clips: int = 1, crops: int = 1) -> pd.DataFrame:
    """For one corruption kind and test protocol (``clips`` x ``crops``): per (backbone, offsets), top-1 mean and
    std over seeds at every severity, and the mean mPC / rPC over seeds; in ladder order. Rows are told apart by
    block and position too where the rows carry them (a block comparison's modules all have offsets "none")."""
    df, summary = protocol_rows(df, clips, crops), protocol_rows(summary, clips, crops)
    sub = df[(df["kind"] == kind) & (df["metric"] == metric)]
    if sub.empty:
        return pd.DataFrame()
    keys = [c for c in ("backbone", "block", "offsets", "position") if c in sub.columns and c in summary.columns]
    g = sub.groupby([*keys, "severity"])["value"].agg(["mean", "std"]).unstack("severity")
    g.columns = [f"{stat}_{sev}" for stat, sev in g.columns]
    s = summary[summary["kind"] == kind].groupby([*keys, "metric"])["value"].mean().unstack("metric")
    out = g.join(s[[c for c in ("mPC", "rPC") if c in s]]).reset_index()
    out["_ladder"] = out["offsets"].map(ladder_index)
    order = ["backbone", *(["block"] if "block" in out else []), "_ladder"]
    return out.sort_values(order).drop(columns="_ladder").reset_index(drop=True)


def find_figures(root: str | Path, pattern: str) -> list[Path]:
    """Figures written by the CLI under ``root`` (e.g. ``cam/*.png``, ``**/examples/*.png``)."""
    return sorted(Path(root).glob(pattern))


def load_flops_table(root: str | Path) -> pd.DataFrame:
    f = Path(root) / "flops" / PAPER_FLOPS_TABLE
    return pd.read_csv(f) if f.exists() else pd.DataFrame()


def load_bench(root: str | Path) -> pd.DataFrame:
    f = Path(root) / "bench" / R.BENCH_TABLE
    return pd.read_csv(f) if f.exists() else pd.DataFrame()


def sweep_summary(sweep_dir: str | Path, paper_table: str | None = None) -> tuple[pd.DataFrame, str, list[str]]:
    """A sweep's variants (mean / std / count over seeds, beside the paper's row where it reproduces a paper
    table), the paper table's id ("" if none) and the variant fields that vary across the sweep's blocks,
    with those that tell its other rows apart (see :func:`_telling_apart`). The paper table is ``paper_table``
    ("" for none), else the one the sweep's record names (:func:`selfy_lab.store.results.recorded_paper_table`)."""
    df, by = with_settings(load_runs(Path(sweep_dir) / R.RUNS_TABLE), sweep_dir)
    summ = summarize(df, by=by) if len(df) else pd.DataFrame()
    if summ.empty:
        return summ, "", []
    table_id = R.recorded_paper_table(sweep_dir) if paper_table is None else paper_table
    if table_id:
        summ = paper_column(summ, table_id)
    if "setting" in summ.columns:  # the sweep's own labels name each variant whole
        return summ, table_id, ["setting"]
    blocks = summ[summ["block"] != "none"]
    varying = [c for c in R.VARIANT_FIELDS if c != "frames" and (summ if c == "backbone" else blocks)[c].nunique() > 1]
    return summ, table_id, _telling_apart(summ, varying) or ["offsets"]


def with_settings(df: pd.DataFrame, sweep_dir: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """A sweep's run rows and the columns that tell its variants apart: the variant fields, and where runs of
    one seed share all of them (a sweep over the input size, the shift, the learning rate...: settings that are
    no result column) a ``setting`` column too, each run's label in the sweep record without its seed (e.g.
    "tsm-r18-w16 baseline 112px"), so that such runs are never averaged as if they were seeds."""
    by = [c for c in R.VARIANT_FIELDS if c in df.columns]
    val = df[(df["split"] == "val") & (df["metric"] == "top1")] if len(df) else df
    if val.empty or not (val.groupby([*by, "seed"], dropna=False)["run_id"].nunique() > 1).any():
        return df, by
    labels = {r.get("run_id"): re.sub(r", seed -?\d+$", "", str(r.get("label", "")))
              for r in R.read_sweep_record(sweep_dir).get("runs", []) if isinstance(r, dict)}
    return df.assign(setting=[labels.get(i) or i for i in df["run_id"]]), [*by, "setting"]


def _telling_apart(summary: pd.DataFrame, fields: list[str]) -> list[str]:
    """``fields`` and, where rows alike in them remain (baselines that differ in their motion hierarchy, where
    their weights started -- ``init``: scratch, a file, a frozen ``-probe`` -- or their label share), each
    further variant field in which such rows differ; in the order of the result columns."""
    fields = list(fields)
    for c in R.VARIANT_FIELDS:
        key = summary[fields].astype(str).agg("|".join, axis=1) if fields else pd.Series("", index=summary.index)
        alike = key.duplicated(keep=False)
        if not alike.any():
            break
        if c not in fields and c in summary and (summary[alike].groupby(key[alike])[c].nunique() > 1).any():
            fields.append(c)
    return sorted(fields, key=lambda c: R.VARIANT_FIELDS.index(c) if c in R.VARIANT_FIELDS else -1)


ORDERING_COLUMNS = ["higher", "lower", "paper_diff", "ours_diff", "ci_low", "ci_high", "n_higher", "n_lower", "p",
                    "p_holm", "verdict"]


def pairwise_orderings(view: pd.DataFrame) -> pd.DataFrame:
    """For every pair of rows of a :func:`table_view` that the paper orders (different top-1), whether our
    runs reproduce that ordering by the stated test (:mod:`selfy_lab.core.stats`: Welch, Holm over the table's
    orderings, alpha 0.05): ``reproduced`` when it separates the rows with the paper's sign, ``contradicted``
    when it separates them with the other sign, ``cannot separate`` otherwise (always for a row of one seed);
    rows without runs are left out. Columns: higher, lower (the paper's), paper_diff, ours_diff (points) with
    its 95% confidence interval, the seeds of each row, p, the Holm-adjusted p and the verdict."""
    rows = view.dropna(subset=["top1"]).reset_index(drop=True)
    pairs, diffs = [], []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            a, b = rows.iloc[i], rows.iloc[j]
            if a["paper_top1"] == b["paper_top1"]:
                continue
            hi, lo = (a, b) if a["paper_top1"] > b["paper_top1"] else (b, a)
            pairs.append((hi, lo))
            diffs.append(welch(hi["top1"], _seed_std(hi), hi["seeds"], lo["top1"], _seed_std(lo), lo["seeds"]))
    out = []
    for (hi, lo), d, f in zip(pairs, diffs, family(diffs)):
        out.append({"higher": hi["variant"], "lower": lo["variant"], "paper_diff": hi["paper_top1"] - lo["paper_top1"],
                    "ours_diff": d.diff, "ci_low": f["ci_low"], "ci_high": f["ci_high"], "n_higher": f["n_a"],
                    "n_lower": f["n_b"], "p": f["p"], "p_holm": f["p_holm"],
                    "verdict": ordering_verdict(1.0, d.diff, f["p_holm"])})
    return pd.DataFrame(out, columns=ORDERING_COLUMNS)


def _seed_std(row, value: str = "top1") -> float:
    """A row's std of ``value`` over seeds (NaN for one seed: it has no spread, and the test never separates it)."""
    return float(row[f"{value}_std"]) if row["seeds"] > 1 else float("nan")


CONTRAST_COLUMNS = ["variant", "reference", "top1", "top1_std", "seeds", "diff", "ci_low", "ci_high", "p", "p_holm",
                    "verdict"]


def contrasts(table: pd.DataFrame, reference: str, value: str = "top1", label: str = "variant") -> pd.DataFrame:
    """The row ``reference`` of a comparison table (``label``, ``value``, ``{value}_std``, ``seeds``: a
    :func:`module_comparison`, a :func:`variant_table`, a :func:`robustness_comparison` with ``value`` e.g.
    ``blur_mPC``) against every other row, by the stated test (:mod:`selfy_lab.core.stats`; the table's comparisons
    are one Holm family): ``diff`` = reference - row (points) with its 95% confidence interval, p, the
    Holm-adjusted p and the verdict (``higher`` / ``lower``: the reference's side when the test separates
    them, else ``cannot separate``), in the table's order. Output columns name the value ``top1``."""
    if reference not in set(table[label]):
        raise SelfyError(f"no row '{reference}' to compare against: the table has {', '.join(map(str, table[label]))}")

    ref = table[table[label] == reference].iloc[0]
    others = table[table[label] != reference]
    diffs = [welch(ref[value], _seed_std(ref, value), ref["seeds"], r[value], _seed_std(r, value), r["seeds"])
             for _, r in others.iterrows()]
    out = [{"variant": r[label], "reference": reference, "top1": r[value], "top1_std": r[f"{value}_std"],
            "seeds": r["seeds"], "diff": d.diff, "ci_low": f["ci_low"], "ci_high": f["ci_high"], "p": f["p"],
            "p_holm": f["p_holm"], "verdict": direction(d.diff, f["p_holm"])}
           for (_, r), d, f in zip(others.iterrows(), diffs, family(diffs))]
    return pd.DataFrame(out, columns=CONTRAST_COLUMNS)


def selfy_reference(val_table: pd.DataFrame) -> str:
    """The SELFY row a comparison's contrasts are taken against, chosen on the validation split: of the rows
    with a SELFY block on the comparison's main backbone (the one the other modules sit in), the one with the
    highest top-1 of ``val_table`` (a :func:`module_comparison` on val), so that the test split never picks
    the row it then judges."""
    if len(val_table) and "split" in val_table and set(val_table["split"]) - {"val"}:
        raise SelfyError("the reference row is chosen on the validation split: pass the comparison scored on val")
    main = main_backbone_of(val_table)
    selfy = val_table[val_table["block"].astype(str).str.startswith("selfy") & (val_table["backbone"] == main)]
    if selfy.empty:
        raise SelfyError(f"the comparison has no SELFY row on {main or 'its backbone'} to take the contrasts against: "
                         "name a sweep that holds one too (SWEEP+SWEEP)")
    return str(selfy.sort_values("top1", ascending=False, kind="stable")["variant"].iloc[0])


def verdict_sentence(contrast: pd.DataFrame) -> str:
    """The words a :func:`contrasts` table allows, generated: which rows the reference is separated above,
    below, and from which it cannot be separated, with the rule and the family's size."""
    if contrast.empty:
        return ""
    ref = str(contrast["reference"].iloc[0])
    groups = {v: [str(x) for x in contrast.loc[contrast["verdict"] == v, "variant"]]
              for v in ("higher", "lower", "cannot separate")}
    def join(names: list[str]) -> str:
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    parts = [f"above {join(groups['higher'])}" if groups["higher"] else "",
             f"below {join(groups['lower'])}" if groups["lower"] else "",
             f"not separated from {join(groups['cannot separate'])}" if groups["cannot separate"] else ""]
    return (f"By {RULE} ({len(contrast)} comparisons), {ref} is " + "; ".join(p for p in parts if p) + ".")


COMPARISON_TABLE = R.COMPARISON_TABLE


def recipe_name(lr: float, epochs: int) -> str:
    """A training recipe as the tables and figures name it: ``lr 0.004, 6 ep``."""
    return f"lr {float(lr):g}, {int(epochs)} ep"


def main_backbone_of(runs: pd.DataFrame) -> str:
    """The most common backbone among the runs (or cells) with a block: the one :func:`method_label` leaves out."""
    blocks = runs.loc[runs["block"] != "none", "backbone"].mode()
    return str(blocks.iloc[0]) if len(blocks) else ""


def method_label(row, main_backbone: str) -> str:
    """A variant's name in the comparison tables (``row``: its variant columns): the block (with SELFY's offsets,
    its named options, "(every block)" for its papers' arrangement), "on <backbone>" off the main backbone."""
    if row["block"] == "none":
        return f"{row['backbone']} (no block)"
    label = f"{row['block']} {row['offsets']}" if str(row["block"]).startswith("selfy") else str(row["block"])
    options = str(row.get("options", "none"))
    if options not in ("none", "", "nan"):  # a named deviation from the module's authors
        label += f" [{options}]"
    if EVERY in str(row.get("position", "")):  # the papers' arrangement: one in every residual block
        label += " (every block)"
    return label if row["backbone"] == main_backbone else f"{label} on {row['backbone']}"


def _seed_stats(g: pd.DataFrame, top1: pd.DataFrame) -> dict:
    """A variant's rows of one split ``g`` (its ``top1`` rows sorted by seed): top-1 (%) mean, std and every seed,
    and the
    binary accuracy within the time-reversed pairs (%)."""
    return {"top1": 100 * top1["value"].mean(), "top1_std": 100 * _zero_nan(top1["value"].std()),
            "seeds": len(top1), "top1_per_seed": " / ".join(f"{100 * v:.1f}" for v in top1["value"]),
            "order_pairs_binary": 100 * g.loc[g["metric"] == "order_pairs_binary", "value"].mean()}


def module_comparison(df: pd.DataFrame, bench: pd.DataFrame | None = None, split: str | None = None) -> pd.DataFrame:
    """A block comparison (``experiments/motion_modules.yaml``) from its tidy run rows: one row per (backbone,
    block, offsets, position) with top-1 on ``split`` (default :func:`reported_split`; %, mean, std and every
    seed), the accuracy within the time-reversed pairs
    (binary: which of the two orders; 50% is order-blind), GFLOPs, parameters (M) and the mean training time
    of a run (minutes, as the sweep measured it). With ``bench`` (the rows of ``selfy-lab bench --only modules``)
    it adds ``step_ratio``: the training-step time with the block over the plain backbone, measured side by side
    (blank where the bench has no such model). Rows: the plain backbone, the other baselines, then the blocks by
    top-1, best first."""
    cols = ["variant", "backbone", "block", "offsets", "position", "top1", "top1_std", "seeds", "top1_per_seed",
            "order_pairs_binary", "gflops", "params_m", "train_min", "split"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    split = split or reported_split(df)
    val = df[df["split"] == split].drop_duplicates(["run_id", "metric"])
    # a run's training time is a train-split row
    minutes = df[(df["split"] == "train") & (df["metric"] == "seconds")].drop_duplicates("run_id")
    minutes = dict(zip(minutes["run_id"], minutes["value"] / 60))
    keys = ["backbone", "block", "offsets", "position", "options"]  # a module's named options tell rows apart
    val = val.assign(options=val["options"].astype(object).fillna("none").astype(str)) if "options" in val else (
        val.assign(options="none"))
    main_backbone = main_backbone_of(val)
    out = []
    for (backbone, block, offsets, position, options), g in val.groupby(keys, sort=False):
        top1 = g[g["metric"] == "top1"].sort_values("seed")
        if top1.empty:
            continue
        rec = {"backbone": backbone, "block": block, "offsets": offsets, "position": position, "options": options,
               **_seed_stats(g, top1),
               "gflops": top1["gflops"].iloc[0], "params_m": top1["params_m"].iloc[0],
               "train_min": pd.Series([minutes.get(r) for r in top1["run_id"]], dtype=float).mean(), "split": split}
        rec["variant"] = method_label(rec, main_backbone)
        out.append(rec)
    table = pd.DataFrame(out, columns=cols)
    if bench is not None and len(bench):
        ratios = bench[(bench["benchmark"] == "modules_quick") & (bench["metric"] == "time_ratio")]
        by_impl = dict(zip(ratios["impl"], ratios["value"]))

        # the bench's name of each block it timed, found by the block's result columns: (block, position) ->
        # (offsets, name), where offsets are 'none' for the blocks that take none
        base = module_settings()["modules_quick"][0]
        variants = {name: cfg.variant() for name, cfg in module_configs(base).items()}
        benched = {(v["block"], v["position"]): (v["offsets"], name) for name, v in variants.items() if v["block"] != "none"}

        def ratio(r) -> float:  # the plain backbone is the reference; other baselines and blocks the bench
            if r.block == "none":  # did not time (other SELFY offsets, other positions) get none
                return 1.0 if r.backbone == main_backbone else float("nan")
            offsets, name = benched.get((r.block, r.position), ("none", None))
            if name is None or offsets not in ("none", r.offsets):
                return float("nan")
            return by_impl.get(f"{name}-{r.backbone}", float("nan"))

        table["step_ratio"] = [ratio(r) for r in table.itertuples()]
    # the plain backbone, the other baselines, then the blocks by top-1
    table["_rank"] = [0 if b == "none" and bb == main_backbone else 1 if b == "none" else 2
                      for b, bb in zip(table["block"], table["backbone"])]
    return table.sort_values(["_rank", "top1"], ascending=[True, False]).drop(columns="_rank").reset_index(drop=True)


HCML_FIELDS = ("backbone", "block", "offsets", "hierarchy", "aux", "init", "labels")


def variant_table(df: pd.DataFrame, fields=HCML_FIELDS) -> pd.DataFrame:
    """Top-1 on the :func:`reported_split` (%, mean, std, seeds and every seed; the split in ``split``) and the
    binary accuracy within the time-reversed pairs
    (%; 50 is order-blind) per variant of ``fields`` (the HCML experiments by default: block, hierarchy,
    auxiliary loss, initialisation, label share), in first-seen order. ``variant`` names each row by the fields
    that differ between rows (``field=value``)."""
    fields = [f for f in fields if f in df.columns]
    cols = ["variant", *fields, "top1", "top1_std", "seeds", "top1_per_seed", "order_pairs_binary", "split"]
    split = reported_split(df)
    val = df[df["split"] == split].drop_duplicates(["run_id", "metric"]) if len(df) else df
    if val.empty:
        return pd.DataFrame(columns=cols)
    varying = [f for f in fields if val[f].astype(str).nunique() > 1]
    out = []
    for key, g in val.groupby(fields, sort=False, dropna=False):
        top1 = g[g["metric"] == "top1"].sort_values("seed")
        if top1.empty:
            continue
        rec = dict(zip(fields, key))
        rec.update({"variant": ", ".join(f"{f}={rec[f]}" for f in varying) or "all runs", **_seed_stats(g, top1),
                    "split": split})
        out.append(rec)
    return pd.DataFrame(out, columns=cols)


def robustness_comparison(df: pd.DataFrame, summary: pd.DataFrame, kinds=("blur", "occlusion"),
                          main_backbone: str = "") -> pd.DataFrame:
    """A block comparison under corruption (the 1-clip, centre-crop test): one row per variant with its clean
    top-1 and, per kind, mPC (mean and std over seeds), rPC (mean over seeds of each seed's mPC / clean) and the
    top-1 at the kind's highest severity, all in %; sorted by clean top-1. ``df``: robustness.csv rows;
    ``summary``: robustness_summary.csv rows; ``main_backbone``: default :func:`main_backbone_of` the rows."""
    df, summary = protocol_rows(df), protocol_rows(summary)
    keys = [c for c in R.VARIANT_FIELDS if c in df.columns and c in summary.columns]
    top1 = df[(df["metric"] == "top1") & df["kind"].isin(kinds)]
    main_backbone = main_backbone or main_backbone_of(top1)
    out = []
    for key, g in top1.groupby(keys, sort=False, dropna=False):
        rec = dict(zip(keys, key))
        clean = g[g["severity"] == 0].drop_duplicates("run_id")["value"]
        rec.update(model=method_label(rec, main_backbone), seeds=g["run_id"].nunique(), clean=100 * clean.mean())
        s = summary[summary["run_id"].isin(g["run_id"].unique())]
        for kind in kinds:
            k = g[g["kind"] == kind]
            per_run = s[s["kind"] == kind].pivot_table(index="run_id", columns="metric", values="value")
            worst = k[k["severity"] == k["severity"].max()]["value"] if len(k) else pd.Series(dtype=float)
            rec.update({f"{kind}_mPC": 100 * per_run["mPC"].mean() if "mPC" in per_run else float("nan"),
                        f"{kind}_mPC_std": 100 * _zero_nan(per_run["mPC"].std()) if "mPC" in per_run else float("nan"),
                        f"{kind}_rPC": per_run["rPC"].mean() if "rPC" in per_run else float("nan"),
                        f"{kind}_worst": 100 * worst.mean()})
        out.append(rec)
    return pd.DataFrame(out).sort_values("clean", ascending=False).reset_index(drop=True) if out else pd.DataFrame()
