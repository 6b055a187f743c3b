"""Writes notebooks/*.ipynb (outputs stripped). Run: python tools/make_notebooks.py"""
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent.parent / "notebooks"

SETUP = '''import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image, Markdown, display

from selfy_lab.core import paper
from selfy_lab.store import results
from selfy_lab.reports import tables

# committed results by default; tests point this at a small fixture
RESULTS = Path(os.environ.get("SELFY_LAB_RESULTS", "../results")).resolve()
print("results:", RESULTS)'''


def nb(title, intro, cells):
    book = nbf.v4.new_notebook()
    book.cells = [nbf.v4.new_markdown_cell(f"# {title}\n\n{intro}"), nbf.v4.new_code_cell(SETUP)]
    for kind, src in cells:
        book.cells.append(nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src))
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return book


NOTEBOOKS = {
    "ablations": nb(
        "Ablations: the paper's Tables 3a, 3b, 5, 7b-7f and 8",
        "Every table rebuilt from the tidy `runs.csv` files under `results/` (mean ± std over seeds), beside the "
        "paper's numbers (SS-V1, from `selfy_lab.core.paper`). Our runs are on the built-in motion benchmark with narrow "
        "backbones trained from scratch unless the run's config says otherwise, so compare orderings, not values.",
        [
            ("code", '''runs = tables.load_runs(RESULTS)
print(f"{len(runs)} rows, {runs['run_id'].nunique() if len(runs) else 0} runs, experiments: "
      f"{sorted(runs['experiment'].unique()) if len(runs) else []}")'''),
            ("code", '''def show(table_id):
    view = tables.table_view(runs, table_id)
    display(Markdown(f"**{paper.TABLES[table_id]['title']}**"))
    cols = [c for c in ("variant", "backbone", "gflops", "top1", "top1_std", "top5", "top5_std", "seeds",
                        "paper_top1", "paper_top5") if c in view.columns]
    display(view[cols].style.format(precision=2, na_rep="-").hide(axis="index"))
    orders = tables.pairwise_orderings(view)  # the paper's orderings by the stated test (selfy_lab.core.stats)
    if len(orders):
        counts = orders["verdict"].value_counts().to_dict()
        display(Markdown("paper's orderings among the rows run here: " + ", ".join(f"{v} {k}" for k, v in counts.items())))
        display(orders.style.format(precision=1).hide(axis="index"))


for table_id in ("3a-tsn", "3a-tsm", "3b", "5", "7b", "7c", "7d", "7e", "7f", "8"):
    show(table_id)'''),
            ("md", "## Accuracy vs temporal range (Table 3a)"),
            ("code", '''from selfy_lab.reports.viz import temporal_range_figure

ladder = runs[runs["experiment"].isin(paper.TABLE_EXPERIMENTS["3a-tsn"] + paper.TABLE_EXPERIMENTS["3a-tsm"])]
if len(ladder):
    summary = tables.summarize(ladder)
    paper_rows = {f"{t[3:]}-r18": {r["variant"]["offsets"]: r["top1"] for r in paper.TABLES[t]["rows"]}
                  for t in ("3a-tsn", "3a-tsm")}
    fig = temporal_range_figure(summary, paper_rows)
    plt.show()
else:
    print("no offsets sweep in", RESULTS)'''),
            ("md", "## Motion modules side by side (`experiments/motion_modules.yaml`)\n\n"
                   "Every sweep that compares blocks: top-1 per seed, the accuracy within the time-reversed pairs "
                   "(binary; 50% is order-blind), GFLOPs and parameters from the FLOPs counter, and the training-step "
                   "time ratio against the plain backbone from `selfy-lab bench --only modules` where it was measured."),
            ("code", '''from selfy_lab.reports.viz import comparison_figure
from selfy_lab.config.vocabulary import COMPARISON_REPORTS

bench_file = RESULTS / "bench-modules" / "bench.csv"
bench = pd.read_csv(bench_file) if bench_file.exists() else None
# the sweeps whose record declares a block comparison (their experiment file's `report:`)
compared = [d for d in results.find_sweeps(RESULTS) if results.recorded_report(d) in COMPARISON_REPORTS]
for sweep in compared:
    table = tables.module_comparison(tables.load_runs(sweep / "runs.csv"), bench)
    display(Markdown(f"**{sweep.relative_to(RESULTS)}**"))
    display(table.drop(columns=["backbone", "block", "offsets"]).style.format(precision=2, na_rep="-").hide(axis="index"))
    comparison_figure(table)
    plt.show()
if not compared:
    print("no block comparison in", RESULTS)'''),
        ]),
    "robustness": nb(
        "Robustness: occlusion and motion blur (Fig. 5)",
        "Top-1 vs severity per variant from `robustness.csv` (band: std over seeds), the mean corrupted accuracy "
        "(mPC) and relative robustness (rPC = mPC / clean), and example strips (Fig. 5c). Paper's finding: short "
        "ranges ({0}, {1}, {-1,0,1}) drop fast; long ranges degrade less and the gap grows with severity.",
        [
            ("code", '''from selfy_lab.reports.viz import robustness_figure

rob = tables.load_robustness(RESULTS)
print(f"{len(rob)} rows; kinds: {sorted(rob['kind'].unique()) if len(rob) else []}")
for kind in (sorted(rob["kind"].unique()) if len(rob) else []):
    robustness_figure(rob, kind)
    plt.show()'''),
            ("md", "## mPC and rPC per variant (mean ± std over seeds)"),
            ("code", '''summary = tables.load_robustness_summary(RESULTS)
if len(summary):
    table = (summary.groupby(["kind", "backbone", "block", "offsets", "metric"])["value"].agg(["mean", "std", "count"])
             .unstack("metric"))
    display(table.style.format(precision=3, na_rep="-"))'''),
            ("md", "## Example clips (Fig. 5c)"),
            ("code", '''for f in tables.find_figures(RESULTS, "**/examples/*.png")[:4]:
    display(Markdown(f"`{f.relative_to(RESULTS)}`"), Image(filename=str(f), width=720))'''),
        ]),
    "gradcam": nb(
        "Grad-CAM: two SELFYNets side by side (Fig. 7)",
        "Per-frame Grad-CAM at the deepest map of at least 7x7 cells (res5, before global pooling, at the paper's "
        "224 input; res3 on the built-in benchmark's 64), the clip's predicted class as target, normalised per clip. With local checkpoints the maps are computed here, for the paper's pair ({1} vs the widest "
        "offset range) on clips where they disagree; checkpoints are not committed, so on a fresh clone the "
        "committed figures are shown instead.",
        [
            ("code", '''from selfy_lab.data.datasets import build_dataset
from selfy_lab.studies.explain import auto_cam_layer, compare_cams, model_label, paper_pair
from selfy_lab.engine.checkpoint import load_run
from selfy_lab.reports.viz import cam_figure

pair = paper_pair(results.find_checkpoints(RESULTS))
if len(pair) == 2:
    loaded = [load_run(p, "cpu") for p in pair]
    dataset = build_dataset(loaded[0][0], "val")
    layer = auto_cam_layer(loaded[0][0].data.size)  # the deepest map of at least 7x7 cells
    named = [(model_label(r), m) for r, m in loaded]
    shown = compare_cams(named, dataset, disagree=True, count=2, layer=layer)
    if not shown:  # the two models agree on every clip: show the first ones
        print("the two models agree on every validation clip: showing the first two")
        shown = compare_cams(named, dataset, count=2, layer=layer)
    for s in shown:
        cam_figure(s["frames"], s["rows"], f"clip {s['index']}: {s['label']} (Grad-CAM at {layer})")
        plt.show()
else:
    figures = tables.find_figures(RESULTS, "cam/*.png")
    print(f"no local checkpoints of an offsets sweep: showing {len(figures)} committed figure(s)")
    for f in figures:
        display(Image(filename=str(f), width=900))'''),
        ]),
    "stss_explorer": nb(
        "STSS explorer",
        "Pick a clip, a frame and a query point; see the U x V similarities per temporal offset, the soft-argmax "
        "displacement field and the motion likelihood. `raw pixels` needs no model; trained models found under "
        "`results/` (local checkpoints) show the STSS at their SELFY block.",
        [
            ("code", '''import ipywidgets as W

from selfy_lab.data import synthetic as syn
from selfy_lab.data.transforms import clip_from_frames
from selfy_lab.studies.explain import stss_from_model, stss_from_pixels
from selfy_lab.engine.checkpoint import load_run
from selfy_lab.studies.explain import default_query
from selfy_lab.reports.viz import stss_flow_figure, stss_likelihood_figure, stss_query_figure

sources = {"raw pixels": None}
for path in results.find_checkpoints(RESULTS):
    run, _ = load_run(path, "cpu")
    if run.model.block != "none" and run.data.dataset == "synthetic":
        sources[f"{run.model.backbone} l in {run.model.variant()['offsets']} (seed {run.train.seed})"] = path
print("sources:", list(sources))
OFFSETS = {"{1}": (1,), "-1..1": (-1, 0, 1), "{-2,0,2}": (-2, 0, 2), "-3..3": (-3, -2, -1, 0, 1, 2, 3)}'''),
            ("code", '''def explore(source="raw pixels", clip=0, offsets="-3..3", query_t=3, query_y=-1, query_x=-1):
    arr, label = syn.render_clip(0, "val", clip, 8, 64)
    x = clip_from_frames(arr)
    if sources[source] is None:
        st = stss_from_pixels(x, OFFSETS[offsets], (5, 5), cell=4)
    else:
        _, model = load_run(sources[source], "cpu")
        st = stss_from_model(model, x)
    t, y, xq = default_query(st)
    t = min(query_t, st["S"].shape[0] - 1)
    if query_y >= 0 and query_x >= 0:
        y, xq = min(query_y, st["size"][0] - 1), min(query_x, st["size"][1] - 1)
    display(Markdown(f"clip {clip}: **{syn.CLASS_NAMES[label]}**, query (t={t}, y={y}, x={xq}); {st['source']}"))
    for fig in (stss_query_figure(arr, st, (t, y, xq)), stss_flow_figure(arr, st, t), stss_likelihood_figure(arr, st, (t, y, xq))):
        plt.show()


explore()  # a static view with the defaults (also what an HTML report shows)'''),
            ("md", "Interactive: pick the source (raw pixels or a trained model), the clip, the offsets and the "
                   "query point (y, x = -1: the most moving cell)."),
            ("code", '''controls = {"source": W.Dropdown(options=list(sources), description="source"),
            "clip": W.IntSlider(0, 0, 63, description="clip"),
            "offsets": W.Dropdown(options=list(OFFSETS), value="-3..3", description="offsets"),
            "query_t": W.IntSlider(3, 0, 7, description="query_t"),
            "query_y": W.IntSlider(-1, -1, 15, description="query_y"),
            "query_x": W.IntSlider(-1, -1, 15, description="query_x")}
view = W.Output()


def redraw(change):
    with view:
        view.clear_output(wait=True)
        explore(**{name: control.value for name, control in controls.items()})


for control in controls.values():
    control.observe(redraw, names="value")
# drawn on the first change, not now: the defaults are the static view above, and a run without a front end
# (nbconvert, nbclient, `selfy-lab report`) has no outputs inside a widget to send back and forth with the kernel
display(W.VBox([W.HBox(list(controls.values())[:3]), W.HBox(list(controls.values())[3:]), view]))'''),
        ]),
    "flops": nb(
        "FLOPs: the paper's table and how STSS cost scales",
        "Multiply-accumulates per clip (the papers' GFLOPs), counted with fvcore's conventions and a rule "
        "for the STSS itself, beside the paper's values; then the SELFY block's cost as L, U x V and the input "
        "resolution grow.",
        [
            ("code", '''table = tables.load_flops_table(RESULTS)
if len(table):
    display(table.style.format({"paper_gflops": "{:.1f}", "gflops": "{:.2f}", "rel_diff": "{:+.1%}", "params_m": "{:.2f}"})
            .hide(axis="index"))
    print(f"largest |difference|: {table['rel_diff'].abs().max():.1%}")'''),
            ("code", '''from dataclasses import replace

from selfy_lab.config.run import ModelConfig
from selfy_lab.models.flops import model_cost

base = ModelConfig(backbone="tsm-r18")
backbone = model_cost(replace(base, block="none"))["gflops"]
rows = []
for k in range(0, 5):
    cfg = replace(base, offsets=tuple(range(-k, k + 1)), frames=max(8, 2 * k + 2))
    rows.append({"axis": "L", "value": 2 * k + 1, "block_gflops": model_cost(cfg)["gflops"]
                 - model_cost(replace(cfg, block="none"))["gflops"]})
for w in (5, 9, 13, 17):
    rows.append({"axis": "U x V", "value": w, "block_gflops": model_cost(replace(base, window=(w, w)))["gflops"] - backbone})
for size in (112, 160, 224, 288):
    c = replace(base)
    rows.append({"axis": "input side", "value": size, "block_gflops": model_cost(c, size)["gflops"]
                 - model_cost(replace(c, block="none"), size)["gflops"]})
scaling = pd.DataFrame(rows)
fig, axes = plt.subplots(1, 3, figsize=(11, 3))
for ax, (axis, g) in zip(axes, scaling.groupby("axis", sort=False)):
    ax.plot(g["value"], g["block_gflops"], marker="o")
    ax.set_xlabel(axis)
    ax.set_ylabel("SELFY block GFLOPs")
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
display(scaling)'''),
            ("md", "## Benchmarks (`selfy-lab bench`)"),
            ("code", '''bench = tables.load_bench(RESULTS)
if len(bench):
    display(bench[["benchmark", "impl", "size", "metric", "value", "device"]])'''),
        ]),
}

if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    for name, book in NOTEBOOKS.items():
        nbf.write(book, HERE / f"{name}.ipynb")
        print("wrote", HERE / f"{name}.ipynb")
