"""What a sweep reports, drawn from its result files once its runs have finished: the report its experiment
file declared (``report:``, recorded in its sweep.yaml; :data:`selfy_lab.config.vocabulary.REPORTS`). The study
(:mod:`selfy_lab.studies.ablate`) trains and writes the runs; this module writes the sweep's tables and figures, and
the command line calls it after the study."""
from __future__ import annotations

from pathlib import Path

from ..config.vocabulary import COMPARISON_REPORTS, REPORTS
from ..core.errors import SelfyError
from ..core.paper import TABLES
from ..store import results as R
from .recipes import BEST_RECIPES, RECIPE_CELLS, RECIPE_CURVES, best_recipes, recipe_cells, recipe_curves, shared_recipe
from .tables import COMPARISON_TABLE, load_runs, module_comparison, summarize
from .viz import comparison_figure, recipe_curves_figure, save_figure, temporal_range_figure


def write_recipe_tables(out: str | Path) -> list[Path]:
    """A tuning sweep's report: every cell (SWEEP/recipes.csv), each method's best cell beside its cell at the
    sweep's shared recipe (its base config's, :func:`~selfy_lab.reports.recipes.shared_recipe`; SWEEP/best_recipes.csv),
    the validation curves (SWEEP/recipe_curves.csv, SWEEP/figures/recipe_curves.{png,pdf}); nothing before a
    run has finished."""
    cells = recipe_cells([out])
    if cells.empty:
        return []
    best, curves = best_recipes(cells, shared_recipe(out)), recipe_curves([out], cells)
    paths = [R.write_csv(Path(out) / name, t.to_dict("records"), list(t.columns))
             for name, t in ((RECIPE_CELLS, cells), (BEST_RECIPES, best), (RECIPE_CURVES, curves))]
    return paths + (save_figure(recipe_curves_figure(curves), R.figures_dir(out) / "recipe_curves") if len(curves) else [])


def write_curves(out: str | Path) -> list[Path]:
    """The validation curves of a sweep whose runs validated after more than one epoch (``eval_every``):
    SWEEP/recipe_curves.csv and SWEEP/figures/validation_curves.{png,pdf}, one panel per method, the mean over
    its seeds; nothing otherwise."""
    curves = recipe_curves([out], recipe_cells([out]))
    if curves.empty or curves.groupby(["method", "seed"])["epoch"].nunique().max() < 2:
        return []
    path = R.write_csv(Path(out) / RECIPE_CURVES, curves.to_dict("records"), list(curves.columns))
    return [path, *save_figure(recipe_curves_figure(curves, "validation top-1 after every epoch (mean over seeds)"),
                               R.figures_dir(out) / "validation_curves")]


def write_sweep_report(out: str | Path, report: str | None = None, *, paper_table: str | None = None) -> list[Path]:
    """What a sweep reports (``report``; default: what its sweep.yaml records,
    :func:`~selfy_lab.store.results.recorded_report`): ``recipes``: its recipe tables (:func:`write_recipe_tables`);
    ``comparison`` and ``robustness``: its table (SWEEP/comparison.csv), accuracy vs GFLOPs
    (SWEEP/figures/accuracy_vs_gflops.{png,pdf}) and its validation curves where it has them; ``offsets``: accuracy
    vs temporal range (SWEEP/figures/temporal_range.{png,pdf}, beside the paper's Table 3a when it reproduces it);
    ``none``: nothing (its table is the one `selfy-lab ablate` prints, and in the ablations notebook). The paper
    table beside the offsets figure is ``paper_table``, else the one the sweep's record names. Returns the files
    written."""
    report = report or R.recorded_report(out)
    if report not in REPORTS:
        raise SelfyError(f"{out}: unknown report '{report}' (known: {', '.join(REPORTS)})")
    if report == "recipes":
        return write_recipe_tables(out)
    df = load_runs(Path(out) / R.RUNS_TABLE)
    if report == "none" or df.empty:
        return []
    if report in COMPARISON_REPORTS:
        table = module_comparison(df)
        R.write_csv(Path(out) / COMPARISON_TABLE, table.to_dict("records"), list(table.columns))
        return [Path(out) / COMPARISON_TABLE,
                *save_figure(comparison_figure(table, f"{table['split'].iloc[0] if len(table) else 'val'} top-1 (%)"),
                             R.figures_dir(out) / "accuracy_vs_gflops"),
                *write_curves(out)]
    summ = summarize(df)
    table_id = R.recorded_paper_table(out) if paper_table is None else paper_table
    paper_rows = None
    if table_id.startswith("3a"):
        paper_rows = {TABLES[table_id]["default"]["backbone"]: {r["variant"]["offsets"]: r["top1"]
                                                                for r in TABLES[table_id]["rows"]}}
    return save_figure(temporal_range_figure(summ, paper_rows), R.figures_dir(out) / "temporal_range")
