"""The README names only flags that exist, and every flag of every command says what it does in --help."""
import re

import pytest
import typer
from helpers import ROOT
from typer.core import TyperOption

from selfy_lab.cli import app


def _commands():
    group = typer.main.get_command(app)
    return {name: cmd for name, cmd in group.commands.items()}


def test_every_flag_the_readme_names_exists():
    text = (ROOT / "README.md").read_text()
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
    known = {opt for cmd in _commands().values() for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    known |= {"--nproc-per-node", "--help"}  # torchrun's; every command's
    assert named and named <= known, sorted(named - known)


def test_every_command_documents_each_of_its_flags():
    checked = 0
    for name, cmd in _commands().items():
        assert cmd.help, name
        for p in cmd.params:
            if isinstance(p, TyperOption) and p.name != "help":
                assert (p.help or "").strip(), f"{name} {p.opts[0]} has no help"
                checked += 1
    assert checked > 100  # every command's options were seen


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 300
    text = "\n".join(lines)
    for must in ("make demo", "make test", "## Your own data", "## Your own motion module", "## On GPUs",
                 "## Where results go", "results/README.md", "@InProceedings", "## License"):
        assert must in text, must


@pytest.mark.slow
def test_the_results_readme_tables_are_those_the_committed_files_give(tmp_path):
    """results/README.md's tables cannot drift: regenerated from the committed CSVs, the file is unchanged."""
    import shutil

    from selfy_lab.reports.readme_tables import update_readme

    committed = ROOT / "results" / "README.md"
    copy = tmp_path / "README.md"
    shutil.copy(committed, copy)
    _, count = update_readme(copy, ROOT / "results")
    assert count >= 5
    assert copy.read_text() == committed.read_text(), "run: selfy-lab report --readme results/README.md"


def test_a_marked_table_is_rewritten_and_a_bad_marker_is_one_line(tmp_path):
    import pytest

    from selfy_lab.core.errors import SelfyError
    from selfy_lab.reports.readme_tables import update_readme

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "comparison.csv").write_text(
        "variant,backbone,block,offsets,position,top1,top1_std,seeds,top1_per_seed,order_pairs_binary,gflops,params_m\n"
        "tea,tsn,tea,none,res3,20.25,1.0,3,19.0 / 20.5 / 21.25,50.0,0.089,0.705\n")
    readme = tmp_path / "README.md"
    readme.write_text("prose\n<!-- table comparison s -->\nstale\n<!-- end table -->\nmore prose\n")
    update_readme(readme)
    text = readme.read_text()
    assert "stale" not in text and "| tea | 20.2 ± 1.0 | 19.0 / 20.5 / 21.25 | 50 | 0.089 | 0.705 |" in text
    assert text.startswith("prose\n<!-- table comparison s -->\n| model |") and text.endswith("<!-- end table -->\nmore prose\n")
    readme.write_text("<!-- table colour s -->\n<!-- end table -->\n")
    with pytest.raises(SelfyError, match="unknown README table 'colour'"):
        update_readme(readme)
    with pytest.raises(SelfyError, match="cannot read .*missing.md"):  # a wrong path: one line, no traceback
        update_readme(tmp_path / "missing.md")


def test_a_sweep_table_tells_its_baselines_apart(tmp_path):
    from dataclasses import replace

    from selfy_lab.store import results as R
    from selfy_lab.config.presets import resolve
    from selfy_lab.reports.readme_tables import render

    base = resolve("smoke")
    ids = []
    for tau, top1 in ((0.1, 0.5), (0.2, 0.25)):
        run = replace(base, model=replace(base.model, block="none", hierarchy="diff", hcml_tau=tau))
        R.write_metrics(R.run_dir(tmp_path / "tau", run.run_hash), R.result_rows(run, {"top1": top1, "top5": 1.0}))
        ids.append(run.run_hash)
    R.collect_runs(tmp_path / "tau", ids)
    text = render("sweep tau", tmp_path)
    assert "| baseline, hierarchy=diff@res2+res3+res4 | 50.0 | 50.0 |" in text  # one run: its value, no "± 0.0"
    assert "| baseline, hierarchy=diff@res2+res3+res4 tau=0.2 | 25.0 | 25.0 |" in text and "paper" not in text


def test_a_table_of_val_scored_or_uncommitted_runs_is_marked(tmp_path):
    """report --readme marks a table whose runs have no test rows (scored on the clips that chose the preset)
    or ran from uncommitted code, and the contrast kind states the verdicts the stated test allows."""
    import pandas as pd

    from selfy_lab.store import results as R
    from selfy_lab.reports.readme_tables import provenance_note, update_readme

    def rows(block, seed, top1, split="val", rev="abc1234"):
        base = {c: "none" for c in R.RUN_COLUMNS}
        base.update(experiment="m", run_id=f"{block}{seed}", backbone="tsn-r18-w16", frames=8, block=block,
                    offsets="-3..3" if block == "selfy" else "none", position="res3", seed=seed, split=split,
                    gflops=0.1, params_m=1.0, version="0.1.0", git_rev=rev, time="t")
        return [{**base, "metric": "top1", "value": top1}, {**base, "metric": "top5", "value": 0.9}]

    sweep = tmp_path / "s"
    sweep.mkdir()
    data = [r for b, acc in (("selfy", 0.8), ("tea", 0.4), ("stm", 0.4)) for seed in range(3)
            for r in rows(b, seed, acc + 0.01 * seed + (0.2 * seed if b == "stm" else 0))]
    pd.DataFrame(data, columns=R.RUN_COLUMNS).to_csv(sweep / R.RUNS_TABLE, index=False)
    note = provenance_note("contrast s", tmp_path)
    assert "scored on val" in note and "dirty" not in note
    test = [{**r, "split": "test"} for r in data]
    dirty = [{**r, "git_rev": "abc1234+dirty"} for r in data + test if r["run_id"] == "tea0"]
    pd.DataFrame(data + test + dirty, columns=R.RUN_COLUMNS).to_csv(sweep / R.RUNS_TABLE, index=False)
    note = provenance_note("contrast s", tmp_path)
    assert "scored on val" not in note and "1 of 9 runs ran from code that no commit holds" in note
    readme = tmp_path / "README.md"
    readme.write_text("<!-- table contrast s -->\n<!-- end table -->\n")
    update_readme(readme)
    text = readme.read_text()
    assert "| method | n | top-1 (test) | selfy -3..3 - method | 95% CI | p (Holm) | selfy -3..3 is |" in text
    assert "selfy -3..3 is above tea; not separated from stm." in text and "1 of 9 runs" in text
