"""The package's layers (pyproject.toml's import-linter contract): each layer is a folder, no import points up
a layer or across two independent ones, no import circle inside any package. The contract is checked on the
code, and shown to catch a violation."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import ROOT


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    lint = Path(sys.executable).parent / "lint-imports"  # import-linter's command, beside this interpreter
    return subprocess.run([str(lint), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_code_keeps_its_layers_and_has_no_import_circles():
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "3 kept, 0 broken" in res.stdout


def test_an_import_up_a_layer_or_a_circle_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "selfy_lab", tmp_path / "selfy_lab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    tables = tmp_path / "selfy_lab" / "reports" / "tables.py"
    tables.write_text(tables.read_text() + "\n\ndef _up():\n    from ..engine.train import fit  # a report importing the engine\n")
    res = _lint(tmp_path)
    assert res.returncode != 0 and "reports read the results store" in res.stdout and "BROKEN" in res.stdout
    tables.write_text(tables.read_text().replace("from ..engine.train import fit", "pass"))
    extract = tmp_path / "selfy_lab" / "models" / "selfsim.py"  # a circle inside models/
    extract.write_text(extract.read_text() + "\n\ndef _circle():\n    from .extract import soft_argmax\n")
    res = _lint(tmp_path)
    assert res.returncode != 0 and "1 broken" in res.stdout
    extract.write_text(extract.read_text().replace("from .extract import soft_argmax", "pass"))
    # studies compute, reports draw: neither the engine (below the reports) nor a study (beside them) may draw
    for folder, module in (("engine", "evaluate"), ("studies", "robustness")):
        path = tmp_path / "selfy_lab" / folder / f"{module}.py"
        before = path.read_text()
        path.write_text(before + "\n\ndef _draw():\n    from ..reports.viz import save_figure\n")
        res = _lint(tmp_path)
        assert res.returncode != 0 and f"selfy_lab.{folder}.{module} -> selfy_lab.reports.viz" in res.stdout
        path.write_text(before)


def test_the_folders_are_the_layers():
    """Every module sits in a layer's folder (none beside them), every folder is a layer, and there are at most 8."""
    import tomllib

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    named = {m.strip() for layer in contract["layers"] for m in layer.split("|")}
    package = ROOT / "selfy_lab"
    assert [p.name for p in package.glob("*.py")] == ["__init__.py"]
    assert {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == named
    assert len(contract["layers"]) <= 8


def _signatures():
    """(where, positional parameter names) of every builder (``build_*``, ``make_*``, ``create_*``) and every
    class constructor of the package."""
    import ast

    for path in sorted((ROOT / "selfy_lab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
                if init is not None:
                    yield f"{path.name}:{node.name}", [a.arg for a in init.args.posonlyargs + init.args.args][1:]
            elif isinstance(node, ast.FunctionDef) and node.name.startswith(("build_", "make_", "create_")):
                args = [a.arg for a in node.args.posonlyargs + node.args.args]
                yield f"{path.name}:{node.name}", args[1:] if args[:1] in (["self"], ["cls"]) else args


def test_builders_and_constructors_take_their_subjects_positionally_and_the_rest_by_name():
    """At most two positional parameters (``build_block(kind, channels, *, ...)``), so that no call passes a
    row of bare values, booleans among them."""
    wide = [f"{where} {args}" for where, args in _signatures() if len(args) > 2]
    assert not wide, "\n".join(wide)
    assert sum(1 for _ in _signatures()) > 50  # the scan sees the package


HEAVY = ("pytorch_grad_cam", "seaborn", "imagecorruptions")  # seconds to import, each needed by one feature


def _imports_in_functions():
    """(file, imported module, the lines that may name it) of every import statement inside a function of the
    package."""
    import ast

    for path in sorted((ROOT / "selfy_lab").rglob("*.py")):
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    module = node.names[0].name if isinstance(node, ast.Import) else "." * node.level + (node.module or "")
                    # the import's own line and the block it opens: imports, a `try:` or a comment line above it
                    k, named = node.lineno - 1, []
                    while k >= 0:
                        text = lines[k].strip()
                        named.append(text)
                        if k < node.lineno - 1 and not text.startswith(("from ", "import ", "try:", "#")):
                            break
                        k -= 1
                    yield path.relative_to(ROOT / "selfy_lab").as_posix(), module, node.lineno, named


def test_an_import_inside_a_function_keeps_a_dependency_optional_or_a_heavy_one_out_of_every_start():
    """Imports sit at the top of their module. The exceptions are named in a comment: ``# optional:`` keeps an
    optional dependency optional (Jupyter, submitit, tensorboard, torchcodec, POSIX's fcntl); ``# deferred:``
    keeps torch out of ``import selfy_lab``, the command line's start and the results store (only there), and a
    library that takes seconds to import and serves one feature (grad-cam's CAM maps, seaborn's one figure,
    ImageNet-C's corruptions) out of every command that does not use it."""
    found = list(_imports_in_functions())
    unnamed = [f"{f}:{line}" for f, _, line, named in found if not any(("# optional:" in t or "# deferred:" in t) for t in named)]
    assert not unnamed, "imports inside functions without a reason:\n" + "\n".join(unnamed)
    deferred = [(f, m) for f, m, _, named in found if any("# deferred:" in t for t in named)]
    torch_free = ("cli/", "__init__.py", "store/results.py")
    wrong = [(f, m) for f, m in deferred if not (f.startswith(torch_free) or m.startswith(HEAVY))]
    assert deferred and not wrong, wrong
    # the scan sees the optional ones
    assert {"cli/runs.py", "reports/notebooks.py", "studies/cluster.py", "data/video.py"} <= {f for f, _, _, _ in found}


def test_the_command_line_starts_and_the_results_are_read_without_torch():
    """What the deferred imports are for: `selfy-lab --help` and shell completion import no torch, and neither do
    the results store and the tables that notebooks and `report --readme` read."""
    code = ("import sys, selfy_lab.cli, selfy_lab.store.results, selfy_lab.reports.readme_tables, "
            "selfy_lab.reports.notebooks; assert 'torch' not in sys.modules, 'torch loaded'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
