"""The pandas views behind the README's and the notebooks' numbers: summaries over seeds, the paper's column,
paper tables rebuilt from tidy rows, the robustness table."""
import math

import pandas as pd
import pytest

from selfy_lab.reports import tables as T
from selfy_lab.store.results import RUN_COLUMNS, VARIANT_FIELDS


def run_rows(experiment, backbone, block, offsets, seed, top1, top5, **variant):
    base = {"experiment": experiment, "run_id": f"{backbone}-{block}-{offsets}-{seed}-{variant}", "backbone": backbone,
            "frames": 8, "block": block, "offsets": offsets, "window": "5x5", "extractor": "conv", "integrator": "conv",
            "similarity": "cosine", "fusion": "R+V", "position": "res3", "hierarchy": "none", "aux": "none", "gflops": 0.1 if block == "none" else 0.2,
            "params_m": 1.0, "seed": seed, "split": "val", "version": "0", "git_rev": "x", "time": "t"}
    base.update(variant)
    if block == "none":
        base.update({k: "none" for k in ("offsets", "window", "extractor", "integrator", "similarity", "fusion", "position")})
    return [{**base, "metric": "top1", "value": top1}, {**base, "metric": "top5", "value": top5},
            {**base, "split": "train", "metric": "top1", "value": 0.99}]


@pytest.fixture
def ladder():
    rows = []
    for seed, (b, one, three) in enumerate([(0.20, 0.60, 0.80), (0.22, 0.64, 0.84), (0.18, 0.62, 0.82)]):
        rows += run_rows("table3a-tsn", "tsn-r18-w16", "none", "none", seed, b, b + 0.3)
        rows += run_rows("table3a-tsn", "tsn-r18-w16", "selfy", "{1}", seed, one, one + 0.2)
        rows += run_rows("table3a-tsn", "tsn-r18-w16", "selfy", "-3..3", seed, three, three + 0.1)
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def test_summarize_is_mean_std_count_over_seeds_in_ladder_order(ladder):
    s = T.summarize(ladder)
    assert list(s["offsets"]) == ["none", "{1}", "-3..3"]
    base = s.iloc[0]
    assert base["top1_mean"] == pytest.approx(0.20) and base["top1_std"] == pytest.approx(0.02)
    assert base["top1_count"] == 3 and base["top5_mean"] == pytest.approx(0.50) and base["gflops"] == 0.1
    assert s.iloc[2]["top1_mean"] == pytest.approx(0.82)
    assert T.summarize(ladder, split="test").empty  # no rows of that split
    assert set(VARIANT_FIELDS) <= set(s.columns)


def test_paper_column_matches_rows_by_variant_and_backbone_family(ladder):
    s = T.paper_column(T.summarize(ladder), "3a-tsn")
    assert list(s["paper_top1"]) == [16.2, 39.7, 46.9] and list(s["paper_top5"]) == [40.8, 68.9, 76.2]
    tsm = T.paper_column(T.summarize(ladder), "3a-tsm")  # a TSN run does not stand for a TSM row
    assert all(math.isnan(v) for v in tsm["paper_top1"])


def test_table_view_puts_our_numbers_beside_every_paper_row(ladder):
    v = T.table_view(ladder, "3a-tsn")
    assert len(v) == 6 and list(v["paper_top1"]) == [16.2, 16.8, 39.7, 44.7, 46.9, 46.9]
    ours = v.set_index("variant")
    assert ours.loc["offsets=none, block=none", "top1"] == pytest.approx(20.0)
    assert ours.loc["offsets=none, block=none", "top1_std"] == pytest.approx(2.0)
    assert ours.loc["offsets=-3..3, block=selfy", "seeds"] == 3
    assert math.isnan(ours.loc["offsets={0}, block=selfy", "top1"])  # no run: empty cell
    other = ladder.assign(experiment="some-other-sweep")
    assert T.table_view(other, "3a-tsn")["top1"].isna().all()  # only the table's experiments count
    twice = pd.concat([ladder, ladder.assign(experiment="ablate")], ignore_index=True)  # one run, two sweeps
    assert T.table_view(twice, "3a-tsn").set_index("variant").loc["offsets=-3..3, block=selfy", "seeds"] == 3


def test_table_view_tells_blocks_apart():
    rows = []
    for block, acc in (("none", 0.2), ("stcb", 0.5), ("selfy-s", 0.7)):
        rows += run_rows("table5", "tsn-r18-w16", block, "-2..2" if block != "none" else "none", 0, acc, acc)
    v = T.table_view(pd.DataFrame(rows), "5").set_index("variant")
    assert v.loc["block=stcb", "top1"] == pytest.approx(50) and v.loc["block=selfy-s", "top1"] == pytest.approx(70)
    assert math.isnan(v.loc["block=parallel", "top1"])


def test_a_sweep_summary_takes_the_paper_table_its_record_names(ladder, tmp_path):
    """The paper table beside a sweep's rows is the one its record declares (planned with it), never guessed
    from its rows: the same ladder recorded without one has no paper column."""
    from selfy_lab.store.results import write_csv, write_sweep_record

    write_csv(tmp_path / "runs.csv", ladder.to_dict("records"), RUN_COLUMNS)
    write_sweep_record(tmp_path, {"report": "offsets", "paper_table": "3a-tsn"})
    summ, table_id, varying = T.sweep_summary(tmp_path)
    assert table_id == "3a-tsn" and varying == ["offsets"] and "paper_top1" in summ
    assert T.sweep_summary(tmp_path, "7f")[1] == "7f" and T.sweep_summary(tmp_path, "")[1] == ""
    write_sweep_record(tmp_path, {"report": "offsets"})  # a record that names none
    summ, table_id, _ = T.sweep_summary(tmp_path)
    assert table_id == "" and "paper_top1" not in summ
    assert T.sweep_summary(tmp_path / "nothing")[0].empty


def test_robustness_by_severity():
    df = pd.DataFrame([{"backbone": "b", "offsets": o, "kind": "blur", "metric": "top1", "severity": s, "value": v,
                        "seed": seed} for o in ("none", "-1..1") for seed in (0, 1) for s, v in ((0, 0.5 + seed * 0.1), (1, 0.3))])
    summ = pd.DataFrame([{"backbone": "b", "offsets": o, "kind": "blur", "metric": m, "value": v}
                         for o in ("none", "-1..1") for m, v in (("mPC", 0.3), ("rPC", 0.55))])
    view = T.robustness_by_severity(df, summ, "blur")
    assert list(view["offsets"]) == ["none", "-1..1"]
    assert view.iloc[0]["mean_0"] == pytest.approx(0.55) and view.iloc[0]["std_1"] == pytest.approx(0.0)
    assert view.iloc[0]["mPC"] == pytest.approx(0.3) and T.robustness_by_severity(df, summ, "occlusion").empty
    three = df.assign(test_clips="2", test_crops="3", value=df["value"] + 0.1)  # another test protocol, kept apart
    both, summ2 = pd.concat([df.assign(test_clips="1", test_crops="1"), three]), pd.concat([
        summ.assign(test_clips="1", test_crops="1"), summ.assign(test_clips="2", test_crops="3", value=summ["value"] + 0.1)])
    assert T.robustness_by_severity(both, summ2, "blur").iloc[0]["mean_0"] == pytest.approx(0.55)
    multi = T.robustness_by_severity(both, summ2, "blur", clips=2, crops=3)
    assert multi.iloc[0]["mean_0"] == pytest.approx(0.65) and multi.iloc[0]["mPC"] == pytest.approx(0.4)


def test_robustness_by_severity_keeps_the_modules_of_a_block_comparison_apart():
    models = (("none", 0.2), ("stm", 0.3), ("tam", 0.5))  # modules take no offsets: all "none"
    df = pd.DataFrame([{"backbone": "b", "block": b, "offsets": "none", "position": "res3", "kind": "blur",
                        "metric": "top1", "severity": s, "value": v - 0.01 * s, "seed": 0}
                       for b, v in models for s in (0, 1)])
    summ = pd.DataFrame([{"backbone": "b", "block": b, "offsets": "none", "position": "res3", "kind": "blur",
                          "metric": "mPC", "value": v} for b, v in models])
    view = T.robustness_by_severity(df, summ, "blur").set_index("block")
    assert len(view) == 3 and view.loc["tam", "mean_0"] == pytest.approx(0.5)
    assert view.loc["stm", "mean_1"] == pytest.approx(0.29) and view.loc["none", "mPC"] == pytest.approx(0.2)


def test_robustness_comparison_is_per_variant_over_seeds_and_keeps_to_the_one_clip_test():
    def cell(block, seed, kind, sev, value, clips="1"):
        return {"run_id": f"{block}-{seed}", "backbone": "tsn-r18-w16", "block": block, "offsets": "none",
                "position": "res3", "seed": seed, "kind": kind, "severity": sev, "metric": "top1", "value": value,
                "test_clips": clips, "test_crops": "1"}

    # cp: clean 0.40 / 0.60; blur severities 1-2 (mPC 0.30 / 0.50), occlusion (mPC 0.20 / 0.20)
    rows, summ = [], []
    for block, seed, clean, blur, occl in (("cp", 0, 0.4, (0.4, 0.2), (0.2, 0.2)), ("cp", 1, 0.6, (0.6, 0.4), (0.3, 0.1)),
                                           ("none", 0, 0.2, (0.2, 0.2), (0.2, 0.2))):
        for kind, vals in (("blur", blur), ("occlusion", occl)):
            rows += [cell(block, seed, kind, 0, clean)] + [cell(block, seed, kind, s + 1, v) for s, v in enumerate(vals)]
            mpc = sum(vals) / len(vals)
            summ += [{**cell(block, seed, kind, 0, 0), "metric": m, "value": v} for m, v in (("mPC", mpc), ("rPC", mpc / clean))]
    rows.append(cell("cp", 0, "blur", 2, 0.99, clips="2"))  # another test protocol: not mixed in
    t = T.robustness_comparison(pd.DataFrame(rows), pd.DataFrame(summ)).set_index("model")
    assert list(t.index) == ["cp", "tsn-r18-w16 (no block)"]  # by clean top-1
    cp = t.loc["cp"]
    assert cp["clean"] == pytest.approx(50.0) and cp["seeds"] == 2
    assert cp["blur_mPC"] == pytest.approx(40.0) and cp["blur_mPC_std"] == pytest.approx(100 * math.sqrt(0.02))
    assert cp["blur_rPC"] == pytest.approx((0.3 / 0.4 + 0.5 / 0.6) / 2)  # each seed's ratio, then the mean
    assert cp["blur_worst"] == pytest.approx(30.0) and cp["occlusion_worst"] == pytest.approx(15.0)
    assert t.loc["tsn-r18-w16 (no block)", "occlusion_mPC_std"] == 0.0  # one seed: no spread, not NaN


def test_pairwise_orderings_use_the_stated_test():
    """Welch's test over each row's seeds, Holm over the table's orderings; a row of one seed never separates."""
    from selfy_lab.core import stats

    view = pd.DataFrame([
        {"variant": "a", "paper_top1": 40.0, "top1": 60.0, "top1_std": 1.0, "seeds": 5},
        {"variant": "b", "paper_top1": 45.0, "top1": 70.0, "top1_std": 1.0, "seeds": 5},  # paper b > a, ours +10: reproduced
        {"variant": "c", "paper_top1": 50.0, "top1": 69.0, "top1_std": 3.0, "seeds": 3},  # paper c > b, ours -1: cannot separate
        {"variant": "d", "paper_top1": 30.0, "top1": 72.0, "top1_std": 0.5, "seeds": 5},  # paper d < a, ours +12: contradicted
        {"variant": "e", "paper_top1": 50.0, "top1": float("nan"), "top1_std": float("nan"), "seeds": float("nan")},
        {"variant": "f", "paper_top1": 45.0, "top1": 50.0, "top1_std": 0.0, "seeds": 3},  # paper tie with b: no ordering
        {"variant": "g", "paper_top1": 20.0, "top1": 95.0, "top1_std": 0.0, "seeds": 1},  # one seed: never separated
    ])
    o = T.pairwise_orderings(view).set_index(["higher", "lower"])
    assert list(o.columns) == T.ORDERING_COLUMNS[2:]
    ba = o.loc[("b", "a")]
    assert ba["verdict"] == "reproduced" and ba["ours_diff"] == pytest.approx(10)
    ref = stats.welch(70.0, 1.0, 5, 60.0, 1.0, 5)
    assert ba["p"] == pytest.approx(ref.p) and (ba["ci_low"], ba["ci_high"]) == pytest.approx((ref.ci_low, ref.ci_high))
    assert ba["p_holm"] >= ba["p"] and ba["n_higher"] == 5
    assert o.loc[("c", "b"), "verdict"] == "cannot separate"
    assert o.loc[("a", "d"), "verdict"] == "contradicted"
    assert (o.xs("g", level="lower")["verdict"] == "cannot separate").all()  # 75 points, one seed: not separated
    assert o.xs("g", level="lower")["p_holm"].isna().all()
    assert not any("e" in k for k in o.index) and ("b", "f") not in o.index and ("f", "b") not in o.index
    assert len(o) == 14  # pairs of a, b, c, d, f, g with different paper values: 15 minus the b-f tie


def test_contrasts_take_the_reference_chosen_on_val():
    from selfy_lab.core.errors import SelfyError

    table = pd.DataFrame([
        {"variant": "selfy -3..3", "block": "selfy", "top1": 80.0, "top1_std": 1.0, "seeds": 5, "split": "val"},
        {"variant": "selfy -3..3 on tsm", "block": "selfy", "top1": 88.0, "top1_std": 1.0, "seeds": 5, "split": "val"},
        {"variant": "stm", "block": "stm", "top1": 60.0, "top1_std": 20.0, "seeds": 5, "split": "val"},
        {"variant": "tea", "block": "tea", "top1": 40.0, "top1_std": 1.0, "seeds": 5, "split": "val"},
        {"variant": "cp", "block": "cp", "top1": 90.0, "top1_std": 1.0, "seeds": 5, "split": "val"},
    ]).assign(backbone=["tsn", "tsm", "tsn", "tsn", "tsn"])
    ref = T.selfy_reference(table)
    assert ref == "selfy -3..3"  # the best SELFY row on val in the modules' backbone, not the best row
    with pytest.raises(SelfyError, match="no SELFY row on tsn"):
        T.selfy_reference(table[table["variant"] != "selfy -3..3"])
    with pytest.raises(SelfyError, match="validation split"):
        T.selfy_reference(table.assign(split="test"))
    c = T.contrasts(table, ref).set_index("variant")
    assert list(c.index) == ["selfy -3..3 on tsm", "stm", "tea", "cp"]
    assert c.loc["tea", "verdict"] == "higher" and c.loc["cp", "verdict"] == "lower"
    assert c.loc["selfy -3..3 on tsm", "verdict"] == "lower"
    assert c.loc["stm", "verdict"] == "cannot separate"  # 20 points, but the seeds spread 20
    assert c.loc["tea", "diff"] == pytest.approx(40.0) and c.loc["tea", "p_holm"] <= 1
    sentence = T.verdict_sentence(c.reset_index())
    assert sentence.startswith("By Welch's t-test") and "(4 comparisons)" in sentence
    assert "is above tea; below selfy -3..3 on tsm and cp; not separated from stm." in sentence
    with pytest.raises(SelfyError, match="no row 'x'"):
        T.contrasts(table, "x")


def test_a_table_reports_test_only_where_every_run_has_it():
    rows = []
    for seed in range(2):
        rows += run_rows("e", "tsn-r18-w16", "none", "none", seed, 0.20, 0.5)
        rows += [{**r, "split": "test", "value": r["value"] + 0.1}
                 for r in run_rows("e", "tsn-r18-w16", "none", "none", seed, 0.20, 0.5) if r["split"] == "val"]
    df = pd.DataFrame(rows)
    assert T.reported_split(df) == "test"
    assert T.summarize(df)["top1_mean"].iloc[0] == pytest.approx(0.30) and T.summarize(df)["split"].iloc[0] == "test"
    older = pd.DataFrame(run_rows("e", "tsn-r18-w16", "selfy", "-3..3", 0, 0.6, 0.9))  # a run without test rows
    assert T.reported_split(pd.concat([df, older])) == "val"  # never test rows beside val rows


@pytest.fixture
def modules():
    rows = []
    for seed in range(3):
        rows += run_rows("motion-modules", "tsn-r18-w16", "none", "none", seed, 0.20 + 0.01 * seed, 0.5)
        rows += run_rows("motion-modules", "tsm-r18-w16", "none", "none", seed, 0.60, 0.9)
        rows += run_rows("motion-modules", "tsn-r18-w16", "selfy", "-3..3", seed, 0.70 + 0.02 * seed, 0.9)
        rows += run_rows("motion-modules", "tsm-r18-w16", "selfy", "-3..3", seed, 0.80, 0.95)
        rows += run_rows("motion-modules", "tsn-r18-w16", "stm", "-3..3", seed, 0.50, 0.8, gflops=0.11)
        rows += run_rows("motion-modules", "tsn-r18-w16", "tea", "-3..3", seed, 0.40, 0.8, gflops=0.1)
        rows += run_rows("motion-modules", "tsn-r18-w16", "selfy", "{1}", seed, 0.30, 0.8)
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    extra = df[(df["metric"] == "top1") & (df["split"] == "val")].copy()
    pairs = extra.assign(metric="order_pairs_binary", value=extra["block"].map({"none": 0.5}).fillna(0.9))
    secs = extra.assign(split="train", metric="seconds", value=120.0)  # as train.result_rows writes it
    return pd.concat([df, pairs, secs], ignore_index=True)


def test_module_comparison_rows_seeds_and_step_ratio(modules):
    bench = pd.DataFrame([{"benchmark": "modules_quick", "impl": "stm-tsn-r18-w16", "metric": "time_ratio", "value": 1.06},
                          {"benchmark": "modules_quick", "impl": "selfy-tsn-r18-w16", "metric": "time_ratio", "value": 1.45},
                          {"benchmark": "modules_quick", "impl": "stm-tsn-r18-w16", "metric": "seconds", "value": 9.0}])
    t = T.module_comparison(modules, bench).set_index("variant")
    # baselines first, then best top-1 first; a block on another backbone says so
    assert list(t.index) == ["tsn-r18-w16 (no block)", "tsm-r18-w16 (no block)", "selfy -3..3 on tsm-r18-w16",
                             "selfy -3..3", "stm", "tea", "selfy {1}"]
    assert t.loc["selfy -3..3", "top1"] == pytest.approx(72.0) and t.loc["selfy -3..3", "top1_std"] == pytest.approx(2.0)
    assert t.loc["selfy -3..3", "top1_per_seed"] == "70.0 / 72.0 / 74.0" and t.loc["selfy -3..3", "seeds"] == 3
    assert t.loc["tsn-r18-w16 (no block)", "order_pairs_binary"] == pytest.approx(50.0)
    assert t.loc["stm", "gflops"] == 0.11 and t.loc["stm", "train_min"] == pytest.approx(2.0)
    assert t.loc["stm", "step_ratio"] == 1.06 and t.loc["tsn-r18-w16 (no block)", "step_ratio"] == 1.0
    assert math.isnan(t.loc["tea", "step_ratio"])  # not benched: blank, not guessed
    assert math.isnan(t.loc["tsm-r18-w16 (no block)", "step_ratio"])
    # the bench times SELFY at -3..3 only: its ratio is not lent to another offset set
    assert t.loc["selfy -3..3", "step_ratio"] == 1.45 and math.isnan(t.loc["selfy {1}", "step_ratio"])


def test_block_comparison_sweep_writes_its_table_and_figure(modules, tmp_path):
    from selfy_lab.store import results as R
    from selfy_lab.reports.sweep_report import write_sweep_report

    R.write_csv(tmp_path / R.RUNS_TABLE, modules.to_dict("records"), RUN_COLUMNS)
    paths = write_sweep_report(tmp_path, "comparison")
    assert (tmp_path / T.COMPARISON_TABLE) in paths and (tmp_path / "figures" / "accuracy_vs_gflops.png") in paths
    written = pd.read_csv(tmp_path / T.COMPARISON_TABLE)
    assert len(written) == 7 and written.iloc[0]["variant"] == "tsn-r18-w16 (no block)"


def test_a_sweep_figure_drawn_again_from_the_same_rows_is_the_same_file(ladder, tmp_path):
    from selfy_lab.store import results as R
    from selfy_lab.reports.sweep_report import write_sweep_report

    files = []
    for d in ("a", "b"):
        R.write_csv(tmp_path / d / R.RUNS_TABLE, ladder.to_dict("records"), RUN_COLUMNS)
        files.append(sorted(p for p in write_sweep_report(tmp_path / d, "offsets") if p.suffix in (".png", ".pdf")))
    assert [p.suffix for p in files[0]] == [".pdf", ".png"]
    for a, b in zip(*files):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert b"/CreationDate" not in files[0][0].read_bytes()  # no clock in the file, whenever it is drawn


def test_robustness_lines_are_told_apart_by_block_when_a_sweep_compares_blocks():
    from selfy_lab.reports.viz import robustness_variants

    def rows(*models):
        return pd.DataFrame([{"backbone": "tsn", "block": m[0], "offsets": m[1], "position": (m[2:] or ("res3",))[0]}
                             for m in models], columns=["backbone", "block", "offsets", "position"])

    # an offsets sweep keeps its short labels
    assert list(robustness_variants(rows(("none", "none"), ("selfy", "{1}"), ("selfy", "-3..3")))) == \
        ["tsn baseline", "tsn {1}", "tsn -3..3"]
    # a block comparison: modules without offsets must not share one line
    labels = list(robustness_variants(rows(("none", "none"), ("selfy", "-3..3"), ("ms", "none"), ("stm", "none"))))
    assert labels == ["tsn baseline", "tsn selfy -3..3", "tsn ms", "tsn stm"]
    # one module after res3 and in every block of its paper: two lines
    every = rows(("none", "none"), ("stm", "none"), ("stm", "none", "res2:every+res3:every"))
    assert list(robustness_variants(every)) == ["tsn baseline", "tsn stm", "tsn stm (every block)"]
    assert len(robustness_variants(rows())) == 0


def test_variant_table_names_rows_by_the_fields_that_differ():
    rows = []
    for seed, (scratch, tuned) in enumerate([(0.30, 0.50), (0.34, 0.56)]):
        rows += run_rows("hcml-labels", "tsn", "none", "none", seed, scratch, 0.9, init="scratch", labels="0.1")
        rows += run_rows("hcml-labels", "tsn", "none", "none", seed, tuned, 0.9, init="file", labels="0.1",
                         hierarchy="diff")
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    pairs = df[(df["metric"] == "top1") & (df["split"] == "val")].assign(metric="order_pairs_binary", value=0.75)
    t = T.variant_table(pd.concat([df, pairs], ignore_index=True)).set_index("variant")
    assert list(t.index) == ["hierarchy=none, init=scratch", "hierarchy=diff, init=file"]
    assert t.loc["hierarchy=diff, init=file", "top1"] == pytest.approx(53.0)
    assert t.loc["hierarchy=diff, init=file", "top1_per_seed"] == "50.0 / 56.0"
    assert t.loc["hierarchy=none, init=scratch", "seeds"] == 2
    assert t.loc["hierarchy=none, init=scratch", "order_pairs_binary"] == pytest.approx(75.0)
    assert T.variant_table(df.iloc[0:0]).empty


def test_runs_of_one_seed_that_differ_only_outside_the_variant_fields_are_never_averaged_as_seeds(tmp_path):
    from selfy_lab.store import results as R

    # a sweep over the input size: both runs have the same variant fields and seed, only the sweep record tells
    rows = run_rows("diag", "tsm-r18-w16", "none", "none", 100, 0.2, 0.5) + \
        [{**r, "run_id": "big"} for r in run_rows("diag", "tsm-r18-w16", "none", "none", 100, 0.1, 0.4)]
    R.write_csv(tmp_path / R.RUNS_TABLE, rows, RUN_COLUMNS)
    R.write_sweep_record(tmp_path, {"runs": [{"run_id": rows[0]["run_id"], "label": "tsm-r18-w16 baseline, seed 100"},
                                             {"run_id": "big", "label": "tsm-r18-w16 baseline 112px, seed 100"}]})
    summ, _, fields = T.sweep_summary(tmp_path)
    assert fields == ["setting"] and list(summ["top1_count"]) == [1, 1]
    assert dict(zip(summ["setting"], summ["top1_mean"])) == {"tsm-r18-w16 baseline": pytest.approx(0.2),
                                                            "tsm-r18-w16 baseline 112px": pytest.approx(0.1)}
    seeds = pd.DataFrame(run_rows("diag", "tsn", "none", "none", 0, 0.2, 0.5) + run_rows("diag", "tsn", "none", "none", 1, 0.4, 0.5),
                         columns=RUN_COLUMNS)  # real seeds of one variant: no setting column, one row
    assert T.with_settings(seeds, tmp_path)[1] == [c for c in VARIANT_FIELDS if c in seeds.columns]


def test_a_sweep_whose_record_declares_no_report_draws_nothing(tmp_path):
    from selfy_lab.store import results as R
    from selfy_lab.reports.sweep_report import write_sweep_report

    rows = []
    for pos in ("res2", "res3", "res4"):  # Table 7f-like: one offset set at three positions
        rows += run_rows("t7f", "tsn", "selfy", "-2..2", 0, 0.6, 0.9, position=pos)
    rows += run_rows("t7f", "tsn", "none", "none", 0, 0.2, 0.5)
    R.write_csv(tmp_path / R.RUNS_TABLE, rows, RUN_COLUMNS)
    R.write_sweep_record(tmp_path, {"report": "none"})  # as experiments/table7f.yaml declares
    assert write_sweep_report(tmp_path) == [] and not (tmp_path / "figures").exists()


def test_module_comparison_keeps_a_module_in_every_block_apart_from_one_after_res3(modules):
    every = "res2:every+res3:every+res4:every+res5:every"
    rows = []
    for seed in range(3):
        rows += run_rows("motion-modules", "tsn-r18-w16", "stm", "-3..3", seed, 0.30, 0.8, position=every)
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    both = pd.concat([modules, df.assign(run_id=df["run_id"] + "-every")], ignore_index=True)
    bench = pd.DataFrame([{"benchmark": "modules_quick", "impl": "stm-tsn-r18-w16", "metric": "time_ratio", "value": 1.06}])
    t = T.module_comparison(both, bench).set_index("variant")
    assert t.loc["stm", "top1"] == pytest.approx(50.0) and t.loc["stm (every block)", "top1"] == pytest.approx(30.0)
    assert t.loc["stm (every block)", "position"] == every and t.loc["stm (every block)", "seeds"] == 3
    # the bench timed one module after res3: its ratio is not lent to the module in every block
    assert t.loc["stm", "step_ratio"] == 1.06 and math.isnan(t.loc["stm (every block)", "step_ratio"])
    # ... which has its own row in the bench (stm:every), read for it alone
    bench.loc[1] = {"benchmark": "modules_quick", "impl": "stm:every-tsn-r18-w16", "metric": "time_ratio", "value": 1.5}
    t = T.module_comparison(both, bench).set_index("variant")
    assert t.loc["stm", "step_ratio"] == 1.06 and t.loc["stm (every block)", "step_ratio"] == 1.5


def hcml_sweeps():
    """The rows of the two HCML sweeps: label efficiency (four baselines that differ in their motion hierarchy and
    where their weights started) and the auxiliary loss (with and without a block)."""
    labels, aux = [], []
    for seed in (0, 1):
        for i, (hierarchy, init) in enumerate([("none", "scratch"), ("diff@res2+res3+res4", "scratch"),
                                               ("diff@res2+res3+res4", "file"), ("diff@res2+res3+res4", "file-probe")]):
            labels += run_rows("hcml-labels", "tsn-r18-w16", "none", "none", seed, 0.1 * (i + 1), 0.5,
                               hierarchy=hierarchy, init=init, labels="0.1")
        for block, offsets in (("none", "none"), ("selfy", "-3..3")):
            for hierarchy, loss in (("none", "none"), ("diff@res2+res3+res4", "none"), ("diff@res2+res3+res4", "hcml")):
                aux += run_rows("hcml-aux", "tsn-r18-w16", block, offsets, seed, 0.3, 0.6, hierarchy=hierarchy,
                                aux=loss, init="scratch", labels="1")
    return pd.DataFrame(labels, columns=RUN_COLUMNS), pd.DataFrame(aux, columns=RUN_COLUMNS)


@pytest.mark.parametrize("which", ["labels", "aux"])
def test_every_row_of_an_hcml_sweep_table_has_its_own_variant_name(tmp_path, which):
    import io

    from rich.console import Console

    from selfy_lab.cli.sweeps import print_sweep_summary
    from selfy_lab.store.results import write_csv

    df = dict(zip(["labels", "aux"], hcml_sweeps()))[which]
    write_csv(tmp_path / "runs.csv", df.to_dict("records"), RUN_COLUMNS)
    summ, _, varying = T.sweep_summary(tmp_path)
    assert len(summ) == (4 if which == "labels" else 6)
    assert not summ[varying].astype(str).duplicated().any(), summ[varying]
    assert varying == (["hierarchy", "init"] if which == "labels" else ["block", "hierarchy", "aux"])
    con = Console(file=io.StringIO(), width=200)
    print_sweep_summary(con, tmp_path)  # the table `selfy-lab ablate` prints
    lines = con.file.getvalue().splitlines()
    assert all(any(c in line for line in lines) for c in varying)  # the header names them
    rows = [" ".join(line.split("│")[1:len(varying) + 1]).split() for line in lines if line.count("│") > len(varying)]
    assert sorted(map(tuple, rows)) == sorted(map(tuple, summ[varying].astype(str).values))  # one line per row
    names = T.variant_table(df)["variant"]  # the notebook's table names them too
    assert names.is_unique and len(names) == len(summ)


def test_module_comparison_keeps_a_modules_options_apart():
    rows = []
    for seed in range(2):
        rows += run_rows("ms-options", "tsn-r18-w16", "ms", "none", seed, 0.50, 0.9)
        rows += run_rows("ms-options", "tsn-r18-w16", "ms", "none", seed, 0.60, 0.9, options="lift=light")
    t = T.module_comparison(pd.DataFrame(rows, columns=RUN_COLUMNS)).set_index("variant")
    assert t.loc["ms", "top1"] == pytest.approx(50.0) and t.loc["ms [lift=light]", "top1"] == pytest.approx(60.0)
