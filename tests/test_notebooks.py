"""Notebooks run top to bottom, headless, against a small results fixture; `selfy-lab report` writes HTML."""
import json
from pathlib import Path

import nbformat
import pytest
from helpers import built_once, cli_inproc

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def fixture_results(smoke_sweep, tmp_path_factory):
    """A results/ tree like the committed one, small: an offsets sweep (with checkpoints), its robustness
    rows and examples, the FLOPs table, and a tuning budget with its shared- and own-recipe sweeps. Built once
    per test session (:func:`helpers.built_once`); the notebooks only read it."""
    return built_once(tmp_path_factory, "fixture-results", lambda root: _fixture_results(smoke_sweep, root))


def _fixture_results(smoke_sweep, root):
    import shutil

    from helpers import finished_runs
    from selfy_lab.studies import robustness as R
    from selfy_lab.reports.sweep_report import write_sweep_report
    from selfy_lab.models.flops import paper_table
    from selfy_lab.store.results import robustness_dir, sweep_run_dirs

    root.mkdir(exist_ok=True)
    sweep = root / "ablate-offsets"
    shutil.copytree(smoke_sweep, sweep)
    R.evaluate_robustness(sweep_run_dirs(sweep), ["blur"], [2, 6], "center", robustness_dir(sweep))
    paper_table(out=root / "flops")
    # a tuning budget, the shared-recipe comparison and the own recipes' runs (results only, no training)
    budget = finished_runs(root / "tuning" / "modules-budget",
                           [("none", 0.004, 6, 100, 0.2), ("none", 0.002, 3, 100, 0.3),
                            ("tea", 0.004, 6, 100, 0.2), ("tea", 0.008, 3, 100, 0.4)], report="recipes")
    write_sweep_report(budget)
    finished_runs(root / "motion-modules", [(b, 0.004, 6, s, 0.2) for b in ("none", "tea") for s in (0, 1)],
                  "motion-modules", report="robustness")
    finished_runs(root / "motion-modules-tuned-12", [("none", 0.002, 3, s, 0.3) for s in (0, 1)]
                  + [("tea", 0.008, 3, s, 0.4) for s in (0, 1)], "motion-modules-tuned-12")
    return root


def test_notebooks_are_committed_without_outputs():
    assert {p.stem for p in NOTEBOOKS} == {"ablations", "robustness", "gradcam", "stss_explorer", "flops"}
    for p in NOTEBOOKS:
        nb = json.loads(p.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, p.name
        # valid nbformat 4.5: every cell has a unique id (nbformat warns today and will refuse later)
        ids = [cell.get("id") for cell in nb["cells"]]
        assert all(ids) and len(set(ids)) == len(ids), p.name
        nbformat.validate(nbformat.reads(p.read_text(), as_version=4))


def test_notebooks_define_no_models():
    """Notebooks call the library: no nn.Module subclasses, no hard-coded paper numbers."""
    for p in NOTEBOOKS:
        src = "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code")
        assert "nn.Module" not in src and "class " not in src, p.name
        assert "46.9" not in src and "48.4" not in src, p.name  # the paper's values come from selfy_lab.core.paper


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_against_fixture(path, fixture_results, monkeypatch):
    """Executed as a user's plain kernel runs it (nbclient, as `jupyter nbconvert --execute` does): nothing set
    for the notebooks but where the results are."""
    from nbclient import NotebookClient

    monkeypatch.setenv("SELFY_LAB_RESULTS", str(fixture_results))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows the figures
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    if path.stem in ("ablations", "robustness", "gradcam", "stss_explorer"):
        assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows figures"
    if path.stem == "ablations":  # the shared-vs-own recipe table of the fixture's tuning budget
        assert any("tuned_top1" in str(o.get("data", {}).get("text/html", "")) for o in outputs)
    widgets = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    if path.stem == "stss_explorer":
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), "the controls"
    # nothing drawn into a widget without a front end: such outputs travel between client and kernel as widget
    # messages, which have left executions waiting for many minutes
    assert not [w for w in widgets.values() if w.get("state", {}).get("outputs")]


@pytest.mark.slow
def test_report_writes_html(fixture_results, tmp_path, monkeypatch):
    """`selfy-lab report` runs a notebook through its own execution (local sockets, kernel log dropped; a cell's
    error would stop it with one line) and writes it as HTML with its figures: the explorer, whose controls are
    widgets. The other notebooks run under a user's plain kernel above."""
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the figures
    p = cli_inproc("report", "--results-root", fixture_results, "--out", tmp_path, "--only", "stss_explorer", cwd=ROOT)
    assert p.returncode == 0, p.stderr
    html = (tmp_path / "stss_explorer.html").read_text()
    assert "<html" in html and "data:image/png;base64" in html
    assert "application/vnd.jupyter.widget-view+json" in html  # the controls


@pytest.mark.slow
def test_report_cell_timeout_is_one_line(fixture_results, tmp_path):
    p = cli_inproc("report", "--results-root", fixture_results, "--out", tmp_path, "--only", "stss_explorer",
                   "--timeout-s", "1", cwd=ROOT)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == ["error: stss_explorer.ipynb: a cell ran longer than --timeout-s 1"]
    assert not (tmp_path / "stss_explorer.html").exists()
