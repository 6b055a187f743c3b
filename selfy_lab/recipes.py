"""Recipes: sweeps whose runs differ in how they are trained (peak learning rate, epochs), read from the results
store. A method is a model variant (backbone, block, offsets, position, options); its cells are its recipes.

* :func:`recipe_cells` every run of such sweeps with its method, recipe and validation top-1;
* :func:`best_recipes` each method's best cell (its own recipe) beside its cell at the shared recipe;
* :func:`recipe_curves` the validation top-1 after every epoch of each run, from its history;
* :func:`own_recipe_cells` of reported runs, each method's at the recipe its tuning chose;
* :func:`recipe_comparison` each method at the shared recipe and at its own, over the reported seeds;
* :func:`shared_and_own` that comparison read from committed sweeps, the own recipes chosen by a tuning sweep.

A tuning sweep's runs.csv holds no learning rate or epoch count (they are not variant columns): both are read
from each run's config.yaml.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import results as R
from .tables import load_runs, main_backbone_of, method_label, recipe_name

METHOD = ["backbone", "block", "offsets", "position", "options"]
RECIPE = ["lr", "epochs"]
CELL_COLUMNS = ["method", *METHOD, *RECIPE, "seed", "top1", "run_id"]
RECIPE_CELLS, BEST_RECIPES, RECIPE_CURVES = R.RECIPE_CELLS, R.BEST_RECIPES, R.RECIPE_CURVES  # in the sweep


def _runs(sweep_dirs) -> pd.DataFrame:
    df = load_runs(*[Path(d) / R.RUNS_TABLE for d in sweep_dirs])
    return df[(df["split"] == "val") & (df["metric"] == "top1")] if len(df) else df


def _run_dir(sweep_dirs, run_id: str) -> Path:
    """The folder of a run of these sweeps (its config and history; checkpoints are not needed)."""
    dirs = [R.run_dir(s, run_id) for s in sweep_dirs]
    return next((d for d in dirs if (d / R.CONFIG).is_file()), dirs[0])


def recipe_cells(sweep_dirs, main_backbone: str = "") -> pd.DataFrame:
    """One row per run of ``sweep_dirs``: its method (label and variant columns), lr, epochs, seed and
    validation top-1 (%); rows whose run folder is not there are left out. ``main_backbone``: the backbone whose
    methods are labelled without it (default: :func:`main_backbone_of` the runs)."""
    top1 = _runs(sweep_dirs)
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
                    "epochs": run.train.epochs, "seed": int(r.seed), "top1": 100 * r.value, "run_id": r.run_id})
    return pd.DataFrame(out, columns=CELL_COLUMNS)


def is_recipe_sweep(cells: pd.DataFrame) -> bool:
    """Was some method of a sweep trained at more than one recipe (learning rate, epochs)?"""
    return not cells.empty and bool((cells.groupby("method")[RECIPE].nunique().max(axis=1) > 1).any())


def best_recipes(cells: pd.DataFrame, shared: tuple[float, int] = (0.004, 6)) -> pd.DataFrame:
    """Per method (in the cells' order): its best cell by mean top-1 over the cell's seeds (ties: the shared
    recipe, else the cheaper one, fewer epochs then the lower rate), that top-1, the cell at the ``shared``
    recipe and the gain."""
    cols = ["method", *METHOD, "lr", "epochs", "top1", "shared_lr", "shared_epochs", "shared_top1", "gain", "cells"]
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
    top-1 mean, std (none for a single seed) and every seed of both, and the difference of the means."""
    def stats(cells: pd.DataFrame, prefix: str) -> pd.DataFrame:
        g = cells.sort_values("seed").groupby("method", sort=False)
        return pd.DataFrame({
            f"{prefix}_lr": g["lr"].first(), f"{prefix}_epochs": g["epochs"].first(),
            f"{prefix}_top1": g["top1"].mean(), f"{prefix}_std": g["top1"].std(ddof=1),
            f"{prefix}_seeds": g["seed"].apply(lambda s: "/".join(str(v) for v in s)),
            f"{prefix}_per_seed": g["top1"].apply(lambda s: " / ".join(f"{v:.1f}" for v in s))})

    table = stats(shared, "shared").join(stats(tuned, "tuned"), how="outer")
    table["tuned_minus_shared"] = table["tuned_top1"] - table["shared_top1"]
    return table.reset_index().rename(columns={"index": "method"})


def shared_and_own(shared_dir, own_dirs, budget_dir=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Each method at the shared recipe (the runs of sweep ``shared_dir``) and at its own (the runs of the sweeps
    ``own_dirs``; with a tuning sweep ``budget_dir``, only those at the recipe its best_recipes.csv chose), over
    the reported seeds, methods with both, best own top-1 first: (:func:`recipe_comparison`, shared cells, own
    cells)."""
    shared = recipe_cells([shared_dir])
    own = recipe_cells(list(own_dirs), main_backbone_of(shared))
    if budget_dir is not None:
        own = own_recipe_cells(own, pd.read_csv(Path(budget_dir) / BEST_RECIPES))
    table = recipe_comparison(shared, own).dropna(subset=["tuned_top1", "shared_top1"])
    table = table.sort_values("tuned_top1", ascending=False, kind="stable").reset_index(drop=True)
    return table, shared[shared["method"].isin(table["method"])], own[own["method"].isin(table["method"])]
