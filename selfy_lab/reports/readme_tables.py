"""The tables of ``results/README.md``, generated from the committed result files so that they cannot drift.

The README's prose is written by hand; each table sits between two markers that name what it shows::

    <!-- table paper 7a ablations/table7a -->   a sweep that reproduces a paper table, beside the paper's
    ...                                          numbers (tables.sweep_summary)
    <!-- end table -->

    <!-- table sweep hcml-tau -->               any sweep's variants
    <!-- table comparison motion-modules -->   a sweep's comparison.csv (a block comparison)
    <!-- table contrast motion-modules-own -->  a block comparison's SELFY row (chosen on val) against every other
                                                row by the stated test, with the verdict sentence it allows
    <!-- table robustness-contrast motion-modules -->  the same for mPC under blur and under occlusion
    <!-- table recipe-contrast DIR_TUNED[+DIR...] DIR_BUDGET -->  the same for each method at its own recipe
    <!-- table recipes tuning/modules-budget --> a tuning sweep's best_recipes.csv (each method's own recipe)
    <!-- table recipe-comparison DIR_SHARED DIR_TUNED[+DIR...] [DIR_BUDGET] -->  shared vs own recipe, reported seeds
    <!-- table robustness motion-modules -->   a comparison under occlusion and blur (SWEEP/robustness/)

:func:`update_readme` rewrites every marked table from the files (``selfy-lab report --readme``), with a line
above it where its runs were scored on the clips that chose the quick preset (val, before the test split) or
ran from code no commit holds; ``tests/test_readme.py`` checks that the committed README equals its
regeneration. Every word a table states about a difference comes from :mod:`selfy_lab.core.stats`.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..core.errors import SelfyError
from ..core.paper import TABLES
from ..core.stats import RULE
from ..store import results as R
from .recipes import (
    BEST_RECIPES, best_recipes, own_recipe_cells, recipe_cells, recipe_label, shared_and_own, shared_recipe,
)
from .tables import (
    COMPARISON_TABLE, contrasts, load_robustness, load_robustness_summary, load_runs, main_backbone_of, method_label,
    module_comparison, pairwise_orderings, reported_split, robustness_comparison, selfy_reference, sweep_summary,
    table_view, verdict_sentence, with_settings,
)


def _pm(mean, std) -> str:
    """``mean ± std``; a single run (no std) is its value alone."""
    return "" if mean != mean else f"{mean:.1f}" if std != std else f"{mean:.1f} ± {std:.1f}"


def _num(v, fmt: str = "{:.1f}") -> str:
    return "" if v is None or v != v else fmt.format(v)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


BLOCK_FIELDS = ("backbone", "block", "offsets", "window", "extractor", "integrator", "similarity", "fusion", "position",
                "options")


def paper_table(root: Path, table_id: str, sweep: str) -> str:
    """A sweep that reproduces a paper table: each of its variants (top-1 mean ± std and every seed, top-5, the
    binary accuracy within the time-reversed pairs, GFLOPs) beside the paper's top-1 of the row it reproduces
    (blank where the paper has none)."""
    if table_id and table_id not in TABLES:
        raise SelfyError(f"no paper table '{table_id}': choose from {', '.join(TABLES)}")
    summ, _, fields = sweep_summary(root / sweep, table_id)
    if summ.empty:
        raise SelfyError(f"{root / sweep} holds no finished runs: run its selfy-lab ablate command first")
    df, by = with_settings(load_runs(root / sweep / R.RUNS_TABLE), root / sweep)
    split = reported_split(df)
    val = df[df["split"] == split].drop_duplicates(["run_id", "metric"]).sort_values("seed")
    keys = [c for c in by if c in summ.columns]
    groups = {tuple(str(v) for v in k): g for k, g in val.groupby(keys, sort=False)}
    rows = []
    for r in summ.to_dict("records"):
        g = groups[tuple(str(r[k]) for k in keys)]
        per_seed = " / ".join(f"{100 * v:.1f}" for v in g.loc[g["metric"] == "top1", "value"])
        pairs = 100 * g.loc[g["metric"] == "order_pairs_binary", "value"].mean()
        if "setting" in fields:  # runs told apart by settings outside the variant fields: the sweep's own label
            label = str(r["setting"])
        else:
            label = ("baseline" if r["block"] == "none" else method_label(r, r["backbone"]) if "block" in fields
                     else ", ".join(f"{f}={r[f]}" for f in fields))
        if r["block"] == "none" and "setting" not in fields:  # baselines told apart by the fields that are not a block's
            label += "".join(f", {f}={r[f]}" for f in fields if f not in BLOCK_FIELDS)
            label += f" ({r['backbone']})" if summ["backbone"].nunique() > 1 else ""
        rows.append([label, _pm(100 * r["top1_mean"], 100 * r.get("top1_std", float("nan"))), per_seed,
                     _num(100 * r["top5_mean"]), _num(pairs), _num(r["gflops"], "{:.3f}"),
                     _num(r.get("paper_top1", float("nan")))])
    header = ["variant", f"{split} top-1, mean ± std", "per seed", "top-5", "order pairs (binary)", "GFLOPs",
              "paper top-1"]
    if not table_id:  # a sweep of its own: no paper column
        header, rows = header[:-1], [r[:-1] for r in rows]
        return markdown(header, rows)
    return markdown(header, rows) + _orderings_sentence(root / sweep, table_id)


def _orderings_sentence(sweep: Path, table_id: str) -> str:
    """The paper's orderings among the rows this sweep reproduces, judged by the stated test."""
    df = load_runs(sweep / R.RUNS_TABLE)
    view = table_view(df.assign(experiment=df["experiment"]), table_id)
    view = view[view["variant"].notna()]
    orders = pairwise_orderings(view) if len(view) else pd.DataFrame()
    if orders.empty:
        return ""
    counts = orders["verdict"].value_counts()
    seeds = sorted({int(n) for n in view["seeds"].dropna()})
    return (f"\nThe paper's {len(orders)} orderings among these rows, by {RULE}: "
            f"{counts.get('reproduced', 0)} reproduced, {counts.get('contradicted', 0)} contradicted, "
            f"{counts.get('cannot separate', 0)} cannot separate (seeds a row: {'/'.join(map(str, seeds))}).\n")


def sweep_table(root: Path, sweep: str) -> str:
    """Any sweep's variants, told apart by the fields in which they differ (top-1 over seeds, every seed)."""
    return paper_table(root, "", sweep)


def comparison_table(root: Path, sweep: str) -> str:
    """A block comparison's table (SWEEP/comparison.csv): top-1 over seeds, every seed, order pairs, cost."""
    t = _read(root / sweep / COMPARISON_TABLE)
    rows = [[str(r.variant), _pm(r.top1, r.top1_std), str(r.top1_per_seed), _num(r.order_pairs_binary, "{:.0f}"),
             _num(r.gflops, "{:.3f}"), _num(r.params_m, "{:.3f}")] for r in t.itertuples()]
    split = str(t["split"].iloc[0]) if "split" in t and len(t) else "val"  # older comparison files: val
    return markdown(["model", f"{split} top-1 (%)", "per seed", "order pairs (%)", "GFLOPs", "params (M)"], rows)


def recipes_table(root: Path, sweep: str) -> str:
    """A tuning sweep's best cell per method (SWEEP/best_recipes.csv) beside its shared-recipe cell; tuning
    sweeps joined by ``+`` (a grid and its extension): the best cell over all of their cells, beside the first
    one's shared recipe."""
    sweeps = sweep.split("+")
    if len(sweeps) == 1:
        t = _read(root / sweep / BEST_RECIPES)
    else:
        dirs = [_existing(root / s / R.RUNS_TABLE).parent for s in sweeps]
        t = best_recipes(recipe_cells(dirs), shared_recipe(dirs[0]))
    rows = [[str(r.method), f"{r.lr:g}", f"{int(r.epochs)}", _num(r.top1), _num(r.shared_top1), _num(r.gain, "{:+.1f}")]
            for r in t.itertuples()]
    return markdown(["method", "own lr", "own epochs", "top-1 at own recipe", "top-1 at shared recipe", "gain"], rows)


def recipe_comparison_table(root: Path, shared: str, tuned: str, budget: str = "") -> str:
    """Each method at the shared recipe (sweep ``shared``) and at its own (sweeps ``tuned``, joined by ``+``),
    reported seeds, best own top-1 first. With a tuning sweep ``budget``, each method's own cells are those at
    the recipe its best_recipes.csv chose, wherever among the ``tuned`` sweeps they were run."""
    own = tuned.split("+")
    for sweep in [shared, *own]:
        _existing(root / sweep / R.RUNS_TABLE)
    if budget:
        _existing(root / budget / BEST_RECIPES)
    table, shared_cells, _ = shared_and_own(root / shared, [root / s for s in own], root / budget if budget else None)
    rows = [[str(r.method), _pm(r.shared_top1, r.shared_std), str(r.shared_per_seed),
             f"{r.tuned_lr:g}, {int(r.tuned_epochs)} ep", _pm(r.tuned_top1, r.tuned_std), str(r.tuned_per_seed),
             _num(r.tuned_minus_shared, "{:+.1f}"), _ci(r.ci_low, r.ci_high), _p(r.p_holm), str(r.verdict)]
            for r in table.itertuples()]
    label = recipe_label(shared_cells)
    return markdown(["method", f"shared recipe ({label})" if label else "shared recipe", "per seed", "own recipe",
                     "top-1 at own recipe", "per seed", "own - shared", "95% CI", "p (Holm)", "verdict"], rows)


def _ci(low, high) -> str:
    return "" if low != low else f"[{low:+.1f}, {high:+.1f}]"


def _p(p) -> str:
    return "n < 2" if p != p else "<0.001" if p < 0.001 else f"{p:.3f}"


def contrast_table(root: Path, sweep: str) -> str:
    """A block comparison's (sweeps joined by ``+``) SELFY row against every other row by the stated test: the
    reference is the SELFY row with the best top-1 on val (:func:`.tables.selfy_reference`), the rows are scored
    on the runs' reported split; each difference (reference - row) with its 95% CI, the Holm-adjusted p over the
    table's comparisons and the verdict, then the sentence those verdicts allow."""
    df = load_runs(*[_existing(root / s / R.RUNS_TABLE) for s in sweep.split("+")])
    reference = selfy_reference(module_comparison(df, split="val"))
    split = reported_split(df)
    table = contrasts(module_comparison(df, split=split), reference)
    return (markdown(["method", "n", f"top-1 ({split})", f"{reference} - method", "95% CI", "p (Holm)",
                      f"{reference} is"], _contrast_rows(table)) + "\n" + verdict_sentence(table) + "\n")


def robustness_table(root: Path, sweep: str) -> str:
    """A block comparison under occlusion and motion blur (SWEEP/robustness/): clean top-1, and per kind mPC
    (± std over seeds), rPC and the top-1 at severity 6, means over seeds."""
    folder = root / sweep / "robustness"
    t = robustness_comparison(load_robustness(_existing(folder / R.ROBUSTNESS_TABLE)),
                              load_robustness_summary(_existing(folder / R.ROBUSTNESS_SUMMARY)))
    rows = [[str(r["model"]), _num(r["clean"]), *(x for k in ("blur", "occlusion") for x in (
        _pm(r[f"{k}_mPC"], r[f"{k}_mPC_std"]), _num(r[f"{k}_rPC"], "{:.2f}"), _num(r[f"{k}_worst"])))]
            for r in t.to_dict("records")]
    return markdown(["model", "clean", "blur mPC", "blur rPC", "blur s6", "occlusion mPC", "occlusion rPC",
                     "occlusion s6"], rows)


def _contrast_rows(table: pd.DataFrame) -> list[list[str]]:
    return [[str(r.variant), str(int(r.seeds)), _pm(r.top1, r.top1_std if r.seeds > 1 else float("nan")),
             _num(r.diff, "{:+.1f}"), _ci(r.ci_low, r.ci_high), _p(r.p_holm), str(r.verdict)] for r in table.itertuples()]


def robustness_contrast_table(root: Path, sweep: str) -> str:
    """A block comparison under occlusion and blur (the first sweep's robustness/ folder; ``+`` joins sweeps
    whose runs hold the SELFY row): per kind, the SELFY row chosen on clean val top-1 against every other row's
    mPC by the stated test (each kind its own Holm family), then the sentences those verdicts allow."""
    sweeps = sweep.split("+")
    runs = load_runs(*[_existing(root / s / R.RUNS_TABLE) for s in sweeps])
    reference = selfy_reference(module_comparison(runs, split="val"))
    folders = [root / s / "robustness" for s in sweeps if (root / s / "robustness" / R.ROBUSTNESS_TABLE).is_file()]
    if not folders:
        _existing(root / sweeps[0] / "robustness" / R.ROBUSTNESS_TABLE)
    t = robustness_comparison(load_robustness(*folders), load_robustness_summary(*folders),
                              main_backbone=main_backbone_of(runs))
    parts = []
    for kind in ("blur", "occlusion"):
        c = contrasts(t, reference, value=f"{kind}_mPC", label="model")
        parts.append(f"*{kind}*, mPC (%):\n\n" + markdown(
            ["method", "n", f"{kind} mPC", f"{reference} - method", "95% CI", "p (Holm)", f"{reference} is"],
            _contrast_rows(c)) + "\n" + verdict_sentence(c) + "\n")
    return "\n".join(parts)


def recipe_contrast_table(root: Path, tuned: str, budget: str) -> str:
    """Each method at its own recipe (the runs of sweeps ``tuned``, joined by ``+``, at the recipe the tuning
    sweep ``budget`` chose), the SELFY row chosen on val against every other by the stated test, then the
    sentence those verdicts allow."""
    dirs = [root / s for s in tuned.split("+")]
    for d in dirs:
        _existing(d / R.RUNS_TABLE)
    best = _read(root / budget / BEST_RECIPES)

    def table(split):
        cells = own_recipe_cells(recipe_cells(dirs, split=split), best)
        g = cells.groupby("method", sort=False)
        return pd.DataFrame({"variant": g["method"].first(), "backbone": g["backbone"].first(),
                             "block": g["block"].first(), "top1": g["top1"].mean(), "top1_std": g["top1"].std(ddof=1),
                             "seeds": g["top1"].count(), "split": g["split"].first()}).reset_index(drop=True)

    reference = selfy_reference(table("val"))
    reported = table(None)
    c = contrasts(reported, reference)
    split = str(reported["split"].iloc[0]) if len(reported) else "val"
    return (markdown(["method", "n", f"top-1 ({split}), own recipe", f"{reference} - method", "95% CI", "p (Holm)",
                      f"{reference} is"], _contrast_rows(c)) + "\n" + verdict_sentence(c) + "\n")


KINDS = {"paper": paper_table, "sweep": sweep_table, "comparison": comparison_table, "recipes": recipes_table,
         "recipe-comparison": recipe_comparison_table, "robustness": robustness_table, "contrast": contrast_table,
         "robustness-contrast": robustness_contrast_table, "recipe-contrast": recipe_contrast_table}


def _sweeps(spec: str) -> list[str]:
    """The sweep folders a marker's table reads (a paper table's id is not one)."""
    kind, *args = spec.split()
    args = args[1:] if kind == "paper" else args
    return [s for a in args for s in a.split("+")]


def provenance_note(spec: str, root: Path) -> str:
    """The line above a table whose runs were scored on the clips that chose the quick preset (val, written
    before the held-out test split) or ran from code that no commit holds (a ``+dirty`` revision); empty for a
    table without either. A tuning table (``recipes``) reads val by design and is only checked for the code."""
    kind = spec.split()[0]
    df = load_runs(*[root / s / R.RUNS_TABLE for s in _sweeps(spec) if (root / s / R.RUNS_TABLE).is_file()])
    if df.empty:
        return ""
    notes = []
    if kind != "recipes" and reported_split(df) == "val":
        notes.append("scored on val, the clips that chose the quick preset's recipe: not yet re-run on the "
                     "held-out test split")
    runs = df.drop_duplicates("run_id")
    dirty = runs["git_rev"].astype(str).str.endswith("+dirty").sum()
    if dirty:
        notes.append(f"{dirty} of {len(runs)} runs ran from code that no commit holds (`+dirty`)")
    return f"*Marked: {'; '.join(notes)}.*\n\n" if notes else ""


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise SelfyError(f"{path} does not exist: run the sweep (or its selfy-lab ablate / corrupt command) first")
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(_existing(path))


def render(spec: str, root: Path) -> str:
    """The markdown of one marker's table, e.g. ``paper 7a`` or ``comparison motion-modules``."""
    kind, *args = spec.split()
    if kind not in KINDS:
        raise SelfyError(f"unknown README table '{kind}': use {', '.join(KINDS)}")
    return KINDS[kind](root, *args)


def update_readme(readme: str | Path, root: str | Path | None = None) -> tuple[Path, int]:
    """Rewrite every marked table of ``readme`` from the result files under ``root`` (default: the README's
    folder). Returns the README and how many tables were written."""
    readme = Path(readme)
    root = Path(root) if root is not None else readme.parent
    try:
        text = readme.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise SelfyError(f"cannot read {readme} ({getattr(e, 'strerror', None) or e}): pass the results README, "
                         f"e.g. --readme results/README.md") from None
    count = 0

    def fill(m: re.Match) -> str:
        nonlocal count
        count += 1
        spec = m.group("spec")
        return m.group(1) + provenance_note(spec, root) + render(spec, root) + m.group(4)

    R.atomic_write_text(readme, R.README_TABLE.sub(fill, text))
    return readme, count
