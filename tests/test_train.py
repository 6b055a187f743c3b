"""Training engine and the train / eval commands: files, resume, determinism, real-format data, DDP."""
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from helpers import Stop, cli_inproc, free_port, one_line_error, rows, stop_after_first_epoch

from selfy_lab.engine.checkpoint import load_run
from selfy_lab.core.errors import SelfyError
from selfy_lab.engine.evaluate import evaluate
from selfy_lab.config.presets import resolve
from selfy_lab.store.results import RUN_COLUMNS
from selfy_lab.core.runtime import thread_note
from selfy_lab.engine.train import fit, lr_at

SMOKE = dict(train=dict(epochs=2))


def test_fit_writes_the_run_directory(tmp_path):
    run = resolve("smoke", overrides=SMOKE)
    metrics = fit(run, tmp_path / "run")
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.yaml", "checkpoint.pt", "history.csv", "metrics.csv"} <= files
    m = rows(tmp_path / "run" / "metrics.csv")
    assert list(m[0]) == list(RUN_COLUMNS)
    assert {r["metric"] for r in m if r["split"] == "val"} >= {"top1", "top5", "mean_class", "loss",
                                                               "order_pairs_top1", "order_pairs_binary"}
    assert {(r["split"], r["metric"]) for r in m if r["split"] == "train"} == {("train", "loss"), ("train", "top1"),
                                                                               ("train", "seconds")}
    assert all(r["run_id"] == run.run_hash and r["offsets"] == "-2..2" for r in m)
    assert len(rows(tmp_path / "run" / "history.csv")) == 2
    assert 0 <= metrics["top1"] <= 1


def test_a_model_with_3d_kernels_trains_channels_last(tmp_path):
    """Table 7c's conv3d extractor holds 5-D kernels, which a channels-last conversion of the model must leave alone."""
    run = resolve("smoke", overrides=dict(model=dict(extractor="conv3d", offsets="-1..1"), train=dict(epochs=1)))
    assert run.train.channels_last
    assert 0 <= fit(run, tmp_path / "run")["top1"] <= 1


def test_tensorboard_gets_every_epoch_and_the_config_without_changing_the_run(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = resolve("smoke", overrides=SMOKE)
    logged = replace(run, train=replace(run.train, tensorboard=True))
    assert logged.run_hash == run.run_hash  # logging is not part of what a run computes
    fit(logged, tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2] and len(events.Scalars("val/top1")) == 2
    assert {"lr", "val/top5", "hparam/val_top1"} <= set(events.Tags()["scalars"])
    assert events.PluginTagToContent("hparams")  # the config, as hparams

    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *a, **kw):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    from selfy_lab.core.errors import SelfyError

    with pytest.raises(SelfyError, match="needs the tensorboard package"):
        fit(replace(logged, train=replace(logged.train, epochs=1)), tmp_path / "other")


@pytest.mark.slow
def test_two_runs_are_identical_and_an_interrupted_run_resumes_to_the_same_result(tmp_path):
    run = resolve("smoke", overrides=SMOKE)
    a = fit(run, tmp_path / "a")
    b = fit(run, tmp_path / "b")
    assert a == b  # deterministic on CPU for a given seed

    with pytest.raises(Stop):
        fit(run, tmp_path / "c", stop_after_first_epoch)
    assert torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not (tmp_path / "c" / "metrics.csv").exists()
    events = []
    c = fit(run, tmp_path / "c", lambda e, **kw: events.append((e, kw.get("epoch"))))
    assert ("resume", 1) in events and ("epoch_start", 0) not in events
    assert c == a
    assert fit(run, tmp_path / "c", lambda e, **kw: events.append((e, kw))) == pytest.approx(a)
    assert events[-1][0] == "finished"


@pytest.mark.slow
def test_a_cpu_run_records_its_threads_and_a_resume_on_other_threads_says_so(tmp_path):
    """The thread count splits the CPU's reductions and so sets a run's round-off: every epoch of history records
    it, and a run resumed on another count says that its digits will differ from an uninterrupted run's."""
    small = {"synthetic_train": 16, "synthetic_val": 16, "synthetic_test": 16}  # six runs: one batch an epoch
    run = resolve("smoke", overrides={**SMOKE, "data": small})
    before = torch.get_num_threads()
    events = []
    try:
        torch.set_num_threads(2)
        with pytest.raises(Stop):
            fit(run, tmp_path / "c", stop_after_first_epoch)
        torch.set_num_threads(1)
        fit(run, tmp_path / "c", lambda e, **kw: events.append((e, kw)))
        torch.set_num_threads(2)
        with pytest.raises(Stop):
            fit(run, tmp_path / "same", stop_after_first_epoch)
        fit(run, tmp_path / "same", lambda e, **kw: events.append((e, kw)))
        with pytest.raises(Stop):  # for the command line below, which goes on with 1 thread
            fit(run, tmp_path / "cli", stop_after_first_epoch)
        torch.set_num_threads(1)
        p = cli_inproc("train", "--preset", "smoke", "--epochs", "2", *(x for k, v in small.items()
                       for x in ("--set", f"data.{k}={v}")), "--out", tmp_path / "cli")
    finally:
        torch.set_num_threads(before)
    assert [r["threads"] for r in rows(tmp_path / "c" / "history.csv")] == ["2", "1"]
    changed, same = [kw for e, kw in events if e == "resume"]
    assert changed == {"epoch": 1, "threads_before": 2, "threads": 1}
    assert thread_note(changed) == ("; it trained on 2 CPU threads and goes on with 1, so its digits will differ "
                                    "from an uninterrupted run's")
    assert same == {"epoch": 1} and thread_note(same) == ""
    assert p.returncode == 0, p.stderr
    said = " ".join(p.stdout.split())
    assert "resuming after epoch 1 (checkpoint found); it trained on 2 CPU threads and goes on with 1" in said


def test_a_run_does_not_depend_on_what_the_process_ran_before(tmp_path):
    """Weights are initialised from the run's seed alone: a run gives the same metrics whether it is the first
    thing a process does or comes after other runs (a sweep) and other uses of the random generator."""
    run = resolve("smoke", overrides=dict(model=dict(block="none")))
    first = fit(run, tmp_path / "first")
    fit(resolve("smoke", overrides=dict(model=dict(offsets="1"))), tmp_path / "other")  # another run in between
    torch.rand(1000)
    again = fit(run, tmp_path / "again")
    assert again == first
    a = torch.load(tmp_path / "first" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "again" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_directory_refuses_another_configuration(tmp_path):
    fit(resolve("smoke"), tmp_path)
    from selfy_lab.core.errors import SelfyError

    with pytest.raises(SelfyError, match="another configuration"):
        fit(resolve("smoke", overrides={"model": {"offsets": "1"}}), tmp_path)


def test_eval_of_a_trained_model_matches_training(tmp_path):
    run = resolve("smoke")
    m = fit(run, tmp_path)
    run2, model = load_run(tmp_path, "cpu")
    assert run2 == run
    again = evaluate(run2, model)
    assert again["top1"] == pytest.approx(m["top1"]) and again["loss"] == pytest.approx(m["loss"], rel=1e-5)


def test_learning_rate_schedules():
    step = resolve("paper", "something-v1")
    assert lr_at(step, 0) == 0.01 and lr_at(step, 30) == pytest.approx(0.001) and lr_at(step, 45) == pytest.approx(1e-4)
    cos = resolve("paper", "diving48")
    assert cos.train.schedule == "cosine" and cos.train.warmup == 10 and cos.train.epochs == 30
    assert lr_at(cos, 5) == pytest.approx(0.005, rel=1e-3) and lr_at(cos, 10) == pytest.approx(0.01)
    assert lr_at(cos, 30) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.slow
def test_train_command_on_fake_ssv1_tree_then_eval(fake_ssv1, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--preset", "smoke", "--dataset", "something-v1", "--data-root", str(fake_ssv1),
            "--epochs", "1", "--out", str(out)]
    p = cli_inproc(*args)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "top1" in p.stdout
    m = rows(out / "metrics.csv")
    assert {r["backbone"] for r in m} == {"tsn-r18-w8"}
    p = cli_inproc(*args)  # the same command again: nothing to do
    assert p.returncode == 0 and "already finished" in p.stdout
    p = cli_inproc("eval", str(out), "--test-clips", "2")
    assert p.returncode == 0, p.stderr
    e = rows(out / "eval.csv")
    assert {r["test_clips"] for r in e} == {"2"} and any(r["metric"] == "top1" for r in e)
    p = cli_inproc("eval", str(out), "--clips", "2", "--crops", "3")  # the paper's multi-view test
    assert p.returncode == 0, p.stderr
    e = rows(out / "eval.csv")
    assert {(r["test_clips"], r["test_crops"]) for r in e} == {("2", "1"), ("2", "3")}
    assert {r["run_id"] for r in e} == {m[0]["run_id"]}  # keyed by the trained run, whatever the protocol
    for name in ("confusion-2clips-3crops.csv", "per_class-2clips-3crops.csv", "confusion-2clips-3crops.png"):
        assert (out / name).is_file(), name
    per_class = rows(out / "per_class-2clips-3crops.csv")
    assert sum(int(r["clips"]) for r in per_class) == sum(int(r["count"]) for r in rows(out / "confusion-2clips-3crops.csv"))
    assert "most frequent confusions" in p.stdout  # a one-epoch model confuses some classes
    for protocol in (["--clips", "2", "--crops", "3"], []):  # corrupt takes the same protocol; cells keep it apart
        p = cli_inproc("corrupt", "--checkpoint", out, "--kind", "blur", "--severity", "1", "--out", tmp_path / "rob", *protocol)
        assert p.returncode == 0, p.stderr
    r = rows(tmp_path / "rob" / "robustness.csv")
    assert {(x["test_clips"], x["test_crops"], x["severity"]) for x in r} == {
        ("2", "3", "0"), ("2", "3", "1"), ("1", "1", "0"), ("1", "1", "1")}
    summary = rows(tmp_path / "rob" / "robustness_summary.csv")
    assert {(x["test_clips"], x["test_crops"]) for x in summary if x["metric"] == "mPC"} == {("2", "3"), ("1", "1")}


@pytest.mark.slow
def test_bad_data_is_one_line_through_the_cli(fake_ssv1, tmp_path):
    (fake_ssv1 / "val_videofolder.txt").write_text("/Dataset/SSV1/85 12 30\n/Dataset/SSV1/nope 12 30\n")
    p = cli_inproc("train", "--preset", "smoke", "--dataset", "something-v1", "--data-root", str(fake_ssv1),
                   "--out", str(tmp_path / "r"))
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "val_videofolder.txt:2: frame folder" in err[0] and "does not exist" in err[0]
    (fake_ssv1 / "val_videofolder.txt").write_text("/Dataset/SSV1/85 12\n")
    p = cli_inproc("train", "--preset", "smoke", "--dataset", "something-v1", "--data-root", str(fake_ssv1),
                   "--out", str(tmp_path / "r2"))
    assert p.returncode == 2 and "val_videofolder.txt:1: expected 3 columns" in p.stderr


@pytest.mark.slow
def test_bad_data_inside_a_worker_is_one_line(fake_ssv1, tmp_path):
    """Errors raised in DataLoader worker processes reach the user as the original one-line message."""
    folder = sorted(p for p in fake_ssv1.iterdir() if p.is_dir())[0]
    for f in folder.iterdir():
        f.write_bytes(b"broken")
    p = cli_inproc("train", "--preset", "smoke", "--dataset", "something-v1", "--data-root", str(fake_ssv1),
                   "--workers", "1", "--out", str(tmp_path / "r"))
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "cannot read image" in err[0] and "Traceback" not in p.stderr


@pytest.mark.parametrize("args,msg", [
    (["--preset", "fast"], "unknown preset"),
    (["--dataset", "kinetics"], "unknown dataset"),
    (["--offsets", "-9..9", "--preset", "smoke"], "beyond a 4-frame clip"),
    (["--experiment", "missing.yaml"], "does not exist"),
    (["--lr", "nan", "--preset", "smoke"], "lr must be a finite number"),
    (["--lr", "-0.1", "--preset", "smoke"], "lr must be above 0"),
    (["--epochs", "0", "--preset", "smoke"], "epochs must be at least 1"),
    (["--batch-size", "0", "--preset", "smoke"], "batch_size must be at least 1"),
    (["--seed", "-1", "--preset", "smoke"], "seed must be at least 0"),
    (["--workers", "-2", "--preset", "smoke"], "workers must be at least 0"),
    (["--frames", "0", "--preset", "smoke"], "frames must be at least 1"),
    (["--test-clips", "3", "--preset", "smoke"], "test_clips must be 1 or 2"),
    (["--out", "/proc/selfy-lab-run", "--preset", "smoke"], "cannot write to /proc/selfy-lab-run"),
])
def test_bad_train_input_is_one_line(tmp_path, args, msg):
    p = cli_inproc("train", *args, cwd=tmp_path)
    assert one_line_error(p, msg), p.stderr
    assert not list(tmp_path.glob("runs/**/checkpoint.pt"))  # stopped before any work


def test_eval_errors_are_one_line(tmp_path):
    assert one_line_error(cli_inproc("eval", tmp_path), "no checkpoint")
    assert one_line_error(cli_inproc("eval", tmp_path, "--workers", "-1"), "--workers must be at least 0")


def test_settings_that_do_not_change_the_result_reuse_a_finished_run(tmp_path):
    """The run key leaves out loader processes, data checks, validation frequency, preset and experiment
    names: changing them finds the finished run; changing a result-relevant field does not."""
    run = resolve("smoke", overrides=SMOKE)
    fit(run, tmp_path / run.run_hash)
    same = [replace(run, data=replace(run.data, workers=2)), replace(run, data=replace(run.data, check=False)),
            replace(run, train=replace(run.train, eval_every=0)), replace(run, preset="quick"),
            replace(run, experiment="another-name")]
    for other in same:
        assert other.run_hash == run.run_hash
        events = []
        fit(other, tmp_path / other.run_hash, lambda e, **kw: events.append(e))
        assert events == ["finished"]
    for other in (replace(run, train=replace(run.train, lr=0.003)), replace(run, data=replace(run.data, size=48)),
                  replace(run, train=replace(run.train, seed=1))):
        assert other.run_hash != run.run_hash


@pytest.mark.slow
def test_experiment_file_and_flags(tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text("# why: a forward-only variant\npreset: smoke\nmodel:\n  offsets: '1'\ntrain:\n  epochs: 1\n")
    p = cli_inproc("train", "--experiment", str(exp), "--seed", "3", "--out", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr
    m = rows(tmp_path / "r" / "metrics.csv")
    assert {r["offsets"] for r in m} == {"{1}"} and {r["seed"] for r in m} == {"3"} and {r["experiment"] for r in m} == {"e"}
    (tmp_path / "bad.yaml").write_text("model:\n  offsets: [1\n")
    p = cli_inproc("train", "--experiment", str(tmp_path / "bad.yaml"))
    assert p.returncode == 2 and "not valid YAML" in p.stderr


@pytest.mark.slow
def test_torchrun_two_processes_write_the_same_results_once(tmp_path):
    """DistributedDataParallel on CPU (gloo): one results file, the single-process schema and rows."""
    single = tmp_path / "single"
    assert cli_inproc("train", "--preset", "smoke", "--out", str(single)).returncode == 0
    ddp = tmp_path / "ddp"
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                        "--master-port", str(free_port()),
                        "-m", "selfy_lab.cli", "train", "--preset", "smoke", "--out", str(ddp)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert sorted(x.name for x in ddp.iterdir()) == sorted(x.name for x in single.iterdir())
    a, b = rows(single / "metrics.csv"), rows(ddp / "metrics.csv")
    key = lambda r: (r["split"], r["metric"])  # noqa: E731
    assert sorted(map(key, a)) == sorted(map(key, b)) and len(b) == len({key(r) for r in b})
    # evaluation gathers every rank's share: the same number of validation clips is scored
    va, vb = ({r["metric"]: float(r["value"]) for r in x if r["split"] == "val"} for x in (a, b))
    assert 0 <= vb["top1"] <= 1 and set(va) == set(vb)


@pytest.mark.slow
@pytest.mark.parametrize("command", [["pretrain", "--method", "hcml"], ["train", "--aux", "hcml", "--block", "none"]],
                         ids=["pretrain", "aux"])
def test_torchrun_trains_the_contrastive_loss_in_two_processes(tmp_path, command):
    """The hierarchy's loss is part of the DDP module's output: both processes agree on every gradient."""
    out = tmp_path / "ddp"
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                        "127.0.0.1", "--master-port", str(free_port()),
                        "-m", "selfy_lab.cli", *command, "--preset", "smoke", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    train = {r["metric"]: float(r["value"]) for r in rows(out / "metrics.csv") if r["split"] == "train"}
    assert train["loss"] > 0 and ("aux_loss" in train) == (command[0] == "train")


@pytest.mark.slow
def test_a_compiled_run_trains_like_the_eager_one_under_its_own_key(tmp_path, monkeypatch):
    """--compile wraps the training step (dynamo + AOT autograd here, run eagerly: inductor's code generation
    would take minutes); the run trains as the eager one does, and its key differs only when it is set."""
    compile_, calls = torch.compile, []
    monkeypatch.setattr(torch, "compile", lambda m, **kw: calls.append(kw) or compile_(m, backend="aot_eager", **kw))
    run = resolve("smoke", overrides=dict(train=dict(epochs=1)))
    compiled = replace(run, train=replace(run.train, compile=True))
    assert compiled.run_hash != run.run_hash
    assert run.run_hash == replace(run, train=replace(run.train, compile=False)).run_hash
    eager_metrics = fit(run, tmp_path / "eager")
    assert calls == []
    compiled_metrics = fit(compiled, tmp_path / "compiled")
    assert calls == [{"dynamic": False}]
    eager_loss, compiled_loss = (float(rows(tmp_path / d / "history.csv")[0]["train_loss"]) for d in ("eager", "compiled"))
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-3)
    assert compiled_metrics["loss"] == pytest.approx(eager_metrics["loss"], rel=1e-2)


def test_deterministic_runs_use_deterministic_kernels_under_their_own_key(tmp_path):
    """--deterministic turns PyTorch's deterministic algorithms on for the time of the run (a CUDA run then
    repeats to the bit; tests/test_cuda.py checks that on a GPU) and restores the setting after it."""
    run = resolve("smoke", overrides=dict(train=dict(epochs=1)))
    det = replace(run, train=replace(run.train, deterministic=True))
    assert det.run_hash != run.run_hash
    assert run.run_hash == replace(run, train=replace(run.train, deterministic=False)).run_hash
    seen = []
    record = lambda e, **k: seen.append(torch.are_deterministic_algorithms_enabled()) if e == "epoch_start" else None
    fit(run, tmp_path / "plain", record)
    fit(det, tmp_path / "det", record)
    assert seen == [False, True] and not torch.are_deterministic_algorithms_enabled()
    plain, again = (rows(tmp_path / d / "history.csv")[0] for d in ("plain", "det"))
    assert float(again["train_loss"]) == pytest.approx(float(plain["train_loss"]), rel=1e-4)


def test_an_operation_without_a_deterministic_kernel_stops_with_one_line():
    from selfy_lab.core.runtime import deterministic_algorithms

    with pytest.raises(SelfyError, match=r"^--deterministic: put_ has no deterministic kernel.*without --deterministic$"):
        with deterministic_algorithms():
            torch.zeros(5).put_(torch.tensor([1, 1]), torch.tensor([1.0, 2.0]))  # no deterministic CPU kernel
    assert not torch.are_deterministic_algorithms_enabled()


def test_every_row_names_its_device_torch_and_threads(tmp_path):
    """Every row records what computed it: the device (``cpu`` or the GPU's name), the torch version and, on the
    CPU, the thread count (which sets a CPU run's round-off); the test split's rows sit beside validation's."""
    import torch

    from selfy_lab.store import results as R
    from selfy_lab.engine.train import run_rows

    run = resolve("smoke")
    history = [{"epoch": 1, "train_loss": 2.5, "train_top1": 0.1, "train_seconds": 3.0, "val_top1": 0.25}]
    other = replace(run, train=replace(run.train, seed=1))
    cpu_rows, gpu_rows = run_rows(run, history, {"top1": 0.2}), run_rows(other, history, device="NVIDIA H200")
    assert {(r["device"], r["threads"], r["torch"]) for r in cpu_rows} == {("cpu", torch.get_num_threads(),
                                                                           torch.__version__)}
    assert {(r["device"], r["threads"]) for r in gpu_rows} == {("NVIDIA H200", "")}
    assert {(r["split"], r["metric"]) for r in cpu_rows} >= {("val", "top1"), ("test", "top1"), ("train", "loss")}
    R.write_metrics(R.run_dir(tmp_path, run.run_hash), cpu_rows)
    R.write_metrics(R.run_dir(tmp_path, other.run_hash), gpu_rows)
    assert list(rows(R.run_dir(tmp_path, run.run_hash) / "metrics.csv")[0]) == list(RUN_COLUMNS)
    table = rows(R.collect_runs(tmp_path, [run.run_hash, other.run_hash]))
    assert {(r["seed"], r["device"]) for r in table} == {("0", "cpu"), ("1", "NVIDIA H200")}


@pytest.mark.slow
def test_a_diverged_run_stops_with_one_line_and_is_not_finished(tmp_path):
    """--lr 1e6: the loss becomes nan; the run stops before its epoch is saved, never recorded as finished."""
    from selfy_lab.core.errors import DivergedError
    from selfy_lab.store.results import is_finished

    run = resolve("smoke", overrides=dict(train=dict(epochs=2, lr=1e6)))
    with pytest.raises(DivergedError, match=r"epoch 1 .*lower --lr"):
        fit(run, tmp_path / "run")
    assert not is_finished(tmp_path / "run") and not (tmp_path / "run" / "metrics.csv").exists()
    p = cli_inproc("train", "--preset", "smoke", "--epochs", "1", "--lr", "1e6", "--out", tmp_path / "cli")
    assert one_line_error(p, "diverged; lower --lr")


def test_a_damaged_or_foreign_checkpoint_is_one_line_on_resume_and_on_load(tmp_path):
    """Zero bytes, a truncated file, another run's checkpoint or another architecture: one line, nothing deleted."""
    run = resolve("smoke", overrides=dict(train=dict(epochs=2)))
    d = tmp_path / "run"
    with pytest.raises(Stop):
        fit(run, d, stop_after_first_epoch)
    ckpt = d / "checkpoint.pt"
    good = ckpt.read_bytes()
    for content, msg in ((b"", "is empty"), (good[: len(good) // 2], "cannot read checkpoint")):
        ckpt.write_bytes(content)
        with pytest.raises(SelfyError, match=msg):
            fit(run, d)
        assert one_line_error(cli_inproc("eval", d), msg)
        assert ckpt.read_bytes() == content  # left for the user to look at
    other = resolve("smoke", overrides=dict(train=dict(epochs=2), model=dict(offsets="1")))
    with pytest.raises(Stop):
        fit(other, tmp_path / "other", stop_after_first_epoch)
    ckpt.write_bytes((tmp_path / "other" / "checkpoint.pt").read_bytes())  # another run's checkpoint left here
    with pytest.raises(SelfyError, match=f"belongs to run {other.run_hash}, not to run {run.run_hash}"):
        fit(run, d)
    ck = torch.load(tmp_path / "other" / "checkpoint.pt", weights_only=True)
    ck["config"] = torch.load(io_bytes(good), weights_only=True)["config"]  # the weights of another architecture
    torch.save(ck, ckpt)
    assert one_line_error(cli_inproc("eval", d), "holds another architecture")


def io_bytes(data: bytes):
    import io

    return io.BytesIO(data)
