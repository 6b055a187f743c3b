"""Ablation sweeps: the offsets ladder, planning, skip / resume (also after SIGKILL), failures, tidy results."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, cli_inproc, one_line_error, rows

from selfy_lab.studies import ablate as A
from selfy_lab.core.errors import SelfyError
from selfy_lab.config.presets import resolve
from selfy_lab.store.results import RUN_COLUMNS

EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
R = lambda a, b: tuple(range(a, b + 1))  # noqa: E731


@pytest.mark.parametrize("spec,ladder", [
    ("-3..3", [None, (0,), (1,), R(-1, 1), R(-2, 2), R(-3, 3)]),
    ("-1..1", [None, (0,), (1,), R(-1, 1)]),
    ("-3..2", [None, (0,), (1,), R(-1, 1), R(-2, 2)]),
    ("0..2", [None, (0,), (1,)]),
    ("-2..0", [None, (0,)]),
])
def test_ladder_expansion(spec, ladder):
    assert A.offsets_ladder(spec) == ladder
    assert A.plan_offsets([spec]) == ladder


def test_several_sets_run_exactly_plus_baseline():
    assert A.plan_offsets(["1", "-2,0,2", "-1..1"]) == [None, (1,), (-2, 0, 2), R(-1, 1)]
    assert A.plan_offsets(["1", "-1..1"], baseline=False) == [(1,), R(-1, 1)]
    assert A.plan_offsets(["-2..2"], ladder=False) == [None, R(-2, 2)]
    assert A.plan_offsets(["-2,-1,0,1,2"]) == [None, R(-2, 2)]  # a list is not a range: no ladder


@pytest.mark.parametrize("specs,msg", [
    (["3..-3"], "reversed"), ([""], "empty"), (["1.5"], "not an integer"), (["1,1"], "twice"),
    (["1", "1"], "given twice"), (["-1..1", "{-1,0,1}"], "given twice"), ([], "at least one"),
])
def test_bad_offset_specs(specs, msg):
    with pytest.raises(SelfyError, match=msg):
        A.plan_offsets(specs)


def test_plan_crosses_axes_and_seeds_with_one_baseline_per_backbone():
    base = resolve("smoke", overrides={"model": {"frames": 8}})
    runs = A.plan(base, [None, (1,), R(-1, 1)], {"window": ["3x3", "5x5"]}, seeds=[0, 1])
    assert len(runs) == 2 * (1 + 2 * 2)
    assert len({r.run_id for r in runs}) == len(runs)
    two_backbones = A.plan(base, [None, (1,)], {"backbone": ["tsn-r18-w8", "tsm-r18-w8"]})
    assert sorted(r.run.model.block for r in two_backbones) == ["none", "none", "selfy", "selfy"]
    with pytest.raises(SelfyError, match="unknown sweep axis"):
        A.plan(base, [None], {"colour": ["red"]})
    with pytest.raises(SelfyError, match="unknown extractor"):
        A.plan(base, [(1,)], {"extractor": ["fft"]})


@pytest.mark.slow
def test_sweep_skips_finished_runs_and_records_failures(tmp_path, monkeypatch):
    base = resolve("smoke", overrides={"model": {"frames": 8}})
    runs = A.plan(base, [None, (1,), R(-1, 1)])
    out = tmp_path / "sweep"
    status = A.run_sweep(runs, out)
    assert [s["status"] for s in status] == ["done"] * 3
    table = rows(out / "runs.csv")
    assert list(table[0]) == list(RUN_COLUMNS)
    per_run = {r["run_id"] for r in table}
    assert per_run == {r.run_id for r in runs}
    assert len(table) == len({(r["run_id"], r["split"], r["metric"]) for r in table})
    assert {r["offsets"] for r in table} == {"none", "{1}", "-1..1"}
    took = {r["run_id"]: r["seconds"] for r in rows(out / "status.csv")}
    assert all(float(t) > 0 for t in took.values())
    mtimes = {r.run_id: (out / "runs" / r.run_id / "metrics.csv").stat().st_mtime for r in runs}

    import selfy_lab.studies.runner as T  # the study's one call into the engine: a run's training

    real_fit, calls = T.fit, []

    def failing_fit(run, run_dir, *a, **k):
        calls.append(run.run_hash)
        if run.model.offsets == (-2, -1, 0, 1, 2):
            raise RuntimeError("out of memory (simulated)")
        return real_fit(run, run_dir, *a, **k)

    monkeypatch.setattr(T, "fit", failing_fit)
    from dataclasses import replace

    same = replace(base, data=replace(base.data, workers=2, check=False), preset="quick", experiment="renamed")
    A.run_sweep(A.plan(same, [None, (1,), R(-1, 1)]), out)  # settings that do not change a result: nothing to do
    assert calls == []
    more = A.plan(base, [None, (1,), R(-1, 1), R(-2, 2), R(-3, 3)])
    status = A.run_sweep(more, out)
    assert len(calls) == 2  # the three finished runs were skipped
    by = {s["offsets"]: s for s in status}
    assert by["-2..2"]["status"] == "failed" and "out of memory" in by["-2..2"]["error"]
    assert by["-3..3"]["status"] == "done"  # the sweep went on after the failure
    assert "RuntimeError" in (out / "runs" / more[3].run_id / "error.txt").read_text()
    assert all((out / "runs" / r.run_id / "metrics.csv").stat().st_mtime == mtimes[r.run_id] for r in runs)
    assert {r["offsets"] for r in rows(out / "runs.csv")} == {"none", "{1}", "-1..1", "-3..3"}
    assert {s["status"] for s in rows(out / "status.csv")} == {"done", "failed"}
    # the skipped runs keep the training time recorded when they ran
    assert all(s["seconds"] == took[s["run_id"]] for s in rows(out / "status.csv") if s["run_id"] in took)


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_finishes_without_redoing(tmp_path):
    out = tmp_path / "sweep"
    args = [sys.executable, "-m", "selfy_lab.cli", "ablate", "--offsets", "1", "--preset", "smoke",
            "--frames", "8", "--epochs", "3", "--out", str(out)]  # two runs: the baseline, then {1}
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait until one run finished and the next has a checkpoint
        done = [r for r in (rows(out / "status.csv") if (out / "status.csv").exists() else []) if r["status"] == "done"]
        ckpts = list(out.glob("runs/*/checkpoint.pt"))
        if done and len(ckpts) > len(done):
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    finished = {r["run_id"]: (out / "runs" / r["run_id"] / "metrics.csv").stat().st_mtime
                for r in rows(out / "status.csv") if r["status"] == "done"}
    assert finished, "the sweep was killed before any run finished"
    q = cli_inproc(*args[3:])  # the same command again
    assert q.returncode == 0, q.stderr
    assert "already finished: skipped" in q.stdout and "resuming after epoch" in q.stdout
    status = rows(out / "status.csv")
    assert len(status) == 2 and {s["status"] for s in status} == {"done"}
    for run_id, mtime in finished.items():
        assert (out / "runs" / run_id / "metrics.csv").stat().st_mtime == mtime  # not redone
    table = rows(out / "runs.csv")
    assert len(table) == len({(r["run_id"], r["split"], r["metric"]) for r in table})
    assert len({r["run_id"] for r in table}) == 2


def _workers_of(pid):
    """Sweep worker processes (multiprocessing spawn children) of ``pid``, from /proc."""
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        kids += [int(k) for k in (task / "children").read_text().split()]
    return [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from Linux's /proc")
def test_parallel_workers_end_when_the_sweep_process_is_killed(tmp_path):
    out = tmp_path / "sweep"
    p = subprocess.Popen([sys.executable, "-m", "selfy_lab.cli", "ablate", "--offsets", "-2..2", "--preset", "smoke",
                          "--epochs", "50", "--jobs", "2", "--out", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.2)
        workers = _workers_of(p.pid)
    assert len(workers) == 2, "the sweep did not start its two workers"
    os.kill(p.pid, signal.SIGKILL)  # no finally clause runs: the workers must notice on their own
    p.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)


def _start_methods_of_a_sweep_worker(queue):
    before = A.mp.get_start_method()
    A._worker_setup("fork")
    queue.put((before, A.mp.get_start_method()))


@pytest.mark.slow
@pytest.mark.skipif("fork" not in A.mp.get_all_start_methods(), reason="a platform without fork")
def test_a_sweep_worker_starts_loader_processes_as_the_sweep_process_does():
    """Sweep workers are spawned; the data loaders of their runs start processes with the sweep process's method
    (fork on Linux), not by spawning a fresh interpreter for every loader."""
    ctx = A.mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_start_methods_of_a_sweep_worker, args=(queue,))
    p.start()
    assert queue.get(timeout=120) == ("spawn", "fork")
    p.join(timeout=60)


@pytest.mark.slow
def test_parallel_jobs_and_cli_outputs(tmp_path):
    """Two sweep workers, each run loading its clips in a worker process of its own."""
    out = tmp_path / "sweep"
    p = cli_inproc("ablate", "--offsets", "1", "--offsets", "-1..1", "--preset", "smoke", "--jobs", "2", "--seeds", "2",
                   "--workers", "1", "--out", str(out))
    assert p.returncode == 0, p.stderr
    table = rows(out / "runs.csv")
    assert len({r["run_id"] for r in table}) == 6 and {r["seed"] for r in table} == {"0", "1"}
    assert "± " in p.stdout and "top-1" in p.stdout  # mean ± std over seeds in the printed table
    assert (out / "figures" / "temporal_range.png").stat().st_size > 1000
    assert (out / "figures" / "temporal_range.pdf").exists() and (out / "sweep.yaml").exists()


@pytest.mark.parametrize("args,msg", [
    (["--offsets", "3..-3"], "reversed offsets range"),
    (["--offsets", "1", "--offsets", "1"], "given twice"),
    (["--offsets", "1", "--offsets", "-1..1", "--ladder"], "expands exactly one range"),
    (["--offsets", "1", "--window", "4x4"], "odd"),
    (["--offsets", "1", "--seeds", "0"], "--seeds must be at least 1"),
    (["--offsets", "1", "--jobs", "0"], "--jobs must be at least 1"),
    (["--offsets", "1", "--lr", "inf"], "lr must be a finite number"),
    (["--offsets", "1", "--out", "/proc/selfy-lab-sweep"], "cannot write to /proc/selfy-lab-sweep"),
])
def test_bad_sweep_input_is_one_line(tmp_path, args, msg):
    p = cli_inproc("ablate", "--preset", "smoke", "--out", str(tmp_path / "s"), *args)
    assert one_line_error(p, msg), p.stderr


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_shipped_experiment_plans(path, preset):
    """Every experiment file plans under both presets (as `selfy-lab ablate --experiment` does)."""
    plan = A.plan_sweep({"experiment": path, "preset": preset})
    # a paper table's experiment names it (Table 3a..8); a comparison the paper does not run names none, but
    # for a plain SELFY ladder, planned as Table 3a of its backbone
    if path.stem.startswith("table"):
        assert plan.paper_table, "tableN experiments name the paper table"
    else:
        assert plan.paper_table == "" or (plan.report == "offsets" and plan.paper_table in ("3a-tsn", "3a-tsm"))
    assert plan.name == path.stem.replace("_", "-") and all(r.run.experiment == plan.name for r in plan.runs)
    assert len(plan.runs) >= 2 and plan.runs[0].run.model.block == "none"
    for pr in plan.runs:
        if preset == "quick":
            assert "-w" in pr.run.model.backbone  # a narrow CPU variant
        else:
            assert "-w" not in pr.run.model.backbone
            assert pr.run.model.pretrained == "imagenet" or "pretrain" in pr.run.model.pretrained  # or an HCML run


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_network_the_shipped_experiments_plan_builds_and_runs(preset):
    """Every network an experiment file plans builds and runs (on the meta device), each distinct one once:
    seeds, training settings and other experiments share networks."""
    from selfy_lab.models.flops import count_macs
    from selfy_lab.models import build_model

    networks = {(pr.run.model, pr.run.data.size): path.stem for path in EXPERIMENTS
                for pr in A.plan_sweep({"experiment": path, "preset": preset}).runs}
    assert len(networks) > len(EXPERIMENTS)
    for (model, size), experiment in networks.items():
        with torch.device("meta"):
            m = build_model(model).eval()
            assert count_macs(m, torch.empty(1, model.frames, 3, size, size)) > 0, (experiment, model)


def test_a_plain_selfy_ladder_is_planned_as_table_3a_of_its_backbone_and_recorded(tmp_path):
    """The paper table a sweep reproduces is decided when it is planned: what its experiment names, else
    Table 3a of its backbone family for a ladder of SELFY offset sets, else none."""
    smoke = {"preset": "smoke"}
    plan = A.plan_sweep(smoke, offsets=["-3..3"])
    assert plan.paper_table == "3a-tsn" and plan.record["paper_table"] == "3a-tsn"
    assert A.plan_sweep({**smoke, "backbone": "tsm-r18-w8"}, offsets=["-2..2"]).paper_table == "3a-tsm"
    assert A.plan_sweep(smoke, offsets=["1"]).paper_table == ""  # one set beside its baseline: no ladder
    # motion modules take no offsets: a comparison, not Table 3a
    assert A.plan_sweep(smoke, offsets=["1"], axes={"block": ["tea", "tam", "stm"]}).paper_table == ""
    # SELFY on the ladder's offsets, but the window changes too: not Table 3a either
    assert A.plan_sweep(smoke, offsets=["-2..2"], axes={"window": ["3x3", "5x5"]}).paper_table == ""
    exp = tmp_path / "e.yaml"
    exp.write_text("preset: smoke\npaper_table: 7f\nsweep:\n  offsets: ['-2..2']\n")
    assert A.plan_sweep({"experiment": exp}).paper_table == "7f"  # what the experiment names wins
    A.run_sweep(A.plan(resolve("smoke", overrides={"train": {"epochs": 1}}), [None]), tmp_path / "s",
                record=plan.record)
    from selfy_lab.store.results import recorded_paper_table

    assert recorded_paper_table(tmp_path / "s") == "3a-tsn" and recorded_paper_table(tmp_path) == ""


def test_plan_sweep_flags_win_over_the_experiment_file(tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text("name: e\npreset: smoke\nmodel:\n  frames: 8\nsweep:\n  offsets: ['-2..2']\n  seeds: 2\n"
                   "  axes:\n    window: [3x3, 5x5]\n")
    plan = A.plan_sweep({"experiment": exp})
    assert plan.seeds == [0, 1] and plan.name == "e"
    assert len(plan.runs) == 2 * (1 + 4 * 2)  # (baseline + {0}, {1}, -1..1, -2..2 x two windows) x two seeds
    plan = A.plan_sweep({"experiment": exp}, seeds=3)  # --seeds wins over the file's seeds
    assert plan.seeds == [0, 1, 2]
    plan = A.plan_sweep({"experiment": exp}, offsets=["1"], axes={"window": ["3x3"]}, baseline=False)
    assert [(r.run.model.offsets, r.run.model.window) for r in plan.runs] == [((1,), (3, 3))] * 2
    plan = A.plan_sweep({"experiment": exp, "epochs": 3, "lr": 0.01})  # run flags reach every run
    assert {(r.run.train.epochs, r.run.train.lr) for r in plan.runs} == {(3, 0.01)}
    exp.write_text("preset: smoke\nsweep:\n  offsets: ['1']\n  seeds: [5, 7]\n")
    assert A.plan_sweep({"experiment": exp}).seeds == [5, 7]
    for bad, msg in (("seeds: 0", "at least 1"), ("seeds: [a]", "non-negative integers"), ("colour: red", "unknown sweep key")):
        exp.write_text(f"preset: smoke\nsweep:\n  offsets: ['1']\n  {bad}\n")
        with pytest.raises(SelfyError, match=msg):
            A.plan_sweep({"experiment": exp})
    assert A.plan_sweep({"preset": "smoke"}, offsets=["1"]).name == "ablate"  # no file: the command's name


def test_variants_are_crossed_with_the_axes_and_each_backbone_keeps_one_baseline_per_cell():
    base = resolve("smoke", overrides={"model": {"frames": 8}})
    runs = A.plan(base, [None, (1,)], {"lr": [0.002, 0.004]},
                  variants=[{"block": "tea"}, {"backbone": "tsm-r18-w8", "block": "none"}], seeds=[100])
    cells = sorted((r.run.model.backbone, r.run.model.block, r.run.train.lr) for r in runs)
    assert cells == [("tsm-r18-w8", "none", 0.002), ("tsm-r18-w8", "none", 0.004),
                     ("tsn-r18-w8", "none", 0.002), ("tsn-r18-w8", "none", 0.004),
                     ("tsn-r18-w8", "tea", 0.002), ("tsn-r18-w8", "tea", 0.004)]
    assert sum("lr=0.004" in r.label for r in runs) == 3 and {r.run.train.seed for r in runs} == {100}


def test_a_variant_without_a_block_is_its_backbones_baseline():
    """Variants that only change the baseline's axes (backbone, the shift, the input size) plan one baseline each."""
    from selfy_lab.studies.ablate import plan_sweep

    p = plan_sweep({"experiment": ROOT / "experiments" / "tsm_diagnosis.yaml"})
    assert len(p.runs) == 8 and all(r.run.model.block == "none" for r in p.runs)
    assert {r.run.data.synthetic_seed for r in p.runs} == {1} and {r.run.train.seed for r in p.runs} == {100}
    labels = [r.label for r in p.runs]
    assert len(set(labels)) == 8 and any("shift_place=inplace" in s for s in labels) and any("112px" in s for s in labels)
    study = plan_sweep({"experiment": ROOT / "experiments" / "hcml_labels.yaml"}, seeds=2).runs  # no baseline there
    assert len(study) == 24 and len({r.label for r in study}) == 24  # every arm named apart: init, labels, steps
    tuned = [r for r in study if r.run.model.pretrained != "none"]
    assert {r.run.model.pretrained for r in tuned} == {"runs/hcml/pretrain/seed-0", "runs/hcml/pretrain/seed-1"}
    assert all(f"seed-{r.run.train.seed}" in r.run.model.pretrained for r in tuned)
    assert {r.label.split(" init=")[1].split()[0].rstrip(",") for r in tuned} == {"file", "file-probe"}
    assert {(r.run.data.label_fraction, r.run.train.batch_size) for r in study} == {(1.0, 32), (0.1, 32), (0.01, 16)}


@pytest.mark.slow
def test_one_sweep_per_folder_and_one_trainer_per_run(tmp_path):
    from selfy_lab.store import results as Rs
    from selfy_lab.engine.train import fit

    base = resolve("smoke", overrides={"train": {"epochs": 1}})
    runs = A.plan(base, [None])
    out = tmp_path / "sweep"
    out.mkdir()
    with Rs.exclusive(out, "the sweep folder"):
        with pytest.raises(SelfyError, match=f"in use by pid {os.getpid()}"):
            A.run_sweep(runs, out)
        p = cli_inproc("ablate", "--preset", "smoke", "--offsets", "1", "--no-baseline", "--out", out)
        assert one_line_error(p, f"is in use by pid {os.getpid()}")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with Rs.exclusive(run_dir, "the run directory"):
        with pytest.raises(SelfyError, match="the run directory .* is in use"):
            fit(base, run_dir)
    assert A.run_sweep(runs, out)[0]["status"] == "done"  # released: the sweep runs


@pytest.mark.slow
def test_an_incomplete_metrics_file_is_not_a_finished_run(tmp_path):
    from selfy_lab.store import results as Rs

    base = resolve("smoke", overrides={"train": {"epochs": 1}})
    runs = A.plan(base, [None, (1,)])
    out = tmp_path / "sweep"
    A.run_sweep(runs, out)
    first, second = (Rs.run_dir(out, r.run_id) for r in runs)
    (first / "metrics.csv").write_text("")  # emptied
    lines = (second / "metrics.csv").read_text().splitlines()
    (second / "metrics.csv").write_text("\n".join(",".join(l.split(",")[:-7]) for l in lines) + "\n")  # lost columns
    assert not Rs.is_finished(first) and "no rows" in Rs.metrics_problem(first)
    assert "lacks the column(s) value" in Rs.metrics_problem(second)
    events = []
    status = A.run_sweep(runs, out, on_event=lambda e, **k: events.append((e, k.get("why"))))
    assert [e for e in events if e[0] == "stale"] == [("stale", "its metrics.csv holds no rows"),
                                                       ("stale", "its metrics.csv lacks the column(s) value, version, git_rev, time")]
    assert [s["status"] for s in status] == ["done", "done"] and Rs.is_finished(first) and Rs.is_finished(second)
    assert {r["run_id"] for r in rows(out / "runs.csv")} == {r.run_id for r in runs}


def test_a_diverged_run_and_a_full_disk_are_status_rows_not_tracebacks(tmp_path, monkeypatch):
    import errno

    import selfy_lab.studies.runner as T  # the study's one call into the engine: a run's training
    from selfy_lab.core.errors import DivergedError
    from selfy_lab.store import results as Rs

    base = resolve("smoke", overrides={"train": {"epochs": 1}})
    runs = A.plan(base, [None, (1,)])

    def diverging(run, run_dir, *a, **k):
        if run.model.block == "none":
            raise DivergedError("the training loss became nan in epoch 1 by step 10: lower --lr")
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(T, "fit", diverging)
    monkeypatch.setattr(Rs, "write_error", full_disk)
    status = A.run_sweep(runs, tmp_path / "sweep")
    assert [s["status"] for s in status] == ["diverged", "failed"]
    assert "lower --lr" in status[0]["error"] and "No space left" in status[1]["error"]
    assert "error.txt could not be written" in status[1]["error"]
    assert not any(Rs.is_finished(Rs.run_dir(tmp_path / "sweep", r.run_id)) for r in runs)


@pytest.mark.slow
def test_a_full_disk_while_the_sweep_writes_its_tables_is_one_line(tmp_path, monkeypatch):
    import errno

    from selfy_lab.store import results as Rs

    base = resolve("smoke", overrides={"train": {"epochs": 1}})
    runs = A.plan(base, [None])
    out = tmp_path / "sweep"
    A.run_sweep(runs, out)
    before = (Rs.run_dir(out, runs[0].run_id) / "metrics.csv").read_text()

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Rs, "atomic_write_text", full_disk)
    monkeypatch.setattr(Rs, "write_csv", full_disk)
    with pytest.raises(SelfyError, match="No space left on device.*finished runs are kept"):
        A.run_sweep(runs, out)
    assert (Rs.run_dir(out, runs[0].run_id) / "metrics.csv").read_text() == before


def test_a_sweep_declares_its_report_when_planned_and_records_it_with_its_base_recipe(tmp_path):
    """What a sweep reports is said before it runs (``--report``, else its experiment file's ``report:``, else
    what its plan sweeps) and recorded in its sweep.yaml, with the recipe of its base config."""
    from selfy_lab.config.vocabulary import REPORTS

    smoke = {"preset": "smoke"}
    assert A.plan_sweep(smoke, offsets=["-2..2"]).report == "offsets"  # a ladder
    assert A.plan_sweep(smoke, offsets=["1"]).report == "none"  # one set beside its baseline: no curve
    assert A.plan_sweep(smoke, offsets=["-2..2"], axes={"window": ["3x3", "5x5"]}).report == "none"
    assert A.plan_sweep(smoke, offsets=["1"], axes={"block": ["tea", "tam", "stm"]}).report == "comparison"
    # an axis of one value sweeps nothing: a ladder on another backbone, or of one block, is still a ladder
    assert A.plan_command({"preset": "smoke", "backbone": "tsm-r18-w8"}, offsets=["-2..2"]).report == "offsets"
    assert A.plan_command({"preset": "smoke", "block": "selfy"}, offsets=["-2..2"]).report == "offsets"
    assert A.plan_sweep(smoke, offsets=["-2..2"], report="robustness").report == "robustness"  # --report wins
    with pytest.raises(SelfyError, match="unknown report 'table'.*offsets, comparison"):
        A.plan_sweep(smoke, offsets=["1"], report="table")
    exp = tmp_path / "e.yaml"
    exp.write_text("preset: smoke\nreport: recipes\ntrain:\n  lr: 0.002\nsweep:\n  offsets: ['1']\n"
                   "  variants:\n    - {lr: 0.008}\n    - {lr: 0.002, epochs: 1}\n")
    plan = A.plan_sweep({"experiment": exp})
    assert plan.report == plan.record["report"] == "recipes"
    # the base recipe is the experiment's (0.002 at the smoke preset's epochs), not its first run's
    assert plan.record["recipe"] == {"lr": 0.002, "epochs": plan.base.train.epochs}
    assert {r.run.train.lr for r in plan.runs} == {0.008, 0.002}
    exp.write_text("preset: smoke\nreport: curves\nsweep:\n  offsets: ['1']\n")
    with pytest.raises(SelfyError, match="unknown report 'curves'"):
        A.plan_sweep({"experiment": exp})
    # the shipped experiment files each declare theirs; every committed sweep records one, and its base recipe
    import yaml

    from selfy_lab.store import results as Rs

    declared = {}
    for f in sorted((ROOT / "experiments").glob("**/*.yaml")):
        data = yaml.safe_load(f.read_text())
        assert data.get("report") in REPORTS, f"{f} declares no report"
        declared[data.get("name")] = data["report"]
    for d in Rs.find_sweeps(ROOT / "results"):
        rec = Rs.read_sweep_record(d)
        assert rec.get("report") in REPORTS and set(rec.get("recipe") or {}) == {"lr", "epochs"}, d
        experiment = rec["base"]["experiment"]
        assert experiment == "ablate" or rec["report"] == declared[experiment], d
