"""Every number traceable: the held-out test split beside validation, the source revision (uncommitted code
refused unless allowed, then its diff kept), the device, torch version and thread count of every row."""
import pytest
import yaml
from helpers import cli_inproc, one_line_error, rows

from selfy_lab.studies import ablate as A
from selfy_lab.store import results as R
from selfy_lab.data.datasets import build_dataset, scored_splits
from selfy_lab.core.errors import SelfyError
from selfy_lab.config.presets import resolve


def test_the_benchmark_has_a_disjoint_test_split_of_its_own_size():
    run = resolve("smoke", overrides={"data": {"synthetic_val": 16, "synthetic_test": 24}})
    val, test = build_dataset(run, "val"), build_dataset(run, "test")
    assert (len(val), len(test)) == (16, 24) and scored_splits(run) == ("val", "test")
    assert not any((val.clip(i) == test.clip(i)).all() for i in range(16))  # other clips, same class order
    # the test split's size is no part of the run key: scoring changes no weights
    assert run.run_hash == resolve("smoke", overrides={"data": {"synthetic_val": 16}}).run_hash


def test_a_list_dataset_has_a_test_split_only_with_a_test_list():
    run = resolve("paper", "something-v1")
    assert scored_splits(run) == ("val",)
    assert scored_splits(resolve("paper", "diving48", {"data": {"test_list": "test.txt"}})) == ("val", "test")
    with pytest.raises(SelfyError, match="--test-list"):
        build_dataset(run, "test")


def test_a_run_is_scored_on_test_once_and_a_run_without_test_rows_is_rescored_from_its_checkpoint(tmp_path):
    from selfy_lab.engine.train import fit

    run = resolve("smoke")
    d = tmp_path / "run"
    fit(run, d)
    table = rows(d / R.METRICS)
    assert {r["split"] for r in table} == {"val", "test", "train"}
    test_top1 = next(float(r["value"]) for r in table if (r["split"], r["metric"]) == ("test", "top1"))
    history = rows(d / R.HISTORY)
    assert not any(k.startswith("test") for k in history[0])  # never per epoch: nothing may choose on it
    # a run finished before the test split existed: its checkpoint is scored again, nothing is trained
    R.write_csv(d / R.METRICS, [r for r in table if r["split"] != "test"], R.RUN_COLUMNS)
    assert R.is_finished(d) and not R.is_finished(d, scored_splits(run))
    events = []
    fit(run, d, lambda e, **k: events.append(e))
    assert "rescore" in events and "epoch_start" not in events
    again = rows(d / R.METRICS)
    assert next(float(r["value"]) for r in again if (r["split"], r["metric"]) == ("test", "top1")) == test_top1


def test_rows_record_threads_and_a_sweep_sets_them_explicitly(tmp_path):
    runs = A.plan(resolve("smoke"), [None], seeds=[0])
    import torch

    before = torch.set_num_threads(2) or torch.get_num_threads()
    A.run_sweep(runs, tmp_path / "s", threads=1)
    assert torch.get_num_threads() == before  # the runs trained on 1; the process has its own count back
    table = rows(tmp_path / "s" / R.RUNS_TABLE)
    assert {(r["device"], r["threads"]) for r in table} == {("cpu", "1")} and all(r["torch"] for r in table)
    record = yaml.safe_load((tmp_path / "s" / R.SWEEP_RECORD).read_text())
    assert record["execution"] == {"jobs": 1, "threads": 1, "device": "auto"}
    assert A.sweep_threads(jobs=2, threads=None) >= 1
    with pytest.raises(SelfyError, match="--threads"):
        A.sweep_threads(1, 0)


def test_uncommitted_package_code_stops_before_any_result_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFY_LAB_GIT_REV", "abc1234+dirty")
    monkeypatch.delenv(R.ALLOW_DIRTY_ENV, raising=False)
    with pytest.raises(SelfyError, match="uncommitted changes.*--allow-dirty"):
        R.check_source(tmp_path)
    with pytest.raises(SelfyError, match="uncommitted"):
        A.run_sweep(A.plan(resolve("smoke"), [None]), tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()
    monkeypatch.setattr(R, "source_diff", lambda: "--- a/x\n+++ b/x\n")
    R.allow_dirty_source()
    assert R.check_source(tmp_path) == "abc1234+dirty" and (tmp_path / R.SOURCE_DIFF).read_text().startswith("---")


@pytest.mark.slow
def test_the_command_line_refuses_dirty_code_in_one_line_and_allows_it_with_the_diff_kept(tmp_path):
    env = {"SELFY_LAB_GIT_REV": "abc1234+dirty", R.ALLOW_DIRTY_ENV: ""}
    p = cli_inproc("train", "--preset", "smoke", "--out", tmp_path / "run", env=env)
    assert one_line_error(p, "uncommitted changes") and not (tmp_path / "run" / R.CONFIG).exists()
    p = cli_inproc("train", "--preset", "smoke", "--out", tmp_path / "run", "--allow-dirty", env=env)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "run" / R.SOURCE_DIFF).is_file()
    assert {r["git_rev"] for r in rows(tmp_path / "run" / R.METRICS)} == {"abc1234+dirty"}
    p = cli_inproc("eval", tmp_path / "run", "--split", "test", "--out", tmp_path / "eval.csv",
                   env={"SELFY_LAB_GIT_REV": "abc1234"})
    assert p.returncode == 0, p.stderr
    assert {r["split"] for r in rows(tmp_path / "eval.csv")} == {"test"}
    assert "test split of" in p.stdout
