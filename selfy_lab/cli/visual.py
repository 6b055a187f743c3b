"""selfy-lab cam, stss and report."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SelfyError
from .common import (Categories, DataRoot, Device, Frames, Offsets, ValList, Window, _comma, _console, app)


def execute_notebook(nb, workdir: Path, timeout: int) -> None:
    """Run a notebook top to bottom in a fresh python3 kernel reached through local sockets (IPC) in a
    private temporary directory: no TCP ports to race for, no unencrypted-TCP warning on stderr. The
    kernel's own stderr (its log) is dropped: a cell's error is in the notebook and raised from here."""
    import subprocess
    import tempfile

    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="selfy-lab-kernel-") as sockets:
        class LocalKernelManager(AsyncKernelManager):
            def __init__(self, **kwargs):
                super().__init__(transport="ipc", ip=os.path.join(sockets, "kernel"), **kwargs)

        NotebookClient(nb, timeout=timeout, kernel_name="python3", kernel_manager_class=LocalKernelManager,
                       resources={"metadata": {"path": str(workdir)}}).execute(stderr=subprocess.DEVNULL)


def _sweep_pair(results_root: Path) -> list[Path]:
    """The paper's Fig. 7 pair from the most recent offsets sweep: {1} and the widest range, seed 0."""
    from ..explain import paper_pair
    from ..robustness import find_sweep_models

    pair = paper_pair(find_sweep_models(results_root))
    if len(pair) < 2:
        raise SelfyError(f"the most recent offsets sweep under {results_root} lacks the {{1}} or a range run: pass --checkpoint twice")
    return pair


@app.command()
def cam(
    checkpoint: Annotated[Optional[list[Path]], typer.Option(
        help="Run directory or checkpoint (repeatable: models side by side). Default: the {1} and the widest-range "
        "run of the most recent offsets sweep under --results-root (the paper's Fig. 7).")] = None,
    clip: Annotated[Optional[list[int]], typer.Option(help="Validation clip index (repeatable).")] = None,
    class_: Annotated[Optional[str], typer.Option("--class", help="Show clips of this class (name or label id).")] = None,
    disagree: Annotated[bool, typer.Option("--disagree", help="Show clips where the models' predictions differ.")] = False,
    count: Annotated[int, typer.Option(help="How many clips with --class / --disagree.")] = 2,
    method: Annotated[str, typer.Option(help="CAM method of pytorch-grad-cam: gradcam, gradcam++, xgradcam, hirescam, "
                                        "layercam, eigencam, eigengradcam, gradcamelementwise.")] = "gradcam",
    layer: Annotated[str, typer.Option(help="Feature map: res5 (before global pooling, the paper), res4, res3, res2.")] = "res5",
    results_root: Annotated[Path, typer.Option(help="Where the default models' sweep is looked for.")] = Path("results"),
    out: Annotated[Path, typer.Option(help="Directory for the PNGs.")] = Path("results/cam"),
    data_root: DataRoot = None, val_list: ValList = None, categories: Categories = None,
    device: Device = "auto",
):
    """Per-frame Grad-CAM of trained models on validation clips, overlaid on the frames, models side by side.

    Each row is titled with the model's prediction, green if correct, red if wrong. Example:

      selfy-lab cam --disagree --count 3          # {1} vs -3..3 of the latest offsets sweep
    """
    from dataclasses import replace as dc_replace

    from ..data.datasets import build_dataset
    from ..explain import CAM_METHODS, compare_cams, model_label
    from ..train import load_run
    from ..viz import _plt, cam_figure

    if method not in CAM_METHODS:
        raise SelfyError(f"unknown CAM method '{method}': choose from {', '.join(CAM_METHODS)}")
    if layer not in ("res2", "res3", "res4", "res5"):
        raise SelfyError(f"unknown CAM layer '{layer}': choose from res2, res3, res4, res5")
    paths = list(checkpoint or []) or _sweep_pair(results_root)
    loaded = [load_run(p, device) for p in paths]
    run0 = loaded[0][0]
    changes = {k: v for k, v in dict(data_root=data_root, val_list=val_list, categories=categories).items() if v}
    ds = build_dataset(dc_replace(run0, data=dc_replace(run0.data, **changes, test_clips=1)), "val")
    if any(r.model.frames != run0.model.frames or r.data.size != run0.data.size for r, _ in loaded):
        raise SelfyError("the models differ in frames or input size: compare models trained on the same clips")
    labels = [model_label(r) for r, _ in loaded]
    if len(set(labels)) < len(labels):
        labels = [f"{lab} [{p.name}]" for lab, p in zip(labels, paths)]
    class_id = None
    if class_ is not None:
        names = ds.class_names
        class_id = int(class_) if class_.isdigit() else next((i for i, n in enumerate(names) if n.lower() == class_.lower()), None)
        if class_id is None or not 0 <= class_id < len(names):
            raise SelfyError(f"unknown class '{class_}': give a label id or a name of the dataset's classes")
    bad = [c for c in (clip or []) if not 0 <= c < len(ds)]
    if bad:
        raise SelfyError(f"--clip {bad[0]} is out of range: the validation set has {len(ds)} clips")
    want_disagree = disagree or (len(loaded) > 1 and class_id is None and not clip)
    results = compare_cams(list(zip(labels, [m for _, m in loaded])), ds, clip, class_id, want_disagree, count,
                           method, layer)
    if not results:
        raise SelfyError("no validation clip matches (the models agree everywhere?): pass --clip N")
    con = _console()
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        fig = cam_figure(r["frames"], r["rows"], f"clip {r['index']}: {r['label']}  ({method} at {layer}, normalised per clip)")
        path = out / f"cam_clip{r['index']}.png"
        fig.savefig(path, dpi=120)
        _plt().close(fig)
        con.print(f"wrote {path}: " + "; ".join(f"{x['label']} -> {x['pred']} ({'correct' if x['correct'] else 'wrong'})"
                                                for x in r["rows"]))


@app.command("stss")
def stss_cmd(
    out: Annotated[Path, typer.Option(help="Directory for the PNGs.")] = Path("results/stss"),
    checkpoint: Annotated[Optional[Path], typer.Option(help="Trained model: show the STSS at its SELFY block. "
                                                       "Default: raw pixels of a built-in benchmark clip.")] = None,
    clip: Annotated[int, typer.Option(help="Validation clip index.")] = 0,
    query: Annotated[Optional[str], typer.Option(help="Query t,y,x in STSS cells (default: centre frame, most moving cell).")] = None,
    offsets: Offsets = None, window: Window = None,
    cell: Annotated[int, typer.Option(help="Raw pixels: average cell x cell blocks first.")] = 4,
    frames: Frames = None, size: Annotated[int, typer.Option(help="Raw pixels: frame side of the built-in clip.")] = 64,
    device: Device = "auto",
):
    """Render STSS maps for a clip: the U x V similarities of a query per offset, the soft-argmax
    displacement field, and the motion likelihood across offsets.

      selfy-lab stss --out results/stss                         # a built-in clip, raw pixels

      selfy-lab stss --checkpoint results/ablate-offsets/runs/<id> --clip 5 --query 3,4,4
    """
    from ..explain import stss_from_model, stss_from_pixels
    from ..grammar import parse_offsets, parse_window
    from ..viz import _plt, default_query, stss_flow_figure, stss_likelihood_figure, stss_query_figure

    try:
        offs = parse_offsets(offsets) if offsets else (-3, -2, -1, 0, 1, 2, 3)
        win = parse_window(window) if window else (5, 5)
    except ValueError as e:
        raise SelfyError(str(e)) from None
    if checkpoint is not None:
        from ..data.datasets import build_dataset
        from ..train import load_run

        if offsets or window:
            raise SelfyError("--offsets / --window apply to raw pixels; a model's STSS uses the model's own")
        run, model = load_run(checkpoint, device)
        ds = build_dataset(run, "val")
        if not 0 <= clip < len(ds):
            raise SelfyError(f"--clip {clip} is out of range: the validation set has {len(ds)} clips")
        x, y = ds[(clip, 0)]
        x = x[0] if x.dim() == 5 else x
        try:
            st = stss_from_model(model, x)
        except ValueError as e:
            raise SelfyError(str(e)) from None
        name = ds.class_names[y]
    else:
        from ..data import synthetic as syn

        T = frames or 8
        if max(abs(o) for o in offs) >= T:
            raise SelfyError(f"offsets reach beyond a {T}-frame clip")
        arr, y = syn.render_clip(0, "val", clip, T, size)
        x = torch_from_numpy_clip(arr)
        st = stss_from_pixels(x, offs, win, cell)
        name = syn.CLASS_NAMES[y]
    T = st["S"].shape[0]
    h, w = st["size"]
    if query:
        try:
            q = tuple(int(v) for v in query.split(","))
            assert len(q) == 3
        except (ValueError, AssertionError):
            raise SelfyError(f"--query '{query}' must be t,y,x (integers)") from None
        if not (0 <= q[0] < T and 0 <= q[1] < h and 0 <= q[2] < w):
            raise SelfyError(f"--query {query} is outside the STSS: t < {T}, y < {h}, x < {w}")
    else:
        q = default_query(st)
    frames_np = x.permute(0, 2, 3, 1).numpy()
    out.mkdir(parents=True, exist_ok=True)
    con = _console()
    for stem, fig in (("stss_query", stss_query_figure(frames_np, st, q)), ("stss_flow", stss_flow_figure(frames_np, st, q[0])),
                      ("stss_likelihood", stss_likelihood_figure(frames_np, st, q))):
        path = out / f"{stem}.png"
        fig.savefig(path, dpi=120)
        _plt().close(fig)
        con.print(f"wrote {path}")
    con.print(f"clip {clip} ({name}), {st['source']}, query t,y,x = {q[0]},{q[1]},{q[2]}")


def torch_from_numpy_clip(arr):
    import torch

    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()  # (T, H, W, 3) -> (T, C, H, W)


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Directory for the HTML pages.")] = Path("results/report"),
    results_root: Annotated[Path, typer.Option(help="Results the notebooks read.")] = Path("results"),
    notebooks: Annotated[Path, typer.Option(help="Notebook directory.")] = Path("notebooks"),
    only: Annotated[Optional[str], typer.Option(help="Comma list of notebook names (default: all).")] = None,
    timeout: Annotated[int, typer.Option(help="Seconds per notebook cell.")] = 900,
):
    """Execute the notebooks against RESULTS_ROOT and write them as HTML, to share results without Jupyter."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from nbconvert import HTMLExporter

    books = sorted(notebooks.glob("*.ipynb"))
    if only:
        wanted = set(_comma(only))
        missing = wanted - {b.stem for b in books}
        if missing:
            raise SelfyError(f"no notebook named {sorted(missing)[0]} in {notebooks}")
        books = [b for b in books if b.stem in wanted]
    if not books:
        raise SelfyError(f"no notebooks in {notebooks}: run from the repository root or pass --notebooks")
    if not results_root.is_dir():
        raise SelfyError(f"results directory {results_root} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    os.environ["SELFY_LAB_RESULTS"] = str(results_root.resolve())
    os.environ.pop("MPLBACKEND", None)  # the kernels' inline backend puts the figures in the pages
    con = _console()
    for book in books:
        nb = nbformat.read(book, as_version=4)
        t0 = time.time()
        try:
            execute_notebook(nb, book.parent.resolve(), timeout)
        except CellExecutionError as e:
            raise SelfyError(f"{book.name} failed: {str(e).strip().splitlines()[-1][:200]}") from None
        except CellTimeoutError:
            raise SelfyError(f"{book.name}: a cell ran longer than --timeout {timeout} s") from None
        except DeadKernelError:
            raise SelfyError(f"{book.name}: the notebook's kernel died (out of memory?)") from None
        html, _ = HTMLExporter().from_notebook_node(nb)
        path = out / f"{book.stem}.html"
        path.write_text(html)
        con.print(f"wrote {path} ({time.time() - t0:.0f} s)")


