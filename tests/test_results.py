"""The one owner of the results layout and of config merging: run keys, "finished", writability, merges."""
import dataclasses
import os
from pathlib import Path

import pytest

from selfy_lab.store import results as R
from selfy_lab.config.run import ModelConfig, RunConfig
from selfy_lab.core.errors import SelfyError
from selfy_lab.core.frozen import deep_merge, identity, override
from selfy_lab.config.presets import resolve


def test_deep_merge_later_layers_win_and_sections_merge_key_by_key():
    a = {"model": {"offsets": "1", "window": (5, 5)}, "train": {"lr": 0.1}, "preset": "quick"}
    b = {"model": {"offsets": "-2..2"}, "train": None, "data": {"size": 32}}
    c = {"model": {"extractor": "mlp"}, "preset": "smoke"}
    m = deep_merge(a, b, c)
    assert m == {"model": {"offsets": "-2..2", "window": (5, 5), "extractor": "mlp"}, "train": None,
                 "data": {"size": 32}, "preset": "smoke"}
    assert a["model"] == {"offsets": "1", "window": (5, 5)}  # inputs are not modified
    assert deep_merge() == {} and deep_merge(None, {"x": 1}) == {"x": 1}


def test_override_validates_like_a_new_config():
    m = override(ModelConfig(), {"offsets": "-1..1", "window": "3x3"})
    assert m.offsets == (-1, 0, 1) and m.window == (3, 3)
    assert override(m, None) is m
    with pytest.raises(ValueError, match="unknown field 'colour'"):
        override(m, {"colour": "red"})
    with pytest.raises(ValueError, match="odd"):
        override(m, {"window": "4x4"})
    run = override(resolve("smoke"), {"data": {"test_clips": 2}})
    assert isinstance(run, RunConfig) and run.data.test_clips == 2 and run.preset == "smoke"


def test_run_key_covers_exactly_the_fields_that_change_the_result():
    ids = identity(resolve("smoke"))
    assert "preset" not in ids and "experiment" not in ids
    assert "workers" not in ids["data"] and "check" not in ids["data"] and "eval_every" not in ids["train"]
    assert {"lr", "seed", "epochs", "batch_size"} <= set(ids["train"]) and {"size", "synthetic_seed"} <= set(ids["data"])
    keyed_if_set = {f.name for f in dataclasses.fields(ModelConfig) if f.metadata.get("identity") == "if_set"}
    assert keyed_if_set == {"hierarchy", "hierarchy_levels", "hcml_delta", "hcml_tau", "hcml_grid", "hcml_target",
                            "hcml_predictor", "block_options", "shift_div", "shift_place"}
    not_keyed = {f.name for f in dataclasses.fields(ModelConfig) if f.metadata.get("identity") is False}
    assert not_keyed == {"hcml_allow_leak", "stss_memory"}  # allowing a leak, recomputing: the same computation
    assert set(ids["model"]) == {f for f in ModelConfig.__dataclass_fields__} - keyed_if_set - not_keyed  # at defaults
    hcml = identity(resolve("smoke", overrides={"model": {"hierarchy": "diff", "hcml_tau": 0.2}}))
    assert hcml["model"]["hierarchy"] == "diff" and hcml["model"]["hcml_tau"] == 0.2 and "hcml_grid" not in hcml["model"]


def test_layout_and_finished(tmp_path):
    run = resolve("smoke")
    d = R.run_dir(tmp_path, run.run_hash)
    assert d == tmp_path / "runs" / run.run_hash and R.default_run_dir(run).parts[:2] == ("runs", "train")
    assert not R.is_finished(d)
    R.write_run_config(d, run)
    assert R.read_run_config(d) == run and not R.is_finished(d)
    R.write_metrics(d, R.result_rows(run, {"top1": 0.5}))
    assert R.is_finished(d) and R.read_metrics(d) == {"top1": 0.5}
    with pytest.raises(SelfyError, match="no checkpoint"):
        R.sweep_run_dirs(tmp_path)  # finished, but nothing to load
    (d / R.CHECKPOINT).write_bytes(b"")
    assert R.sweep_run_dirs(tmp_path) == [d] and R.find_checkpoints(tmp_path) == [d]
    assert R.checkpoint_path(d) == d / R.CHECKPOINT and R.run_dir_of(d / R.CHECKPOINT) == d


def test_one_row_builder_for_every_result_file():
    run = resolve("smoke")
    rows = R.result_rows(run, {"top1": 0.25, "loss": 2.0}, "val", "robustness", {
        "kind": "blur", "severity": 3, "corrupted_frames": "center", "test_clips": 1, "test_crops": 1, "weights": "final"})
    assert [r["metric"] for r in rows] == ["top1", "loss"]
    assert set(rows[0]) == set(R.ROBUSTNESS_COLUMNS) and rows[0]["run_id"] == run.run_hash
    assert rows[0]["experiment"] == "robustness" and rows[0]["gflops"] > 0 and rows[0]["offsets"] == "-2..2"
    assert set(R.result_rows(run, {"top1": 1.0})[0]) == set(R.RUN_COLUMNS)


def test_append_replaces_rows_with_the_same_key(tmp_path):
    run = resolve("smoke")
    key = {"test_clips": 1}
    R.append_eval(tmp_path / "eval.csv", R.result_rows(run, {"top1": 0.1}, keys=key))
    R.append_eval(tmp_path / "eval.csv", R.result_rows(run, {"top1": 0.2}, keys=key))
    R.append_eval(tmp_path / "eval.csv", R.result_rows(run, {"top1": 0.3}, keys={"test_clips": 2}))
    got = {(r["test_clips"], r["value"]) for r in R.read_csv(tmp_path / "eval.csv")}
    assert got == {("1", "0.2"), ("2", "0.3")}


@pytest.mark.skipif(os.geteuid() == 0 and not os.path.exists("/proc/self"), reason="needs /proc")
def test_ensure_writable(tmp_path):
    assert R.ensure_writable(tmp_path / "a" / "b").is_dir()
    with pytest.raises(SelfyError, match="cannot write to /proc/selfy-lab-x .*: pass a writable directory as --out"):
        R.ensure_writable("/proc/selfy-lab-x")
    (tmp_path / "file").write_text("")
    with pytest.raises(SelfyError, match="cannot write to"):
        R.ensure_writable(tmp_path / "file" / "sub")


@pytest.mark.slow
def test_sweeps_can_share_a_run_store(tmp_path):
    from selfy_lab.studies import ablate as A

    store = tmp_path / "store"
    a, b = tmp_path / "table-a", tmp_path / "table-b"
    A.run_plan(A.plan_sweep({"preset": "smoke"}, offsets=["1"]), a, runs_dir=store)
    calls = []
    plan_b = A.plan_sweep({"preset": "smoke"}, offsets=["1", "-1..1"])
    status = A.run_plan(plan_b, b, runs_dir=store, on_event=lambda e, **k: calls.append(k) if e == "plan" else None)
    assert [s["status"] for s in status] == ["done"] * 3
    assert calls == [{"total": 3, "done": 2}]  # the baseline and {1} were trained for table a
    assert (a / "runs").is_symlink() and (b / "runs").resolve() == store.resolve()
    assert len(list(store.iterdir())) == 3
    assert len(R.sweep_run_dirs(a)) == 2 and len(R.sweep_run_dirs(b)) == 3  # each sweep's own runs only
    assert len(R.read_csv(a / "runs.csv")) < len(R.read_csv(b / "runs.csv"))
    # the baseline trained for sweep a is a row of sweep b too, under b's experiment name
    assert {r["experiment"] for r in R.read_csv(b / "runs.csv")} == {plan_b.runs[0].run.experiment}
    with pytest.raises(SelfyError, match="not a link"):
        R.link_runs(a, tmp_path / "elsewhere")
    # the store is keyed like any run directory: one folder per run, named by its run key
    assert {d.name for d in store.iterdir()} == {r.run_id for r in plan_b.runs}


def test_rows_record_the_named_revision_of_a_tree_copied_without_its_history(monkeypatch):
    from selfy_lab.store.results import provenance
    from selfy_lab.core.version import git_revision

    here = git_revision()
    assert here and here != "abc1234"
    monkeypatch.setenv("SELFY_LAB_GIT_REV", "abc1234")
    assert provenance()["git_rev"] == "abc1234"


def test_cam_and_corrupt_take_the_table_3a_sweep_the_results_readme_names(tmp_path):
    with pytest.raises(SelfyError, match="names no offsets sweep"):
        R.readme_offsets_sweep(tmp_path)  # no README
    (tmp_path / "README.md").write_text("<!-- table comparison modules -->\n<!-- end table -->\n"
                                        "<!-- table paper 3a-tsm ladders/tsm -->\nold\n<!-- end table -->\n"
                                        "<!-- table paper 3a-tsn ladders/tsn -->\n<!-- end table -->\n")
    with pytest.raises(SelfyError, match="names .*ladders/tsm for Table 3a, which holds no sweep"):
        R.readme_offsets_sweep(tmp_path)
    R.write_sweep_record(tmp_path / "ladders" / "tsm", {"report": "offsets"})
    assert R.readme_offsets_sweep(tmp_path) == tmp_path / "ladders" / "tsm"  # the first one named
    repo = Path(__file__).resolve().parents[1] / "results"
    assert R.readme_offsets_sweep(repo) == repo / "ablate-offsets"


@pytest.mark.slow
def test_every_committed_run_folder_is_named_by_the_key_its_config_resolves_to_today():
    """The run key of every committed run is unchanged: its folder re-resolves from its config.yaml. The only
    exceptions are the 14 earliest tuning runs (results/tuning/t01-t06), trained before ``model.head_std``
    existed: their config.yaml lacks the field, which reads back at its default (0.001, the head initialisation
    they ran with), and the key now covers it. Their key is today's without that one field, checked here."""
    import hashlib
    import json

    import yaml

    from selfy_lab.config.run import RunConfig
    from selfy_lab.core.frozen import from_dict, identity

    fast = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # 2,000+ files: libyaml's parser where it is built

    root = Path(__file__).resolve().parents[1] / "results"
    folders = [c.parent for c in sorted(root.glob(f"**/{R.RUNS_DIR}/*/{R.CONFIG}")) if not c.parent.is_symlink()]
    assert len(folders) > 500
    before_head_std = []
    for d in folders:
        run = from_dict(RunConfig, yaml.load((d / R.CONFIG).read_text(), Loader=fast))
        if run.run_hash == d.name:
            continue
        key = identity(run)
        key["model"].pop("head_std")
        assert hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:10] == d.name, d
        assert "head_std" not in (d / R.CONFIG).read_text() and run.model.head_std == 0.001, d
        before_head_std.append(d.relative_to(root).parts[1])
    assert len(before_head_std) == 14 and set(before_head_std) == {"t01_current", "t02_nozero", "t03_lr4", "t06_quick6"}


def test_a_run_config_is_parsed_once_and_read_again_when_it_changes(tmp_path):
    """read_run_config keeps what it parsed while the file is unchanged; an edit in place of the same length
    (new times) and an atomic rewrite (a new file) are read again."""
    R.write_run_config(tmp_path, resolve("smoke"))
    first = R.read_run_config(tmp_path)
    assert R.read_run_config(tmp_path) is first and first.data.size == 32
    f = tmp_path / R.CONFIG
    st = f.stat()
    text = f.read_text()
    assert text.count("  size: 32\n") == 1
    f.write_text(text.replace("  size: 32\n", "  size: 48\n"))  # in place, the same length
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert R.read_run_config(tmp_path).data.size == 48
    R.write_run_config(tmp_path, resolve("smoke"))  # rewritten whole
    assert R.read_run_config(tmp_path).data.size == 32
