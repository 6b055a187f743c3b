"""Sweeps through submitit's local executor (the Slurm path without Slurm): a preempted job is requeued and
resumes from its last epoch checkpoint, a killed one resumes when the sweep is run again, and runs.csv /
status.csv stay the one record."""
import time

import pytest
import torch
from helpers import cli_inproc, one_line_error, rows

from selfy_lab.studies import ablate as A
from selfy_lab.store import results as R
from selfy_lab.core.frozen import to_dict
from selfy_lab.config.presets import resolve
from selfy_lab.engine.train import fit

submitit = pytest.importorskip("submitit")  # in the test extra; the cluster path is optional for users

from selfy_lab.studies.cluster import ClusterOptions, TrainJob, make_executor  # noqa: E402

LONG = dict(model=dict(offsets="1"), train=dict(epochs=3), data=dict(synthetic_train=128))


def _wait_for_epoch(run_dir, epoch: int, timeout: float = 240) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        ck = run_dir / "checkpoint.pt"
        if ck.exists():
            try:
                if torch.load(ck, weights_only=True)["epoch"] >= epoch:
                    return
            except Exception:  # being written
                pass
        time.sleep(0.2)
    raise TimeoutError(f"no checkpoint of epoch {epoch} in {run_dir}")


def preempt(job) -> None:
    """Send the preemption signal to the job's task, as Slurm does (the local executor's controller process
    restarts a task that exits to be requeued)."""
    import os
    import signal

    pid = job._process.pid
    children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    assert children, "the job's task is not running"
    os.kill(int(children[0]), getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")))


def kill(job) -> None:
    """SIGKILL the job's task and its controller process."""
    import os
    import signal

    pid = job._process.pid
    for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
        os.kill(int(child), signal.SIGKILL)
    job._process.kill()


@pytest.mark.slow
def test_preempted_and_killed_jobs_resume_to_the_uninterrupted_result(tmp_path):
    run = resolve("smoke", overrides=LONG, experiment="ablate")
    reference = fit(run, tmp_path / "reference")

    out = tmp_path / "sweep"
    opts = ClusterOptions("local", poll_s=0.5)
    ex = make_executor(out, opts)
    run_dir = R.run_dir(out, run.run_hash)
    job = ex.submit(TrainJob(to_dict(run), str(run_dir)))
    _wait_for_epoch(run_dir, 1)
    preempt(job)  # what Slurm does on preemption / timeout: submitit calls TrainJob.checkpoint, requeues
    row = job.result()
    assert row["status"] == "done" and R.read_metrics(run_dir) == pytest.approx(reference)
    assert "this job is preempted" in (out / "submitit" / f"{job.job_id}_0_log.err").read_text()
    log = (out / "submitit" / f"{job.job_id}_0_log.out").read_text()
    assert "resumed after epoch" in log and "epoch 3/3" in log  # requeued, and went on from its checkpoint

    # the same run in a sweep of its own: the uninterrupted reference above is its reference too
    killed, out = run, tmp_path / "sweep-killed"
    ex = make_executor(out, opts)
    kdir = R.run_dir(out, killed.run_hash)
    job = ex.submit(TrainJob(to_dict(killed), str(kdir)))
    _wait_for_epoch(kdir, 1)
    kill(job)  # SIGKILL, as when a node dies: no chance to requeue
    with pytest.raises(Exception):
        job.result()
    assert not R.is_finished(kdir)
    plan = [A.PlannedRun(killed, A.describe(killed))]
    events = []
    status = A.run_sweep(plan, out, cluster=opts, on_event=lambda e, **k: events.append(e))  # the same sweep again
    assert [s["status"] for s in status] == ["done"] and "run_queued" in events
    assert R.read_metrics(kdir) == pytest.approx(reference)
    resumed = [j for j in rows(out / "submitit" / "jobs.csv") if j["run_id"] == killed.run_hash][0]["job_id"]
    assert "resumed after epoch" in (out / "submitit" / f"{resumed}_0_log.out").read_text()
    history = rows(kdir / "history.csv")
    assert [int(h["epoch"]) for h in history] == [1, 2, 3]
    assert {r["run_id"] for r in rows(out / "runs.csv")} == {killed.run_hash}


def test_cluster_flags_are_checked_at_the_edge(tmp_path):
    assert one_line_error(cli_inproc("ablate", "--preset", "smoke", "--executor", "kubernetes", "--out", tmp_path),
                          "unknown executor 'kubernetes'")
    assert one_line_error(cli_inproc("ablate", "--preset", "smoke", "--executor", "slurm", "--out", tmp_path),
                          "--executor slurm needs --partition")
    assert one_line_error(cli_inproc("ablate", "--preset", "smoke", "--executor", "slurm", "--partition", "gpu",
                                     "--time-min", "0", "--out", tmp_path), "--time-min must be at least 1")
