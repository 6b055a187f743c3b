"""Recipe (tuning) sweeps: each run's learning rate and epochs read from its config, each method's best cell
beside its shared-recipe cell, the curves from the runs' histories, and the shared-vs-own comparison."""
import pandas as pd
import pytest

from helpers import finished_runs
from selfy_lab.reports.sweep_report import write_sweep_report
from selfy_lab.core.errors import SelfyError
from selfy_lab.reports.readme_tables import recipe_comparison_table
from selfy_lab.reports.recipes import (
    BEST_RECIPES,
    RECIPE_CELLS,
    best_recipes,
    own_recipe_cells,
    recipe_cells,
    recipe_comparison,
    recipe_curves,
    recipe_label,
    shared_recipe,
)


def test_each_method_gets_its_best_cell_beside_the_shared_one_and_its_curves(tmp_path):
    sweep = finished_runs(tmp_path, [("none", 0.002, 2, 100, 0.30), ("none", 0.004, 2, 100, 0.20),
                              ("tea", 0.002, 2, 100, 0.10), ("tea", 0.004, 2, 100, 0.40),
                              ("tea", 0.004, 3, 100, 0.40), ("tam", 0.008, 2, 100, 0.5),
                              ("tam", 0.002, 2, 100, 0.5), ("tam", 0.004, 2, 100, 0.1),
                              ("stm", 0.002, 2, 100, 0.3), ("stm", 0.004, 2, 100, 0.3)])
    cells = recipe_cells([sweep])
    assert len(cells) == 10
    best = best_recipes(cells, shared=(0.004, 2)).set_index("block")
    assert (best.loc["none", "lr"], best.loc["none", "epochs"]) == (0.002, 2)
    assert best.loc["none", "top1"] == pytest.approx(30) and best.loc["none", "gain"] == pytest.approx(10)
    assert (best.loc["tea", "lr"], best.loc["tea", "epochs"], best.loc["tea", "cells"]) == (0.004, 2, 3)
    assert best.loc["tea", "gain"] == pytest.approx(0)
    # ties: the shared recipe (stm), else the cheaper one (tam: the lower rate)
    assert best.loc["stm", "lr"] == 0.004 and best.loc["tam", "lr"] == 0.002
    curves = recipe_curves([sweep], cells)
    assert len(curves) == 2 * 9 + 3 and curves["val_top1"].max() == pytest.approx(50)


def test_a_sweep_that_declares_recipes_writes_its_recipe_tables_at_its_own_shared_recipe(tmp_path):
    cells = [("none", 0.002, 2, 100, 0.30), ("none", 0.004, 2, 100, 0.20), ("tea", 0.004, 2, 100, 0.1),
             ("tea", 0.008, 2, 100, 0.15), ("stm", 0.002, 2, 100, 0.1)]
    sweep = finished_runs(tmp_path / "a", cells, report="recipes", recipe=(0.004, 2))
    paths = write_sweep_report(sweep)  # the report its record declares
    assert sweep / RECIPE_CELLS in paths and sweep / BEST_RECIPES in paths
    assert any(p.suffix == ".png" for p in paths) and not (sweep / "comparison.csv").exists()
    best = pd.read_csv(sweep / BEST_RECIPES).set_index("block")
    assert (best.loc["none", "shared_lr"], best.loc["none", "shared_epochs"]) == (0.004, 2)
    assert best.loc["none", "shared_top1"] == pytest.approx(20) and best.loc["none", "gain"] == pytest.approx(10)
    # the shared recipe is the sweep's base config's, not a constant: another base, another comparison
    other = finished_runs(tmp_path / "b", cells, report="recipes", recipe=(0.002, 2))
    write_sweep_report(other)
    best = pd.read_csv(other / BEST_RECIPES).set_index("block")
    assert best.loc["none", "shared_lr"] == 0.002 and pd.isna(best.loc["tea", "shared_top1"])  # tea has no cell there
    # a record without its base recipe: one line, no guess
    from selfy_lab.store import results as R

    R.write_sweep_record(other, {"report": "recipes"})
    with pytest.raises(SelfyError, match="records no base recipe"):
        write_sweep_report(other)


def test_what_a_sweep_writes_follows_its_declared_report_not_its_rows(tmp_path):
    from selfy_lab.store import results as R

    cells = [("none", 0.004, 3, 0, 0.30), ("tea", 0.004, 3, 0, 0.40), ("tam", 0.004, 3, 0, 0.25),
             ("stm", 0.004, 3, 0, 0.35), ("stm", 0.008, 3, 0, 0.30)]
    for report in ("none", "comparison", "recipes"):
        sweep = finished_runs(tmp_path / report, cells, report=report)
        names = {p.name for p in write_sweep_report(sweep)}
        assert R.recorded_report(sweep) == report
        assert ("comparison.csv" in names) == (report == "comparison")
        assert ("best_recipes.csv" in names) == (report == "recipes")
        assert names or report == "none"
    with pytest.raises(SelfyError, match="unknown report 'ladder'"):
        write_sweep_report(tmp_path / "none", "ladder")


def test_the_shared_and_own_recipes_side_by_side():
    shared = pd.DataFrame({"method": ["a"] * 3, "lr": 0.004, "epochs": 6, "seed": [2, 0, 1], "top1": [30.0, 10, 20]})
    tuned = pd.DataFrame({"method": ["a"] * 3, "lr": 0.002, "epochs": 12, "seed": [0, 1, 2], "top1": [40.0, 50, 60]})
    t = recipe_comparison(shared, tuned).set_index("method")
    assert t.loc["a", "shared_top1"] == pytest.approx(20) and t.loc["a", "shared_std"] == pytest.approx(10)
    assert t.loc["a", "shared_per_seed"] == "10.0 / 20.0 / 30.0" and t.loc["a", "tuned_epochs"] == 12
    assert t.loc["a", "tuned_minus_shared"] == pytest.approx(30)
    # the stated test of own - shared: Welch over the seeds, the methods one Holm family
    from scipy import stats as sps
    ref = sps.ttest_ind([40.0, 50, 60], [30.0, 10, 20], equal_var=False)
    assert t.loc["a", "p"] == pytest.approx(ref.pvalue) and t.loc["a", "p_holm"] == pytest.approx(ref.pvalue)
    assert t.loc["a", "ci_low"] < 30 < t.loc["a", "ci_high"] and t.loc["a", "verdict"] == "own higher"
    one = recipe_comparison(shared.iloc[:1], tuned).set_index("method")  # one shared seed: never separated
    assert one.loc["a", "verdict"] == "cannot separate"


def test_a_recipe_is_never_chosen_on_the_test_split(tmp_path):
    cells = pd.DataFrame({"method": ["a", "a"], "backbone": "tsn", "block": "none", "offsets": "none",
                          "position": "none", "options": "none", "lr": [0.002, 0.004], "epochs": 6, "seed": 100,
                          "top1": [30.0, 40.0], "run_id": ["x", "y"], "split": ["val", "test"]})
    with pytest.raises(SelfyError, match="chosen on the validation split only.*test"):
        best_recipes(cells, (0.004, 6))
    assert best_recipes(cells.assign(split="val"), (0.004, 6))["lr"].iloc[0] == 0.004


def test_a_comparison_validated_every_epoch_gets_its_curves(tmp_path):
    sweep = finished_runs(tmp_path, [("none", 0.004, 3, 0, 0.30), ("tea", 0.004, 3, 0, 0.40), ("tea", 0.004, 3, 1, 0.20),
                              ("tam", 0.004, 3, 0, 0.25), ("stm", 0.004, 3, 0, 0.35)])
    paths = write_sweep_report(sweep, "comparison")
    assert sweep / "comparison.csv" in paths and any(p.name == "validation_curves.png" for p in paths)
    curves = pd.read_csv(sweep / "recipe_curves.csv")
    assert len(curves) == 5 * 3 and curves["val_top1"].max() == pytest.approx(40)


def test_own_recipes_are_gathered_from_several_sweeps_by_the_budget_s_choice(tmp_path):
    budget = finished_runs(tmp_path / "budget", [("none", 0.002, 2, 100, 0.30), ("none", 0.004, 2, 100, 0.20),
                                           ("tea", 0.004, 3, 100, 0.40), ("tea", 0.004, 2, 100, 0.10)],
                           report="recipes")
    write_sweep_report(budget)
    finished_runs(tmp_path / "shared", [(b, 0.004, 2, s, top1) for b, top1 in (("none", 0.2), ("tea", 0.1)) for s in (0, 1)])
    finished_runs(tmp_path / "a", [("none", 0.002, 2, s, 0.3 + s / 10) for s in (0, 1)] + [("tea", 0.002, 3, 0, 0.9)])
    finished_runs(tmp_path / "b", [("tea", 0.004, 3, s, 0.5) for s in (0, 1)] + [("none", 0.004, 3, 0, 0.9)])
    best = pd.read_csv(budget / BEST_RECIPES)
    own = own_recipe_cells(recipe_cells([tmp_path / "a", tmp_path / "b"]), best)
    # each method's cells at its chosen recipe only, whichever sweep ran them
    assert sorted(zip(own["method"], own["lr"], own["epochs"])) == [
        ("tea", 0.004, 3), ("tea", 0.004, 3), ("tsn-r18-w8 (no block)", 0.002, 2), ("tsn-r18-w8 (no block)", 0.002, 2)]
    assert recipe_label(own[own["lr"] == 0.004]) == "lr 0.004, 3 ep" and recipe_label(own) == ""
    table = recipe_comparison_table(tmp_path, "shared", "a+b", "budget")
    assert "shared recipe (lr 0.004, 2 ep)" in table.splitlines()[0]
    assert "| tea | 10.0 ± 0.0 | 10.0 / 10.0 | 0.004, 3 ep | 50.0 ± 0.0 | 50.0 / 50.0 | +40.0 |" in table
    assert "| 0.002, 2 ep | 35.0 ± 7.1 | 30.0 / 40.0 | +15.0 |" in table
    for args in (("shared", "a+nothing", "budget"), ("nothing", "a"), ("shared", "a", "nothing")):
        with pytest.raises(SelfyError, match="nothing/.* does not exist"):
            recipe_comparison_table(tmp_path, *args)


def test_each_method_at_its_own_recipe_against_selfy_by_the_stated_test(tmp_path):
    from selfy_lab.reports.readme_tables import recipe_contrast_table

    budget = finished_runs(tmp_path / "budget", [("selfy", 0.004, 2, 100, 0.5), ("selfy", 0.008, 2, 100, 0.6),
                                                 ("tea", 0.004, 2, 100, 0.3), ("tea", 0.004, 3, 100, 0.4)],
                           report="recipes")
    write_sweep_report(budget)
    finished_runs(tmp_path / "own", [("selfy", 0.008, 2, s, 0.80 + 0.01 * s) for s in range(3)]
                  + [("tea", 0.004, 3, s, 0.40 + 0.02 * s) for s in range(3)]
                  + [("tea", 0.004, 2, s, 0.95) for s in range(3)])  # not tea's chosen recipe: left out
    text = recipe_contrast_table(tmp_path, "own", "budget")
    header, _, row = text.splitlines()[:3]
    assert header.startswith("| method | n | top-1 (val), own recipe | selfy")
    assert row.startswith("| tea | 3 | 42.0 ± 2.0 | +39.0 |") and row.endswith("| higher |")
    assert "is above tea." in text


def test_a_grid_and_its_extension_choose_together(tmp_path):
    """The README's recipes table of a grid joined with its extension (``recipes A+B``) takes each method's
    best cell over both sweeps' cells, the grid's one where the extension did worse."""
    from selfy_lab.reports.readme_tables import recipes_table

    finished_runs(tmp_path / "grid", [("none", 0.004, 2, 100, 0.30), ("none", 0.008, 2, 100, 0.40),
                                      ("tea", 0.004, 2, 100, 0.20), ("tea", 0.002, 2, 100, 0.25)])
    finished_runs(tmp_path / "edge", [("none", 0.008, 4, 100, 0.35), ("tea", 0.002, 4, 100, 0.50)])
    rows = [r.split(" | ") for r in recipes_table(tmp_path, "grid+edge").splitlines()[2:]]
    assert [r[1:4] for r in rows] == [["0.008", "2", "40.0"], ["0.002", "4", "50.0"]]


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_the_own_recipe_comparison_trains_each_method_at_the_recipe_its_tuning_chose(preset):
    """experiments/motion_modules_own.yaml trains each method at the recipe best_recipes chooses over the
    committed tuning budget and its 24-epoch edge (validation top-1 on the tuning split), and at no other: a
    recipe typed by hand that the tuning did not choose fails here."""
    from pathlib import Path

    from selfy_lab.studies.ablate import plan_sweep

    root = Path(__file__).resolve().parents[1]
    tuning = [root / "results/tuning/modules-budget", root / "results/tuning/modules-budget-edge"]
    best = best_recipes(recipe_cells(tuning), shared_recipe(tuning[0]))
    def backbone(name: str) -> str:  # the tuning ran the quick preset's narrow backbones
        return name if preset == "quick" else name.replace("-w16", "")

    chosen = {(backbone(r.backbone), r.block): (float(r.lr), int(r.epochs)) for r in best.itertuples()}
    plan = plan_sweep({"experiment": root / "experiments/motion_modules_own.yaml", "preset": preset}, seeds=1)
    planned = {(p.run.model.backbone, p.run.model.block): (p.run.train.lr, p.run.train.epochs) for p in plan.runs}
    assert len(chosen) == 12 and planned == chosen
