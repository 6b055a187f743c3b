"""Figures: galleries of clips, and (later) STSS maps and Grad-CAM overlays. Functions return
matplotlib figures or write PNGs; nothing here trains or evaluates."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


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
    from .data import synthetic as syn

    plt = _plt()
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = synthetic_gallery_figure(**kw)
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def temporal_range_figure(summary, paper_rows: dict | None = None, metric: str = "top1"):
    """Accuracy vs temporal range (Table 3a / Fig.-style): one line per backbone, mean +- std over seeds.
    ``paper_rows``: {backbone: {offsets: paper top-1 %}} drawn on a second panel for reference."""
    from .results import LADDER_ORDER

    plt = _plt()
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
    ax.set_ylabel(f"val {metric} (%)")
    ax.set_title("ours (mean ± std over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if paper_rows:
        ax2 = axes[0, 1]
        for backbone, vals in paper_rows.items():
            xs = [LADDER_ORDER.index(o) for o in vals]
            ax2.plot(xs, list(vals.values()), marker="s", linestyle="--", label=f"paper {backbone}")
        ax2.set_xticks(range(6), ["baseline", "{0}", "{1}", "-1..1", "-2..2", "-3..3"])
        ax2.set_xlabel("temporal offsets l")
        ax2.set_ylabel("SS-V1 top-1 (%)")
        ax2.set_title("paper, Table 3a", fontsize=10)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, stem: str | Path) -> list[Path]:
    """Save as PNG and PDF; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=130)
    fig.savefig(paths[1])
    _plt().close(fig)
    return paths
