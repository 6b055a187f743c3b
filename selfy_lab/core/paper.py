"""Reference numbers of the SELFY paper (its tables of FLOPs and accuracy). The only place they are written down.

Each accuracy row names the variant with the same fields and canonical strings as our results
(``selfy_lab.config.run.ModelConfig.variant``) so tables can be joined on them. Dataset: SS-V1 unless noted.
"""
from __future__ import annotations

PAPER_FLOPS_TABLE = "paper_table.csv"  # selfy-lab flops --paper --out DIR writes DIR/paper_table.csv; tables read it

# ---- FLOPs (multiply-accumulates, G, per clip at 224x224): Table 1, 3a, 7d ----
# Fields: model (label), backbone, frames, block, offsets, window, paper_gflops
FLOPS = [
    dict(model="TSN-R50", backbone="tsn-r50", frames=8, block="none", offsets="none", window="none", paper_gflops=33.0),
    dict(model="SELFYNet-R50 (TSN)", backbone="tsn-r50", frames=8, block="selfy", offsets="-2..2", window="9x9",
         paper_gflops=37.0),
    dict(model="TSM-R50", backbone="tsm-r50", frames=16, block="none", offsets="none", window="none", paper_gflops=65.0),
    dict(model="SELFYNet-TSM-R50", backbone="tsm-r50", frames=16, block="selfy", offsets="-4..4", window="9x9",
         paper_gflops=77.0),
    dict(model="SELFYNet-TSM-R50", backbone="tsm-r50", frames=8, block="selfy", offsets="-2..2", window="9x9",
         paper_gflops=37.0),
    dict(model="TSN-R18", backbone="tsn-r18", frames=8, block="none", offsets="none", window="none", paper_gflops=14.6),
    dict(model="TSM-R18", backbone="tsm-r18", frames=8, block="none", offsets="none", window="none", paper_gflops=14.6),
    *[
        dict(model=f"SELFYNet-R18 l in {off}", backbone="tsn-r18", frames=8, block="selfy", offsets=off, window="9x9",
             paper_gflops=g)
        for off, g in (("{0}", 15.3), ("{1}", 15.3), ("-1..1", 16.3), ("-2..2", 17.3), ("-3..3", 18.3))
    ],
    *[
        dict(model=f"SELFYNet-TSM-R18 {w}", backbone="tsm-r18", frames=8, block="selfy", offsets="-2..2", window=w,
             paper_gflops=g)
        for w, g in (("5x5", 17.1), ("9x9", 17.3), ("13x13", 18.4), ("17x17", 19.8))
    ],
]
# Table 7a: one non-local block / CP module after res3, with their official settings (non-local: inner width
# C/2; CP: k = 8, MLP C/4-C/2) at full resolution, as SELFY states ("the others do not" downsample). Both rows match only if the products of two activations (the N x N attention
# and distance matrices) count twice, multiplication and addition apart, while convolutions count MACs as in
# every other row: 24.9 and 25.1 G that way, 19.8 and 20.1 G in MACs throughout.
FLOPS += [
    dict(model="TSM-R18 + non-local (res3; attention products x2)", backbone="tsm-r18", frames=8, block="nonlocal",
         block_options="subsample=false", offsets="none", window="none", paper_gflops=24.8, activation_products=2),
    dict(model="TSM-R18 + CP (res3; distance products x2)", backbone="tsm-r18", frames=8, block="cp",
         block_options="shrink=1", offsets="none", window="none", paper_gflops=25.6, activation_products=2),
]

# ---- accuracy (top-1 / top-5 %, SS-V1 unless noted) ----
# Each table: list of rows; "variant" holds the fields that differ from the table's default model.
_T3A = [("none", 16.2, 40.8, 43.0, 72.3), ("{0}", 16.8, 42.2, 45.0, 73.4), ("{1}", 39.7, 68.9, 47.1, 76.3),
        ("-1..1", 44.7, 73.9, 47.8, 76.7), ("-2..2", 46.9, 75.9, 48.4, 77.6), ("-3..3", 46.9, 76.2, 48.6, 77.7)]

TABLES: dict[str, dict] = {
    "3a-tsn": dict(title="Table 3a: range of temporal offsets, TSN-R18", default=dict(backbone="tsn-r18"),
                   rows=[dict(variant=dict(offsets=o, block="none" if o == "none" else "selfy"), top1=a, top5=b)
                         for o, a, b, _, _ in _T3A]),
    "3a-tsm": dict(title="Table 3a: range of temporal offsets, TSM-R18", default=dict(backbone="tsm-r18"),
                   rows=[dict(variant=dict(offsets=o, block="none" if o == "none" else "selfy"), top1=c, top5=d)
                         for o, _, _, c, d in _T3A]),
    "3b": dict(title="Table 3b: feature extraction / integration, TSM-R18", default=dict(backbone="tsm-r18"),
               rows=[dict(variant=dict(block="none"), top1=43.0, top5=72.3),
                     dict(variant=dict(extractor="smax", integrator="fc"), top1=44.0, top5=72.3),
                     dict(variant=dict(extractor="mlp", integrator="fc"), top1=45.9, top5=75.1),
                     dict(variant=dict(extractor="conv", integrator="fc"), top1=46.7, top5=75.8),
                     dict(variant=dict(extractor="conv", integrator="mlp"), top1=47.2, top5=75.9),
                     dict(variant=dict(extractor="conv", integrator="conv"), top1=48.4, top5=77.6)]),
    "5": dict(title="Table 5: spatio-temporal vs STSS features, TSN-R18", default=dict(backbone="tsn-r18"),
              rows=[dict(variant=dict(block=b), top1=a, top5=c) for b, a, c in (
                  ("none", 16.2, 40.8), ("stcb", 42.4, 71.7), ("selfy-s", 46.3, 75.1), ("stcb+stcb", 44.4, 73.7),
                  ("selfy-s+selfy-s", 46.8, 75.9), ("parallel", 46.9, 76.5), ("sequential", 47.6, 76.6))]),
    "7a": dict(title="Table 7a: non-local methods, TSM-R18", default=dict(backbone="tsm-r18"),
               rows=[dict(variant=dict(block="none"), top1=43.0, top5=72.3, gflops=14.6),
                     dict(variant=dict(block="nonlocal"), top1=43.8, top5=73.1, gflops=24.8),
                     dict(variant=dict(block="cp"), top1=46.7, top5=75.7, gflops=25.6),
                     dict(variant=dict(block="selfy"), top1=48.4, top5=77.6, gflops=17.3)]),
    "7b": dict(title="Table 7b: KS+CM vs conv extraction, TSM-R18", default=dict(backbone="tsm-r18"),
               rows=[dict(variant=dict(block="none"), top1=43.0, top5=72.3),
                     dict(variant=dict(extractor="kscm", offsets="{1}"), top1=46.1, top5=75.3),
                     dict(variant=dict(extractor="kscm", offsets="-2..2"), top1=47.4, top5=76.8),
                     dict(variant=dict(extractor="conv", offsets="{1}"), top1=47.1, top5=76.3),
                     dict(variant=dict(extractor="conv", offsets="-2..2"), top1=48.4, top5=77.6)]),
    "7c": dict(title="Table 7c: 3x3x3 extraction kernels, TSM-R18", default=dict(backbone="tsm-r18"),
               rows=[dict(variant=dict(block="none"), top1=43.0, top5=72.3),
                     *[dict(variant=dict(extractor="conv3d", offsets=o), top1=a, top5=b)
                       for o, a, b in (("-1..1", 47.4, 77.0), ("-2..2", 48.3, 77.2), ("-3..3", 48.5, 77.4))]]),
    "7d": dict(title="Table 7d: spatial matching region U x V, TSM-R18", default=dict(backbone="tsm-r18"),
               rows=[dict(variant=dict(block="none"), top1=43.0, top5=72.3, gflops=14.6),
                     *[dict(variant=dict(window=w), top1=a, top5=b, gflops=g)
                       for w, g, a, b in (("5x5", 17.1, 47.8, 77.1), ("9x9", 17.3, 48.2, 77.5),
                                          ("13x13", 18.4, 48.4, 77.8), ("17x17", 19.8, 48.6, 78.3))]]),
    "7e": dict(title="Table 7e: STSS with visual features, TSM-R18", default=dict(backbone="tsm-r18"),
               rows=[dict(variant=dict(block="none"), top1=43.0, top5=72.3),
                     dict(variant=dict(fusion="R"), top1=45.5, top5=75.9),
                     dict(variant=dict(fusion="R+V"), top1=48.4, top5=77.6)]),
    "7f": dict(title="Table 7f: block position, TSM-R18", default=dict(backbone="tsm-r18"),
               rows=[dict(variant=dict(block="none"), top1=43.0, top5=72.3),
                     *[dict(variant=dict(position=p), top1=a, top5=b) for p, a, b in (
                         ("pool1", 45.7, 77.6), ("res2", 47.2, 76.6), ("res3", 48.2, 77.5), ("res4", 46.6, 76.0),
                         ("res5", 42.8, 72.6), ("res2+res3+res4", 48.6, 77.9))]]),
    "8": dict(title="Table 8: similarity functions, TSM-R18", default=dict(backbone="tsm-r18"),
              rows=[dict(variant=dict(block="none"), top1=43.0, top5=72.3),
                    dict(variant=dict(block="local-self-attention"), top1=43.8, top5=72.3),
                    dict(variant=dict(similarity="embedded_gaussian"), top1=47.6, top5=76.8),
                    dict(variant=dict(similarity="cosine"), top1=47.8, top5=77.1)]),
}

# the experiment names (selfy_lab/experiments/*.yaml, or the plain `selfy-lab ablate --offsets` sweep) whose
# runs rebuild each table
TABLE_EXPERIMENTS = {
    "3a-tsn": ("table3a-tsn", "ablate"), "3a-tsm": ("table3a-tsm", "ablate"), "3b": ("table3b",), "5": ("table5",),
    "7a": ("table7a",), "7b": ("table7b",), "7c": ("table7c",), "7d": ("table7d",), "7e": ("table7e",), "7f": ("table7f",),
    "8": ("table8",),
}

# Sec. 4.5 / Appendix A corruption parameters
OCCLUSION_SIDES_224 = (40, 80, 120, 160, 200, 224)
MOTION_BLUR_RADIUS_SIGMA = ((15, 5), (10, 8), (15, 12), (20, 15), (25, 20), (30, 25))
