"""Sweeps on a cluster: every planned run is a submitit job (Slurm, or local processes for testing), requeued
on preemption or timeout, resuming from its last epoch checkpoint.

submitit is an optional dependency (``pip install -e '.[cluster]'``). The sweep's process submits the jobs,
records them in ``OUT/submitit/jobs.csv`` (run id -> job id) and waits, writing ``runs.csv`` and
``status.csv`` as jobs finish, exactly as a local sweep does. Re-running the same command after the sweep's
process was stopped re-attaches to the jobs still queued or running and submits only the runs that are
neither finished nor under way (Slurm jobs; a local job of an earlier invocation that is still running stops the
sweep with one line instead of being doubled). A job asked for several GPUs runs one process per GPU with
DistributedDataParallel (submitit's tasks, the torchrun environment exported).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config.run import RunConfig
from ..core.errors import SelfyError, user_message
from ..core.frozen import from_dict, to_dict
from ..core.runtime import thread_note
from ..store import results as R
from .runner import PlannedRun, describe, execute_run

EXECUTORS = ("process", "local", "slurm")  # process: this machine's worker processes (ablate --jobs)
MAX_REQUEUES = 100  # timeouts after which a job is not requeued again (submitit's default is 3)
LIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED", "UNKNOWN")


@dataclass(frozen=True)
class ClusterOptions:
    executor: str = "local"
    partition: str = ""
    gpus_per_run: int = 0
    time_min: int = 60 * 24
    cpus_per_gpu: int = 8
    poll_s: float = 5.0

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise SelfyError(f"unknown executor '{self.executor}': choose from {', '.join(EXECUTORS)}")
        if self.executor == "slurm" and not self.partition:
            raise SelfyError("--executor slurm needs --partition")


def _submitit():
    try:  # optional: submitit (the [cluster] extra)
        import submitit
    except ImportError:
        raise SelfyError("--executor local / slurm needs submitit: pip install submitit") from None
    return submitit


class TrainJob:
    """One run as a job: ``fit`` in its run directory (which resumes from the last checkpoint); on
    preemption or timeout submitit calls :meth:`checkpoint`, which requeues the same job."""

    def __init__(self, run: dict[str, Any], run_dir: str, *, device: str = "auto", distributed: bool = False):
        self.run, self.run_dir, self.device, self.distributed = run, run_dir, device, distributed

    def __call__(self) -> dict:
        if self.distributed:  # one task per GPU: the environment torchrun would give (RANK, WORLD_SIZE, ...)
            _submitit().helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        run = from_dict(RunConfig, self.run)
        return execute_run(PlannedRun(run, describe(run)), Path(self.run_dir).parent.parent, self.device, _log)

    def checkpoint(self, *args, **kwargs):  # submitit's hook: requeue; the run resumes from its checkpoint
        return _submitit().helpers.DelayedSubmission(TrainJob(self.run, self.run_dir, device=self.device,
                                                              distributed=self.distributed))


def _log(event: str, **info) -> None:
    """A job's progress in its log (OUT/submitit/<job>_<task>_log.out)."""
    if event == "resume":
        print(f"resumed after epoch {info['epoch']}{thread_note(info)}", flush=True)
    elif event == "epoch_end":
        val = info.get("metrics") or {}
        print(f"epoch {info['epoch'] + 1}/{info['epochs']}: train loss {info['train_loss']:.4f}"
              + (f", val top-1 {val['top1']:.4f}" if "top1" in val else ""), flush=True)
    elif event == "finished":
        print("already finished", flush=True)


def make_executor(out: Path, opts: ClusterOptions):
    """submitit's executor for ``opts`` writing its logs under OUT/submitit."""
    submitit = _submitit()
    folder = Path(out) / "submitit"
    if opts.executor == "local":
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=MAX_REQUEUES)
        ex.update_parameters(timeout_min=opts.time_min, gpus_per_node=opts.gpus_per_run,
                             tasks_per_node=max(1, opts.gpus_per_run))
        return ex
    if opts.executor == "slurm":
        if not opts.partition:
            raise SelfyError("--executor slurm needs --partition")
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=MAX_REQUEUES)
        gpus = opts.gpus_per_run
        ex.update_parameters(slurm_partition=opts.partition, timeout_min=opts.time_min, nodes=1,
                             gpus_per_node=gpus, tasks_per_node=max(1, gpus),
                             cpus_per_task=opts.cpus_per_gpu,
                             slurm_signal_delay_s=120, name="selfy-lab")
        return ex
    raise SelfyError(f"unknown executor '{opts.executor}': choose from {', '.join(EXECUTORS)}")


def _alive(pid: str) -> bool:
    """Is the local job (its id is its controller's process id) still running?"""
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    try:  # a killed process not yet reaped by its parent is a zombie: gone for our purpose
        return Path(f"/proc/{int(pid)}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _job(opts: ClusterOptions, out: Path, job_id: str):
    submitit = _submitit()
    folder = Path(out) / "submitit"
    return submitit.LocalJob(folder, job_id) if opts.executor == "local" else submitit.SlurmJob(folder, job_id)


def run_jobs(todo: list, out: Path, opts: ClusterOptions, device: str, finished: Callable[[dict, Any], None],
             on_event: Callable[..., None]) -> None:
    """Submit (or re-attach to) one job per planned run of ``todo`` and wait for them all; ``finished`` gets
    each run's status row as its job ends."""
    out = Path(out)
    record = out.joinpath(*R.CLUSTER_JOBS)
    known = {r["run_id"]: r["job_id"] for r in R.read_csv(record)} if record.is_file() else {}
    ex = make_executor(out, opts)
    jobs = {}
    for pr in todo:
        old = known.get(pr.run_id)
        if old and opts.executor == "slurm":  # a job of an earlier invocation still queued or running: wait for it
            job = _job(opts, out, old)
            if job.state in LIVE_STATES:
                jobs[pr.run_id] = (pr, job)
                on_event("run_queued", run=pr)
                continue
        if old and opts.executor == "local" and _alive(old):  # local jobs cannot be re-attached: do not double them
            raise SelfyError(f"run {pr.run_id} is still training in local job {old} of an earlier invocation: "
                             f"wait for it or stop it (kill {old}), then re-run")
        job = ex.submit(TrainJob(to_dict(pr.run), str(R.run_dir(out, pr.run_id)),
                                 device="cuda" if opts.gpus_per_run else device, distributed=opts.gpus_per_run > 1))
        jobs[pr.run_id] = (pr, job)
        known[pr.run_id] = str(job.job_id)
        R.write_csv(record, [{"run_id": k, "job_id": v} for k, v in known.items()], ("run_id", "job_id"))
        on_event("run_queued", run=pr)
    while jobs:
        for run_id, (pr, job) in list(jobs.items()):
            if not job.done():
                continue
            del jobs[run_id]
            try:
                row = job.result()
                row = row[0] if isinstance(row, list) else row  # several tasks: rank 0's row
            except Exception as e:  # the job failed or was killed: recorded, the sweep goes on
                row = R.status_row(pr.run, "failed", f"job {job.job_id}: {user_message(e)[:200]}")
            finished(row, pr)
        if jobs:
            time.sleep(opts.poll_s)
