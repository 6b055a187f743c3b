"""selfy-lab cam, stss and report."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config.grammar import parse_int_list, parse_offsets, parse_query, parse_window
from ..core.errors import SelfyError
from ..reports.notebooks import write_report
from ..store.results import CAM_OWNED, STSS_OWNED, claim_folder, unfinished_note
from .common import (
    LIST, MODEL_HELP, Categories, DataRoot, Device, Frames, Offsets, ValList, Window, app, at_least, comma_list,
    console, path_list, table,
)


@app.command()
def cam(
    checkpoint: Annotated[Optional[list[Path]], typer.Option(
        help=MODEL_HELP + f" Several ({LIST}): models side by side. Default: the {{1}} and the widest-range "
        "run, seed 0, of --sweep (the paper's Fig. 7).")] = None,
    sweep: Annotated[Optional[Path], typer.Option(help="The offsets sweep whose {1} and widest-range runs to show "
        "(default: the one --results-root's README.md names for Table 3a).")] = None,
    clip: Annotated[Optional[list[str]], typer.Option(help=f"Validation clip indices ({LIST}; ranges 0..7 or 0-7).")] = None,
    video: Annotated[Optional[Path], typer.Option(help="Your own clip: a video file or a folder of frames, sampled "
                                                  "like the test protocol (T segment centres, centre crop).")] = None,
    class_: Annotated[Optional[str], typer.Option("--class", help="Explain this class (name or label id) instead of "
                                                  "each model's prediction; without --clip / --video, show validation "
                                                  "clips of it.")] = None,
    disagree: Annotated[bool, typer.Option("--disagree", help="Show clips where the models' predictions differ.")] = False,
    count: Annotated[int, typer.Option(help="How many clips with --class / --disagree.")] = 2,
    method: Annotated[str, typer.Option(help="CAM method of pytorch-grad-cam: gradcam, gradcam++, xgradcam, hirescam, "
                                        "layercam, eigencam, eigengradcam, gradcamelementwise.")] = "gradcam",
    layer: Annotated[str, typer.Option(help="Feature map: auto (the deepest stage with a map of at least 7x7 cells: res5 "
                                       "at 224 input, as the paper; res3 at the built-in benchmark's 64), res5, res4, res3, res2.")] = "auto",
    results_root: Annotated[Path, typer.Option(help="Results whose README.md names the default sweep.")] = Path("results"),
    out: Annotated[Path, typer.Option(help="Directory for the PNGs.")] = Path("runs/cam"),
    data_root: DataRoot = None, val_list: ValList = None, categories: Categories = None,
    device: Device = "auto",
):
    """Per-frame Grad-CAM of trained models on validation clips, overlaid on the frames, models side by side.

    Each row is titled with the model's prediction, green if correct, red if wrong. Example:

      selfy-lab cam --disagree --count 3          # {1} vs -3..3 of the Table 3a sweep results/README.md names

      selfy-lab cam --sweep runs/ablate --clip 0,3  # of your own offsets sweep

      selfy-lab cam --checkpoint RUN --video my_clip.mp4 --class "Pushing something from left to right"
    """
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..studies.explain import cam_clips
    from ..reports.viz import write_cam_figures


    at_least(count, 1, "--count")
    try:
        clips = list(parse_int_list(",".join(clip), "clip", 0)) if clip else None
    except ValueError as e:
        raise SelfyError(f"--clip: {e}") from None
    con = console()
    claim_folder(out, CAM_OWNED)  # before any work: a folder of the user's stops here
    shown = write_cam_figures(cam_clips(  # the study, then its report
        path_list(checkpoint), results_root=results_root, clips=clips, class_name=class_, disagree=disagree,
        count=count, method=method, layer=layer, data_changes=dict(data_root=data_root, val_list=val_list,
                                                                   categories=categories),
        device=device, video=video, note=lambda line: con.print(line, markup=False), sweep=sweep), out)

    def verdict(x) -> str:
        said = "" if x["correct"] is None else f" ({'correct' if x['correct'] else 'wrong'})"
        return f"{x['label']} -> {x['pred']}{said}" + (f", CAM of '{x['target']}'" if x["target"] != x["pred"] else "")

    for r in shown:
        con.print(f"wrote {r['path']} ({r['layer']}, {r['cells']}x{r['cells']} map): " + "; ".join(map(verdict, r["rows"])),
                  markup=False)  # model labels carry [run-directory] names


@app.command()
def predict(
    videos: Annotated[list[Path], typer.Argument(help="Video files, frame folders, or folders of them.")],
    checkpoint: Annotated[Path, typer.Option(help=MODEL_HELP)],
    top_k: Annotated[int, typer.Option(help="Classes shown per video, most probable first.")] = 5,
    clips: Annotated[int, typer.Option(help="Clips per video (1: the segments' centres; 2: also their starts, TSM's "
                                            "two-clip test), their logits averaged.")] = 1,
    crops: Annotated[int, typer.Option(help="Crops per clip: 1 (centre) or 3 (left / centre / right along the "
                                            "longer side), averaged.")] = 1,
    output_format: Annotated[str, typer.Option("--format", help="table (default), csv or json, on standard "
                                               "output.")] = "table",
    device: Device = "auto",
):
    """What is in these videos? The model's top-k classes with their probabilities, per video, over the test
    protocol's views (--clips 1|2 x --crops 1|3; default one clip of the model's frames, centre crop). A video
    that cannot be decoded is reported and the others go on.

    Examples:

      selfy-lab predict my_clip.mp4 --checkpoint results/models/tsn-r18-w16-selfy-3

      selfy-lab predict ~/videos --checkpoint models/selfy-tsm-r50 --top-k 3 --format csv > predictions.csv

      selfy-lab predict my_clip.mp4 --checkpoint models/selfy-tsm-r50 --clips 2 --crops 3   # the paper's views
    """
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..studies.predict import PREDICTION_COLUMNS, predict as run_predict

    at_least(top_k, 1, "--top-k")
    if output_format not in ("table", "csv", "json"):
        raise SelfyError(f"--format {output_format[:20]}: use table, csv or json")
    con = console(stderr=output_format != "table")
    rows = run_predict(videos, checkpoint, top_k, device,
                       lambda path, why: con.print(f"skipped {path}: {why}"), clips, crops,
                       lambda line: con.print(line, markup=False))
    if output_format == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=PREDICTION_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    elif output_format == "json":
        typer.echo(json.dumps(rows, indent=1))
    else:

        con.print(table(f"top-{top_k} classes", ["video", "rank", "class", "probability"],
                        [[r["video"], str(r["rank"]), r["class"], f"{r['probability']:.3f}"] for r in rows]))


@app.command("stss")
def stss_cmd(
    out: Annotated[Path, typer.Option(help="Directory for the PNGs.")] = Path("runs/stss"),
    checkpoint: Annotated[Optional[Path], typer.Option(help=MODEL_HELP + " Shows the STSS at its SELFY block. "
                                                       "Default: raw pixels of a built-in benchmark clip.")] = None,
    clip: Annotated[int, typer.Option(help="Validation clip index.")] = 0,
    video: Annotated[Optional[Path], typer.Option(help="Your own clip (a video file or a folder of frames) instead of "
                                                  "a validation / built-in clip.")] = None,
    query: Annotated[Optional[str], typer.Option(help="Query t,y,x in STSS cells (default: centre frame, most moving cell).")] = None,
    offsets: Offsets = None, window: Window = None,
    cell: Annotated[int, typer.Option(help="Raw pixels: average cell x cell blocks first.")] = 4,
    frames: Frames = None, size: Annotated[int, typer.Option(help="Raw pixels: frame side of the built-in clip.")] = 64,
    device: Device = "auto",
):
    """Render STSS maps for a clip: the U x V similarities of a query per offset, the soft-argmax
    displacement field, and the motion likelihood across offsets.

      selfy-lab stss --out runs/stss                            # a built-in clip, raw pixels

      selfy-lab stss --checkpoint results/ablate-offsets/runs/<id> --clip 5 --query 3,4,4

      selfy-lab stss --video my_clip.mp4 --size 112              # your clip, raw pixels
    """
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..studies.explain import stss_clip
    from ..reports.viz import write_stss_figures

    at_least(clip, 0, "--clip")
    at_least(cell, 1, "--cell")
    at_least(frames, 2, "--frames")
    at_least(size, 16, "--size")
    try:
        offs = parse_offsets(offsets) if offsets else None
        win = parse_window(window) if window else None
        q = parse_query(query)
    except ValueError as e:
        raise SelfyError(f"--{str(e)}" if str(e).startswith("query") else str(e)) from None
    con = console()
    if checkpoint is not None:

        if checkpoint.exists() and unfinished_note(checkpoint):
            con.print(f"note: {unfinished_note(checkpoint)}", markup=False)
    claim_folder(out, STSS_OWNED)  # before any work: a folder of the user's stops here
    res = stss_clip(checkpoint, clip=clip, query=q, offsets=offs, window=win, cell=cell, frames=frames or 8, size=size,
                    device=device, video=video)
    for p in write_stss_figures(res, out):  # the study, then its report
        con.print(f"wrote {p}")
    q = res["query"]
    con.print(f"{'clip ' + str(clip) if video is None else video} ({res['name']}), {res['source']}, "
              f"query t,y,x = {q[0]},{q[1]},{q[2]}")


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Directory for the HTML pages.")] = Path("runs/report"),
    results_root: Annotated[Optional[Path], typer.Option(help="Results the notebooks read (default results/); with "
                                                            "--readme, the sweeps its tables name (default: the "
                                                            "README's folder).")] = None,
    notebooks: Annotated[Path, typer.Option(help="Notebook directory.")] = Path("notebooks"),
    only: Annotated[Optional[list[str]], typer.Option(help=f"Notebook names ({LIST}; default: all).")] = None,
    timeout: Annotated[int, typer.Option("--timeout-s", help="Seconds per notebook cell.")] = 900,
    readme: Annotated[Optional[Path], typer.Option(
        help="Instead: rewrite the tables of this results README (e.g. results/README.md) from the result files "
        "beside it (or under --results-root), between its <!-- table ... --> and <!-- end table --> markers.")] = None,
):
    """Execute the notebooks against RESULTS_ROOT and write them as HTML, to share results without Jupyter.

      selfy-lab report --out runs/report

      selfy-lab report --readme results/README.md      # regenerate the README's tables from the CSVs
    """
    at_least(timeout, 1, "--timeout-s")
    con = console()
    if readme is not None:
        # deferred: pandas and scipy, which the command line's start must not load
        from ..reports.readme_tables import update_readme

        path, count = update_readme(readme, results_root)
        con.print(f"wrote {count} tables into {path} from the results under {results_root or readme.parent}")
        return
    write_report(notebooks, results_root or Path("results"), out, comma_list(only or []) or None, timeout,
                 lambda path, seconds: con.print(f"wrote {path} ({seconds:.0f} s)"))
