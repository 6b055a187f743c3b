"""Figures: clip galleries, accuracy vs temporal range, robustness curves and corruption strips, Grad-CAM
overlays and STSS maps. Functions take arrays and tables and return matplotlib figures; ``save_figure``
writes them. Nothing here trains or evaluates."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

# no backend is forced: without a display matplotlib falls back to Agg by itself, and in Jupyter the inline
# backend must stay
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from ..core.errors import SelfyError
from ..data import synthetic as syn
from ..data.corrupt import corrupt_clip
from ..models.extract import soft_argmax_flow
from ..store import results as R
from .tables import LADDER_ORDER, ladder_index, load_robustness, method_label, recipe_name


def clip_strip(ax_row, clip: np.ndarray, title: str = "", color: str = "black") -> None:
    """Draw a uint8 clip (T, H, W, 3) across a row of axes."""
    for t, ax in enumerate(ax_row):
        ax.imshow(clip[t], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if t == 0 and title:  # as free text, so long titles do not squeeze the layout
            ax.text(0, 1.04, title, transform=ax.transAxes, fontsize=8, color=color, ha="left", va="bottom")


def synthetic_gallery_figure(index: int = 0, frames: int = 8, size: int = 64, seed: int = 0, split: str = "val"):
    """One clip per class of the built-in benchmark, a row each."""
    K = len(syn.CLASSES)
    fig, axes = plt.subplots(K, frames, figsize=(frames * 1.1, K * 1.25), squeeze=False)
    for k in range(K):
        clip, label = syn.render_clip(seed, split, k + index * K, frames, size)
        c = syn.CLASSES[label]
        clip_strip(axes[k], clip, f"{label}: {c.name}  [{c.kind}: {c.pair}]")
    for t in range(frames):
        axes[-1, t].set_xlabel(f"t={t}", fontsize=7)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.98, bottom=0.03, wspace=0.05, hspace=0.3)
    return fig


def synthetic_gallery(path: str | Path, **kw) -> Path:
    return save_figure(synthetic_gallery_figure(**kw), Path(path).with_suffix(""), formats=("png",), dpi=110)[0]


def temporal_range_figure(summary, paper_rows: dict | None = None, metric: str = "top1"):
    """Accuracy vs temporal range (Table 3a / Fig.-style): one line per backbone, mean +- std over seeds.
    ``paper_rows``: {backbone: {offsets: paper top-1 %}} drawn on a second panel for reference."""
    panels = 2 if paper_rows else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    sub = summary[summary["offsets"].isin(LADDER_ORDER)]
    for backbone, g in sub.groupby("backbone"):
        g = g.assign(order=g["offsets"].map(LADDER_ORDER.index)).sort_values("order")
        x = g["order"].to_numpy()
        y = 100 * g[f"{metric}_mean"].to_numpy()
        err = 100 * g.get(f"{metric}_std", 0 * g[f"{metric}_mean"]).fillna(0).to_numpy()
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=backbone)
    used = sorted(set(sub["offsets"].map(LADDER_ORDER.index))) if len(sub) else []
    ax.set_xticks(used, [("baseline" if LADDER_ORDER[i] == "none" else LADDER_ORDER[i]) for i in used])
    ax.set_xlabel("temporal offsets l")
    split = str(summary["split"].iloc[0]) if "split" in summary and len(summary) else "val"
    ax.set_ylabel(f"{split} {metric} (%)")
    ax.set_title("ours (mean ± std over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if paper_rows:
        ax2 = axes[0, 1]
        for backbone, vals in paper_rows.items():
            xs = [LADDER_ORDER.index(o) for o in vals]
            ax2.plot(xs, list(vals.values()), marker="s", linestyle="--", label=f"paper {backbone}")
        ax2.set_xticks(range(6), ["baseline", *LADDER_ORDER[1:6]])
        ax2.set_xlabel("temporal offsets l")
        ax2.set_ylabel("SS-V1 top-1 (%)")
        ax2.set_title("paper, Table 3a", fontsize=10)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, stem: str | Path, formats=("png", "pdf"), dpi: int = 130) -> list[Path]:
    """Save ``fig`` as ``stem``.png (and .pdf, ...), close it; returns the paths. Every figure file of the
    package is written here. A PDF carries no creation date, so a figure re-drawn from the same results (a
    re-run sweep that skips its finished runs) is the same file and leaves a committed copy unchanged."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.{fmt}" for fmt in formats]
    try:
        for p in paths:  # through a temporary file and a rename: a full disk never leaves half a figure
            tmp = p.with_name(f".{p.name}.tmp")
            try:
                fig.savefig(tmp, format=p.suffix[1:], dpi=dpi,
                            metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
                os.replace(tmp, p)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise SelfyError(f"cannot write {p} ({e.strerror or type(e).__name__}): free some space or choose "
                                 "another --out; the results written so far are kept") from None
    finally:
        plt.close(fig)
    return paths


def robustness_variants(df):
    """A line label per robustness row: "BACKBONE baseline" for a block-less model; "BACKBONE OFFSETS" when the
    rows hold one kind of block at one place (an offsets sweep), else "BACKBONE" and the block's name in the comparison
    tables (its offsets for SELFY, its named options, "(every block)" for its papers' arrangement), so that
    one module at two positions draws two lines."""
    kinds = [c for c in ("block", "position", "options") if c in df.columns]
    blocks = set(map(tuple, df.loc[df["block"] != "none", kinds].astype(str).values))  # one block at one place?

    def label(r) -> str:
        if r["block"] == "none":
            return f"{r['backbone']} baseline"
        if len(blocks) <= 1:
            return f"{r['backbone']} {r['offsets']}"
        return f"{r['backbone']} {method_label(r, r['backbone'])}"

    return df.apply(label, axis=1) if len(df) else df["block"].astype(str)


def robustness_figure(df, kind: str, metric: str = "top1"):
    """Fig. 5a/b: top-1 vs severity for one corruption kind, one line per variant, band = std over seeds."""
    sub = df[(df["kind"] == kind) & (df["metric"] == metric)].copy()
    sub["variant"] = robustness_variants(sub)
    order = sorted(sub["variant"].unique(), key=lambda v: (v.split()[0], " ".join(v.split()[1:-1]),
                                                           ladder_index(v.split()[-1]), v))
    sub["value"] = 100 * sub["value"]
    many = len(order) > 7  # a block comparison: the legend beside the axes, where it hides no line
    fig, ax = plt.subplots(figsize=(8.2 if many else 5.6, 3.8))
    import seaborn as sns  # deferred: heavy, drawn by this one figure

    sns.lineplot(data=sub, x="severity", y="value", hue="variant", hue_order=order, marker="o", errorbar="sd", ax=ax)
    ax.set_xlabel("severity (0 = clean)")
    split = str(sub["split"].iloc[0]) if "split" in sub and len(sub) else "val"
    ax.set_ylabel(f"{split} {metric} (%)")
    ax.set_title(f"corruption: {kind}", fontsize=10)
    ax.grid(alpha=0.3)
    beside = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False) if many else {}
    ax.legend(fontsize=7, title=None, **beside)
    fig.tight_layout()
    return fig


def write_robustness_report(out: str | Path, kind_names: list[str], examples: list[dict] = ()) -> list[Path]:
    """What `selfy-lab corrupt` reports: Fig. 5-style top-1 vs severity per kind from OUT's robustness table
    (OUT/figures/robustness_<kind>.{png,pdf}), then the clean-vs-corrupted strips of ``examples``
    (:func:`selfy_lab.studies.robustness.example_clips`, as OUT/examples/<kind>_clip<i>.png)."""
    df = load_robustness(out)
    paths: list[Path] = []
    for k in kind_names:
        if len(df) and (df["kind"] == k).any():
            paths += save_figure(robustness_figure(df, k), R.figures_dir(out) / f"robustness_{k}")
    for e in examples:
        fig = corruption_examples_figure(e["clip"], e["kind"], e["severities"], e["frames"], e["seed"], e["title"])
        paths += save_figure(fig, Path(out) / "examples" / f"{e['kind']}_clip{e['idx']}", formats=("png",), dpi=110)
    return paths


def corruption_examples_figure(clip, kind: str, severities, frames, seed: int, title: str = ""):
    """Fig. 5c: a clip (uint8 (T, H, W, 3)) clean and at each severity, corrupted frames outlined in red."""
    T = clip.shape[0]
    levels = [0, *severities]
    fig, axes = plt.subplots(len(levels), T, figsize=(T * 1.05, len(levels) * 1.15), squeeze=False)
    for r, sev in enumerate(levels):
        c = corrupt_clip(clip, kind, sev, frames, seed)
        clip_strip(axes[r], c, "clean" if sev == 0 else f"severity {sev}")
        if sev:
            for t in frames:
                for side in axes[r, t].spines.values():
                    side.set_edgecolor("red")
                    side.set_linewidth(2)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.93 if title else 0.97, bottom=0.02, wspace=0.05, hspace=0.35)
    return fig


# ---- Grad-CAM ----

def cam_figure(frames: np.ndarray, rows: list[dict], title: str = ""):
    """Per-frame CAM overlays: one row per model. ``frames`` uint8 (T, H, W, 3); each row: ``label``,
    ``cam`` (T, H, W) in [0, 1], ``pred`` (class name), ``prob``, ``correct`` (title green or red; None: black,
    the clip's class unknown) and optionally ``target``, the class the CAM explains when not the prediction."""
    T = frames.shape[0]
    fig, axes = plt.subplots(len(rows), T, figsize=(T * 1.35, len(rows) * 1.6 + 0.5), squeeze=False)
    for r, row in enumerate(rows):
        for t in range(T):
            ax = axes[r, t]
            ax.imshow(frames[t])
            ax.imshow(row["cam"][t], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        colour = "black" if row.get("correct") is None else "green" if row["correct"] else "red"  # None: label unknown
        explained = row.get("target", row["pred"])
        text = f"{row['label']}: {row['pred']} ({100 * row['prob']:.0f}%)" + (
            f"; CAM of '{explained}'" if explained != row["pred"] else "")
        axes[r, 0].text(0, 1.05, text, transform=axes[r, 0].transAxes, fontsize=9, color=colour, ha="left",
                        va="bottom", fontweight="bold")
    for t in range(T):
        axes[-1, t].set_xlabel(f"t={t}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.86 if title else 0.92, bottom=0.06, wspace=0.04, hspace=0.35)
    return fig


# ---- STSS maps ----

def write_cam_figures(shown: list[dict], out: str | Path) -> list[dict]:
    """`selfy-lab cam`'s report: one PNG per clip of ``shown`` (:func:`selfy_lab.studies.explain.cam_clips`) in ``out``,
    its title fitted; each clip gets its ``path``."""
    R.claim_folder(out, R.CAM_OWNED)
    for r in shown:
        fig = cam_figure(r["frames"], r["rows"], r["title"])
        fit_title(fig)
        r["path"] = save_figure(fig, Path(out) / r["stem"], formats=("png",), dpi=120)[0]
    return shown


def write_stss_figures(res: dict, out: str | Path) -> list[Path]:
    """`selfy-lab stss`'s report: the query, flow and likelihood figures of a clip's STSS
    (:func:`selfy_lab.studies.explain.stss_clip`) as ``out``/stss_{query,flow,likelihood}.png."""
    R.claim_folder(out, R.STSS_OWNED)
    frames, st, q = res["frames"], res["st"], res["query"]
    paths = []
    for stem, fig in (("stss_query", stss_query_figure(frames, st, q)), ("stss_flow", stss_flow_figure(frames, st, q[0])),
                      ("stss_likelihood", stss_likelihood_figure(frames, st, q))):
        paths += save_figure(fig, Path(out) / stem, formats=("png",), dpi=120)
    return paths


def fit_title(fig, margin: float = 0.02, pad: float = 4.0) -> None:
    """Fit ``fig``'s suptitle: wrap it onto as many lines as the figure's width needs (a figure sized for a
    few frames is narrower than a one-line title, which would be cut off at both sides), then make the figure
    taller, keeping its panels' size, until the title sits above the panels and their titles (``pad``
    points apart)."""
    title = fig.get_suptitle()
    text = next((t for t in fig.texts if t.get_text() == title), None) if title else None
    if text is None:
        return
    fig.draw_without_rendering()  # places the panels (fixed-aspect images shrink into their boxes)
    renderer = fig.canvas.get_renderer()
    room = fig.bbox.width * (1 - 2 * margin)
    chars = len(title)
    while text.get_window_extent(renderer).width > room and chars > 8:
        chars = min(chars - 1, int(chars * room / text.get_window_extent(renderer).width))
        text.set_text("\n".join(textwrap.wrap(title, max(8, chars))))
    w, h = fig.get_size_inches()
    tall = text.get_window_extent(renderer).height / fig.dpi  # inches, like everything below
    panels_top = max(ax.get_tightbbox(renderer).y1 for ax in fig.axes) / fig.dpi
    y = text.get_position()[1]  # the title's top, a fraction of the height
    grow = ((1 - y) * h + tall + pad / 72 - (h - panels_top)) / y
    if grow > 0:
        pars = fig.subplotpars
        fig.subplots_adjust(top=pars.top * h / (h + grow), bottom=pars.bottom * h / (h + grow))
        fig.set_size_inches(w, h + grow)


def _cell_px(frames: np.ndarray, st: dict) -> tuple[float, float]:
    h, w = st["size"]
    return frames.shape[1] / h, frames.shape[2] / w


def stss_query_figure(frames: np.ndarray, st: dict, query: tuple[int, int, int]):
    """For the query (t, y, x): each offset's target frame with the window, above its U x V similarities."""
    S, offsets = st["S"], st["offsets"]
    T, L, U, V = S.shape[:4]
    t, y, x = query
    sy, sx = _cell_px(frames, st)
    fig, axes = plt.subplots(2, L, figsize=(L * 1.7, 3.9), squeeze=False)
    vmax = max(1e-6, float(np.abs(S[t, :, :, :, y, x]).max()))
    for i, l in enumerate(offsets):
        ax = axes[0, i]
        tt = t + l
        if 0 <= tt < T:
            ax.imshow(frames[tt])
            ax.add_patch(Rectangle(((x - V // 2) * sx, (y - U // 2) * sy), V * sx, U * sy, fill=False, ec="yellow", lw=1.2))
            ax.plot((x + 0.5) * sx, (y + 0.5) * sy, "r+", ms=8, mew=1.5)
        else:
            ax.text(0.5, 0.5, "outside\nthe clip", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set_title(f"l = {l:+d} (frame {tt})", fontsize=8)
        im = axes[1, i].imshow(S[t, i, :, :, y, x], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        axes[1, i].plot(V // 2, U // 2, "k+", ms=6)
        for a in (ax, axes[1, i]):
            a.set_xticks([])
            a.set_yticks([])
    axes[1, 0].set_ylabel("sim(u, v)", fontsize=8)
    fig.colorbar(im, ax=axes[1, :].tolist(), fraction=0.02, pad=0.01)
    fig.suptitle(f"{st['source']}: query (t={t}, y={y}, x={x}), window {U}x{V}", fontsize=9)
    return fig


def _offset_panel(ax, offset: int) -> None:
    """A panel of one temporal offset of the STSS figures: its title, no ticks."""
    ax.set_title(f"l = {offset:+d}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _titled(fig, title: str):
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def stss_flow_figure(frames: np.ndarray, st: dict, t: int, tau: float = 0.05, min_peak: float = 0.25,
                     min_change: float = 0.2):
    """The soft-argmax displacement field of frame t for every offset, as arrows over the frame. Arrows
    are drawn where something changed (the similarity to the same place in frame t+l is below
    1 - ``min_change``) and the similarity map has a distinct peak (max - mean >= ``min_peak``): on
    static or flat regions the displacement means nothing."""
    flow = soft_argmax_flow(st["S"], tau)[t]  # (L, 2, h, w)
    St = st["S"][t]  # (L, U, V, h, w)
    U, V = St.shape[1:3]
    peak = St.max((1, 2)) - St.mean((1, 2))  # (L, h, w)
    changed = St[:, U // 2, V // 2] < 1 - min_change  # (L, h, w)
    L = flow.shape[0]
    h, w = st["size"]
    sy, sx = _cell_px(frames, st)
    yy, xx = np.mgrid[0:h, 0:w]
    fig, axes = plt.subplots(1, L, figsize=(L * 1.9, 2.3), squeeze=False)
    for i, l in enumerate(st["offsets"]):
        ax = axes[0, i]
        ax.imshow(frames[t])
        du, dv = flow[i]
        keep = (peak[i] >= min_peak) & changed[i]
        ax.quiver(((xx + 0.5) * sx)[keep], ((yy + 0.5) * sy)[keep], (dv * sx)[keep], (du * sy)[keep], color="yellow",
                  angles="xy", scale_units="xy", scale=1, width=0.012)
        _offset_panel(ax, l)
    return _titled(fig, f"soft-argmax displacement to frame t+l, t={t} ({st['source']})")


def stss_likelihood_figure(frames: np.ndarray, st: dict, query: tuple[int, int, int]):
    """Motion likelihood: where the query point went, per offset -- its U x V similarities drawn over
    the target frame around the query's position."""
    S, offsets = st["S"], st["offsets"]
    T, L, U, V = S.shape[:4]
    t, y, x = query
    sy, sx = _cell_px(frames, st)
    fig, axes = plt.subplots(1, L, figsize=(L * 1.9, 2.3), squeeze=False)
    for i, l in enumerate(offsets):
        ax = axes[0, i]
        tt = t + l
        if 0 <= tt < T:
            ax.imshow(frames[tt])
            m = S[t, i, :, :, y, x]
            p = np.exp((m - m.max()) / 0.05)
            p /= p.sum()
            extent = ((x - V // 2) * sx, (x + V // 2 + 1) * sx, (y + U // 2 + 1) * sy, (y - U // 2) * sy)
            ax.imshow(np.ma.masked_less(p, 0.1 * p.max()), cmap="autumn_r", alpha=0.65, extent=extent,
                      interpolation="nearest", vmin=0, vmax=p.max())
            ax.plot((x + 0.5) * sx, (y + 0.5) * sy, "c+", ms=8, mew=1.5)
            ax.set_xlim(0, frames.shape[2])
            ax.set_ylim(frames.shape[1], 0)
        _offset_panel(ax, l)
    return _titled(fig, f"motion likelihood of the query (t={t}, y={y}, x={x}) across offsets")


def save_confusion_figure(conf: np.ndarray, class_names: list[str], *, title: str, stem: Path) -> list[Path]:
    """An evaluation's confusion matrix (:class:`selfy_lab.engine.evaluate.EvalReport`'s) as ``stem``.png."""
    return save_figure(confusion_figure(conf, class_names, title), stem, ("png",))


def confusion_figure(conf: np.ndarray, class_names: list[str], title: str = ""):
    """Row-normalised confusion matrix (true class down, prediction across); class names as ticks up to 40
    classes, indices beyond."""
    K = len(class_names)
    rows = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    side = min(14, 3 + 0.22 * K)
    fig, ax = plt.subplots(figsize=(side, side))
    im = ax.imshow(rows, cmap="viridis", vmin=0, vmax=1)
    if K <= 40:
        ax.set_xticks(range(K), [n[:28] for n in class_names], rotation=90, fontsize=7)
        ax.set_yticks(range(K), [n[:28] for n in class_names], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    return fig


def comparison_figure(table, metric_label: str = "val top-1 (%)"):
    """Accuracy vs GFLOPs of a block comparison (:func:`selfy_lab.reports.tables.module_comparison`): one point per
    variant, mean +- std over seeds, labelled."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for r in table.itertuples():
        is_selfy = str(r.block).startswith("selfy")
        ax.errorbar(r.gflops, r.top1, yerr=r.top1_std, marker="s" if is_selfy else ("o" if r.block != "none" else "x"),
                    color="C3" if is_selfy else ("C0" if r.block != "none" else "gray"), capsize=3)
        ax.annotate(r.variant, (r.gflops, r.top1), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel("GFLOPs (multiply-accumulates per clip)")
    ax.set_ylabel(metric_label)
    ax.set_title("motion modules at equal recipe (mean ± std over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def recipe_curves_figure(curves, title: str = "validation top-1 after every epoch, per recipe"):
    """Learning curves of a recipe sweep (:func:`selfy_lab.reports.recipes.recipe_curves`): one panel per method, one
    line per recipe (peak learning rate, epochs), the mean over its seeds."""
    methods = list(dict.fromkeys(curves["method"]))
    cols = min(4, max(1, len(methods)))
    rows = -(-len(methods) // cols) if methods else 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), squeeze=False, sharey=True)
    for ax, method in zip(axes.flat, methods):
        g = curves[curves["method"] == method]
        for (lr, epochs), c in g.groupby(["lr", "epochs"]):
            mean = c.groupby("epoch")["val_top1"].mean()
            ax.plot(mean.index, mean.values, marker=".", label=recipe_name(lr, epochs))
        ax.set_title(method, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("val top-1 (%)", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
