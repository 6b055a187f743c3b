"""Recipes: sweeps whose runs differ in how they are trained (peak learning rate, epochs), read from the results
store. A method is a model variant (backbone, block, offsets, position, options); its cells are its recipes.

* :func:`recipe_cells` every run of such sweeps with its method, recipe and top-1 on one split (val to choose);
* :func:`best_recipes` each method's best cell (its own recipe) beside its cell at the shared recipe (the
  sweep's base recipe, :func:`shared_recipe`);
* :func:`recipe_curves` the validation top-1 after every epoch of each run, from its history;
* :func:`own_recipe_cells` of reported runs, each method's at the recipe its tuning chose;
* :func:`recipe_comparison` each method at the shared recipe and at its own, over the reported seeds, with the
  stated test of their difference (:mod:`selfy_lab.core.stats`);
* :func:`shared_and_own` that comparison read from committed sweeps, the own recipes chosen by a tuning sweep.

A tuning sweep's runs.csv holds no learning rate or epoch count (they are not variant columns): both are read
from each run's config.yaml.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.errors import SelfyError
from ..core.stats import direction, family, welch_samples
from ..store import results as R
from .tables import load_runs, main_backbone_of, method_label, recipe_name, reported_split

METHOD = ["backbone", "block", "offsets", "position", "options"]
RECIPE = ["lr", "epochs"]
CELL_COLUMNS = ["method", *METHOD, *RECIPE, "seed", "top1", "run_id", "split"]
RECIPE_CELLS, BEST_RECIPES, RECIPE_CURVES = R.RECIPE_CELLS, R.BEST_RECIPES, R.RECIPE_CURVES  # in the sweep


def _runs(sweep_dirs, split: str | None) -> pd.DataFrame:
    df = load_runs(*[Path(d) / R.RUNS_TABLE for d in sweep_dirs])
    split = split or reported_split(df)
    return df[(df["split"] == split) & (df["metric"] == "top1")] if len(df) else df


def _run_dir(sweep_dirs, run_id: str) -> Path:
    """The folder of a run of these sweeps (its config and history; checkpoints are not needed)."""
    dirs = [R.run_dir(s, run_id) for s in sweep_dirs]
    return next((d for d in dirs if (d / R.CONFIG).is_file()), dirs[0])


def recipe_cells(sweep_dirs, main_backbone: str = "", split: str | None = "val") -> pd.DataFrame:
    """One row per run of ``sweep_dirs``: its method (label and variant columns), lr, epochs, seed and top-1
    (%) on ``split`` (``val``, what a recipe is chosen on; None: the runs' :func:`.tables.reported_split`, what a
    comparison reports); rows whose run folder is not there are left out. ``main_backbone``: the backbone
    whose methods are labelled without it (default: :func:`main_backbone_of` the runs)."""
    top1 = _runs(sweep_dirs, split)
    if top1.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    main_backbone = main_backbone or main_backbone_of(top1)
    out = []
    for r in top1.drop_duplicates("run_id").itertuples(index=False):
        folder = _run_dir(sweep_dirs, r.run_id)
        if not (folder / R.CONFIG).is_file():  # rows without their run folder: their recipe is unknown
            continue
        run = R.read_run_config(folder)
        rec = {k: getattr(r, k) for k in METHOD}
        out.append({"method": method_label(rec, main_backbone), **rec, "lr": run.train.lr,
                    "epochs": run.train.epochs, "seed": int(r.seed), "top1": 100 * r.value, "run_id": r.run_id,
                    "split": r.split})
    return pd.DataFrame(out, columns=CELL_COLUMNS)


def shared_recipe(sweep_dir) -> tuple[float, int]:
    """The shared recipe of a tuning sweep, the one its methods are compared at: the learning rate and epochs of
    the config its experiment file and flags resolve to before its axes or variants vary them (its sweep.yaml's
    ``recipe``; the record's ``base`` is its first run's config, which may differ)."""
    recipe = R.read_sweep_record(sweep_dir).get("recipe")
    if not isinstance(recipe, dict) or not {"lr", "epochs"} <= set(recipe):
        raise SelfyError(f"{Path(sweep_dir) / R.SWEEP_RECORD} records no base recipe (recipe: {{lr, epochs}}): "
                         "re-run its ablate command to write it")
    return float(recipe["lr"]), int(recipe["epochs"])


def best_recipes(cells: pd.DataFrame, shared: tuple[float, int]) -> pd.DataFrame:
    """Per method (in the cells' order): its best cell by mean validation top-1 over the cell's seeds (cells of
    any other split stop with one line: the test split chooses nothing) (ties: the ``shared`` recipe, the
    sweep's own :func:`shared_recipe`, else the cheaper one, fewer epochs then the lower rate), that top-1, the
    cell at the shared recipe and the gain."""
    cols = ["method", *METHOD, "lr", "epochs", "top1", "shared_lr", "shared_epochs", "shared_top1", "gain", "cells"]
    if "split" in cells and (cells["split"] != "val").any():
        raise SelfyError("a recipe is chosen on the validation split only: these cells were scored on "
                         f"{', '.join(sorted(set(cells['split']) - {'val'}))}")
    out = []
    for method, g in cells.groupby("method", sort=False):
        means = g.groupby(RECIPE, as_index=False)["top1"].mean()
        means["shared"] = (means["lr"] == shared[0]) & (means["epochs"] == shared[1])
        means = means.sort_values(["shared", "epochs", "lr"], ascending=[False, True, True])
        best = means.loc[means["top1"].idxmax()]  # the first of the best: the shared cell, else the cheaper
        at_shared = means[(means["lr"] == shared[0]) & (means["epochs"] == shared[1])]["top1"]
        shared_top1 = float(at_shared.iloc[0]) if len(at_shared) else float("nan")
        out.append({"method": method, **{k: g[k].iloc[0] for k in METHOD}, "lr": best["lr"],
                    "epochs": int(best["epochs"]), "top1": best["top1"], "shared_lr": shared[0],
                    "shared_epochs": shared[1], "shared_top1": shared_top1, "gain": best["top1"] - shared_top1,
                    "cells": len(means)})
    return pd.DataFrame(out, columns=cols)


def recipe_curves(sweep_dirs, cells: pd.DataFrame) -> pd.DataFrame:
    """Validation top-1 (%) after every epoch of each run in ``cells`` that validated then (history.csv)."""
    out = []
    for c in cells.itertuples(index=False):
        rows = R.read_csv(_run_dir(sweep_dirs, c.run_id) / R.HISTORY)
        out += [{"method": c.method, "lr": c.lr, "epochs": c.epochs, "seed": c.seed, "epoch": int(h["epoch"]),
                 "val_top1": 100 * float(h["val_top1"])} for h in rows if h.get("val_top1")]
    return pd.DataFrame(out, columns=["method", "lr", "epochs", "seed", "epoch", "val_top1"])


def own_recipe_cells(cells: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """The ``cells`` of each method of ``best`` (a :func:`best_recipes` table) at the recipe it chose; methods
    that ``best`` does not name, and other recipes, are left out. Cells from several sweeps may meet here.
    Methods are matched by their variant columns, not by their labels (which depend on the main backbone)."""
    def key(df: pd.DataFrame) -> pd.DataFrame:
        return df.astype({**{k: str for k in METHOD}, "lr": float, "epochs": int})

    return key(cells).merge(key(best[[*METHOD, *RECIPE]]), on=[*METHOD, *RECIPE])[CELL_COLUMNS]


def recipe_label(cells: pd.DataFrame) -> str:
    """The :func:`recipe_name` of the cells when every one was trained at one recipe, else empty."""
    recipes = cells[RECIPE].drop_duplicates()
    return recipe_name(*recipes.iloc[0]) if len(recipes) == 1 else ""


def recipe_comparison(shared: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """Each method at the shared recipe (cells ``shared``) and at its own (cells ``tuned``), reported seeds:
    top-1 mean, std (none for a single seed) and every seed of both, and the difference of the means with the
    stated test (:mod:`selfy_lab.core.stats`, the methods one Holm family): its 95% confidence interval, p, the
    adjusted p and the verdict (``own higher`` / ``own lower`` / ``cannot separate``)."""
    def stats(cells: pd.DataFrame, prefix: str) -> pd.DataFrame:
        g = cells.sort_values("seed").groupby("method", sort=False)
        return pd.DataFrame({
            f"{prefix}_lr": g["lr"].first(), f"{prefix}_epochs": g["epochs"].first(),
            f"{prefix}_top1": g["top1"].mean(), f"{prefix}_std": g["top1"].std(ddof=1),
            f"{prefix}_seeds": g["seed"].apply(lambda s: "/".join(str(v) for v in s)),
            f"{prefix}_per_seed": g["top1"].apply(lambda s: " / ".join(f"{v:.1f}" for v in s))})

    table = stats(shared, "shared").join(stats(tuned, "tuned"), how="outer")
    table["tuned_minus_shared"] = table["tuned_top1"] - table["shared_top1"]
    values = {p: c.groupby("method")["top1"].apply(list) for p, c in (("shared", shared), ("tuned", tuned))}
    diffs = [welch_samples(values["tuned"].get(m, []), values["shared"].get(m, [])) for m in table.index]
    tests = family(diffs)
    for col in ("ci_low", "ci_high", "p", "p_holm"):
        table[col] = [t[col] for t in tests]
    table["verdict"] = [direction(d.diff, t["p_holm"], "own higher", "own lower") for d, t in zip(diffs, tests)]
    return table.reset_index().rename(columns={"index": "method"})


def shared_and_own(shared_dir, own_dirs, budget_dir=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Each method at the shared recipe (the runs of sweep ``shared_dir``) and at its own (the runs of the sweeps
    ``own_dirs``; with a tuning sweep ``budget_dir``, only those at the recipe its best_recipes.csv chose), over
    the reported seeds, methods with both, best own top-1 first: (:func:`recipe_comparison`, shared cells, own
    cells)."""
    shared = recipe_cells([shared_dir], split=None)
    own = recipe_cells(list(own_dirs), main_backbone_of(shared), split=None)
    if len(shared) and len(own) and set(shared["split"]) != set(own["split"]):
        raise SelfyError(f"the shared-recipe runs ({shared_dir}) and the own-recipe runs were scored on different "
                         "splits: re-run the older sweep so that both report one split")
    if budget_dir is not None:
        own = own_recipe_cells(own, pd.read_csv(Path(budget_dir) / BEST_RECIPES))
    table = recipe_comparison(shared, own).dropna(subset=["tuned_top1", "shared_top1"])
    table = table.sort_values("tuned_top1", ascending=False, kind="stable").reset_index(drop=True)
    return table, shared[shared["method"].isin(table["method"])], own[own["method"].isin(table["method"])]
