"""Executing the notebooks headless (tests, `selfy-lab report`) and writing them as HTML."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from ..core.errors import SelfyError
from ..store.results import claim_folder


def execute_notebook(nb, workdir: Path, timeout: int) -> None:
    """Run a notebook top to bottom in a fresh python3 kernel reached through local sockets (IPC) in a
    private temporary directory: no TCP ports to race for, no unencrypted-TCP warning on stderr. The
    kernel's own stderr (its log) is dropped: a cell's error is in the notebook and raised from here. The
    notebooks draw nothing into widgets until a control changes, so they run in a plain kernel as here."""
    # optional: Jupyter's tools (the [lab] extra); write_report checks for them first
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="selfy-lab-kernel-") as sockets:
        class LocalKernelManager(AsyncKernelManager):
            def __init__(self, **kwargs):
                super().__init__(transport="ipc", ip=os.path.join(sockets, "kernel"), **kwargs)

        NotebookClient(nb, timeout=timeout, kernel_name="python3", kernel_manager_class=LocalKernelManager,
                       resources={"metadata": {"path": str(workdir)}}).execute(stderr=subprocess.DEVNULL)


def write_report(notebooks: Path, results_root: Path, out: Path, only: list[str] | None = None, timeout: int = 900,
                 on_written: Callable[[Path, float], None] = lambda path, seconds: None) -> list[Path]:
    """Execute the notebooks of ``notebooks`` (or those named in ``only``) against ``results_root`` and write
    each as OUT/<name>.html; a failing notebook stops with one line."""
    try:  # optional: Jupyter's tools (the [lab] extra)
        import nbformat
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
        from nbconvert import HTMLExporter
    except ImportError as e:
        raise SelfyError(f"selfy-lab report runs the notebooks with Jupyter's tools, not installed here ({e.name}): "
                         "pip install 'selfy-lab[lab]', or make lab in a checkout") from None


    books = sorted(notebooks.glob("*.ipynb"))
    if only:
        missing = set(only) - {b.stem for b in books}
        if missing:
            raise SelfyError(f"no notebook named {sorted(missing)[0]} in {notebooks}")
        books = [b for b in books if b.stem in set(only)]
    if not books:
        raise SelfyError(f"no notebooks in {notebooks}: run from the repository root or pass --notebooks")
    if not results_root.is_dir():
        raise SelfyError(f"results directory {results_root} does not exist")
    claim_folder(out, ("*.html",))
    os.environ["SELFY_LAB_RESULTS"] = str(results_root.resolve())
    os.environ.pop("MPLBACKEND", None)  # the kernels' inline backend puts the figures in the pages
    written = []
    for book in books:
        nb = nbformat.read(book, as_version=4)
        t0 = time.time()
        try:
            execute_notebook(nb, book.parent.resolve(), timeout)
        except CellExecutionError as e:
            raise SelfyError(f"{book.name} failed: {str(e).strip().splitlines()[-1][:200]}") from None
        except CellTimeoutError:
            raise SelfyError(f"{book.name}: a cell ran longer than --timeout-s {timeout}") from None
        except DeadKernelError:
            raise SelfyError(f"{book.name}: the notebook's kernel died (out of memory?)") from None
        html, _ = HTMLExporter().from_notebook_node(nb)
        path = out / f"{book.stem}.html"
        path.write_text(html)
        written.append(path)
        on_written(path, time.time() - t0)
    return written
