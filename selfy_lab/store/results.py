"""Where results live and what they hold: the only module that knows the layout of run and sweep
directories, every column set, and how result files are written (atomically). Pandas summaries of these
files live beside it in :mod:`selfy_lab.reports.tables`.

Layout::

    <run dir>/                a run; a sweep's runs are SWEEP/runs/<run_id>/, a single `train` run's
        config.yaml             default is runs/<experiment or "train">/<run_id>/
        checkpoint.pt         the resolved config it ran with; the last epoch's weights (never committed)
        history.csv           one row per finished epoch
        metrics.csv           tidy final rows; written last: its presence is what "finished" means
        error.txt             the traceback of a failed sweep run
        source.diff           the package's uncommitted changes, for a run written with --allow-dirty
        eval.csv              rows of `selfy-lab eval` (one set per test protocol)
    <sweep dir>/
        sweep.yaml            what the sweep planned: base config, axes, offset sets, seeds, runs
        runs/<run_id>/        one run directory per variant x seed (or a link to a store shared by sweeps)
        runs.csv              tidy rows of every finished run of the sweep (rebuilt from the run dirs)
        status.csv            one row per planned run: done / failed (with the error) / pending
        figures/              accuracy vs temporal range
        robustness/           robustness.csv, robustness_summary.csv, figures/, examples/

``run_id`` is the run's key, :attr:`selfy_lab.config.run.RunConfig.run_hash`: a hash of every config field
that changes the result, so a re-run finds its finished runs whatever their experiment name, preset name
or loader settings.

Tidy (long) rows, one per run x split x metric (x corruption x severity): :func:`result_rows` builds every
one of them (training, `eval`, robustness) with the columns of :func:`row_columns`. Files are replaced
atomically (a temporary file in the same directory, then ``os.replace``), so a kill at any moment leaves
the old or the new file, never a torn one. Values are raw floats; formatting happens where they are shown.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Iterable

import yaml
from safetensors import SafetensorError, safe_open

from ..config.run import RunConfig
from ..core.errors import SelfyError
from ..core.frozen import from_dict, identity, to_dict
from ..core.textfiles import (
    atomic_write_text, check_own_table, claim_folder, csv_value, ensure_writable, load_yaml, read_csv, write_csv,
)
from ..core.version import __version__, git_revision, source_diff

# ---- layout ----
CONFIG, CHECKPOINT, HISTORY, METRICS, ERROR, EVAL, SOURCE_DIFF = (
    "config.yaml", "checkpoint.pt", "history.csv", "metrics.csv", "error.txt", "eval.csv", "source.diff")
# an exported model (selfy-lab export): its weights, and the run's config.yaml and a model card beside them
WEIGHTS, MODEL_CARD, HUB_CONFIG = "model.safetensors", "README.md", "config.json"
SWEEP_RECORD, RUNS_DIR, RUNS_TABLE, STATUS_TABLE, FIGURES = "sweep.yaml", "runs", "runs.csv", "status.csv", "figures"
ROBUSTNESS_DIR, ROBUSTNESS_TABLE, ROBUSTNESS_SUMMARY = "robustness", "robustness.csv", "robustness_summary.csv"
TENSORBOARD_DIR = "tensorboard"  # event files of --tensorboard, inside a run directory
# what a sweep writes beside runs.csv: a block comparison; a recipe (tuning) sweep's cells, best recipes, curves
COMPARISON_TABLE, RECIPE_CELLS, BEST_RECIPES, RECIPE_CURVES = (
    "comparison.csv", "recipes.csv", "best_recipes.csv", "recipe_curves.csv")
BENCH_TABLE = "bench.csv"  # selfy-lab bench --out
CLUSTER_JOBS = ("submitit", "jobs.csv")  # a sweep's Slurm / local jobs, OUT/submitit/jobs.csv


# what marks a folder as one a command wrote (selfy_lab.core.textfiles.claim_folder): its --out may be such a folder,
# new, or empty, never a folder of the user's
RUN_OWNED = (CONFIG, CHECKPOINT, HISTORY, METRICS)
SWEEP_OWNED = (SWEEP_RECORD, RUNS_DIR, RUNS_TABLE, STATUS_TABLE)
ROBUSTNESS_OWNED = (ROBUSTNESS_TABLE, ROBUSTNESS_SUMMARY)
BENCH_OWNED = (BENCH_TABLE,)
CAM_OWNED, STSS_OWNED = ("cam_*.png",), ("stss_*.png",)  # the figures of `selfy-lab cam` and `selfy-lab stss`

LOCK = ".lock"  # held (flock) by the process that writes a sweep folder or trains a run directory


@contextlib.contextmanager
def exclusive(path: str | Path, what: str):
    """Hold ``PATH/.lock`` for the time of the block: a second process that asks for the same folder stops with
    one line naming the holder. The operating system releases the lock when its holder dies (kill -9 too)."""
    import fcntl  # optional: POSIX only

    try:
        f = open(Path(path) / LOCK, "a+")
    except OSError as e:
        raise SelfyError(f"cannot create {Path(path) / LOCK} ({e.strerror or type(e).__name__}): free some space "
                         f"or choose another folder; nothing was started") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise SelfyError(f"{what} {path} is in use by {holder}: wait for it to end, or choose another folder") from None
    try:
        try:  # who holds it, for the message of a second process; the lock holds without it (a full disk)
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
            f.flush()
        except OSError:
            pass
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def run_dir(sweep_dir: str | Path, run_id: str) -> Path:
    """The directory of run ``run_id`` inside a sweep."""
    return Path(sweep_dir) / RUNS_DIR / run_id


def default_run_dir(run: "RunConfig") -> Path:
    """Where `selfy-lab train` puts a run without ``--out``."""
    return Path("runs") / (run.experiment or "train") / run.run_hash


# columns a run's final rows may lack: written before the column existed (a variant column then means its
# default; the runtime provenance was not recorded)
OPTIONAL_COLUMNS = ("options", "torch", "device", "threads")


def is_finished(path: str | Path, splits: Iterable[str] = ()) -> bool:
    """A run is finished once its final rows are written (the last thing training does) and read back whole,
    with rows of every split in ``splits`` (the splits its dataset is scored on)."""
    return metrics_problem(path, splits) is None


def metrics_problem(path: str | Path, splits: Iterable[str] = ()) -> str | None:
    """Why a run's final rows cannot count as a finished run (missing, empty, a column or a value lost, a split
    it is scored on missing), or None."""
    f = Path(path) / METRICS
    if not f.is_file():
        return "it has no metrics.csv"
    try:
        table = read_csv(f)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        return f"its metrics.csv cannot be read ({e})"
    return table_problem(table, splits)


def table_problem(table: list[dict[str, str]], splits: Iterable[str] = ()) -> str | None:
    """Why the rows read from a metrics.csv are not a finished run's (none, a column or a value lost, no rows of
    one of ``splits``), or None."""
    if not table:
        return "its metrics.csv holds no rows"
    missing = [c for c in RUN_COLUMNS if c not in table[0] and c not in OPTIONAL_COLUMNS]
    if missing:
        return f"its metrics.csv lacks the column(s) {', '.join(missing)}"
    for r in table:
        try:
            float(r["value"])
        except (TypeError, ValueError):
            return f"its metrics.csv holds a value that is not a number ({r['value']!r})"
    have = {r.get("split") for r in table}
    lacking = [s for s in splits if s not in have]
    if lacking:
        return f"its metrics.csv has no {' or '.join(lacking)} rows (written before that split was scored)"
    return None


def is_exported(path: str | Path) -> bool:
    """Is ``path`` a folder that ``selfy-lab export`` wrote (weights and config)?"""
    path = Path(path)
    return (path / WEIGHTS).is_file() and (path / CONFIG).is_file()


def unfinished_note(path: str | Path) -> str:
    """For a run folder (or its checkpoint) that has not finished: one line saying so and which weights are
    used (its last checkpoint, the epochs it holds); empty for a finished run and for an export."""
    path = Path(path)
    if is_exported(path):
        return ""
    folder = run_dir_of(path)
    problem = metrics_problem(folder)
    if problem is None:
        return ""
    return (f"{folder} has not finished ({problem}): using its last checkpoint, {_epochs_done(folder)}; "
            "these numbers are not the run's")


def weights_tag(path: str | Path) -> str:
    """Which weights of a run a result came from: ``final`` (a finished run, or an export), else ``after N of M
    epochs`` (an unfinished run's last checkpoint). Cached results are keyed by it, so the cells of an unfinished
    run are evaluated again once it has trained further or finished."""
    path = Path(path)
    if is_exported(path) or metrics_problem(run_dir_of(path)) is None:
        return "final"
    return _epochs_done(run_dir_of(path))


def _epochs_done(folder: Path) -> str:
    """``after N of M epochs``: how far an unfinished run's last checkpoint trained."""
    epochs = len(read_csv(folder / HISTORY))
    try:
        total = read_run_config(folder).train.epochs
    except SelfyError:
        total = "?"
    return f"after {epochs} of {total} epochs"


def checkpoint_path(path: str | Path) -> Path:
    """The checkpoint of a run directory, or ``path`` itself when it names a checkpoint file."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() or not path.suffix else path


def read_exported(path: str | Path) -> tuple["RunConfig", dict]:
    """(run config, state dict) of an exported folder; a damaged one is one line."""
    path = Path(path)
    run = read_run_config(path)
    try:
        from safetensors.torch import load_file  # deferred: torch (see result_rows)

        state = load_file(str(path / WEIGHTS))
        with safe_open(str(path / WEIGHTS), "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise SelfyError(f"cannot read {path / WEIGHTS} ({type(e).__name__}: {str(e)[:120]})") from None
    if meta.get("run_hash") not in (None, run.run_hash):
        raise SelfyError(f"{path / CONFIG} is not the configuration {WEIGHTS} was exported with (run "
                         f"{meta['run_hash']}, the config says {run.run_hash}): restore the exported config.yaml")
    return run, state


def config_difference(a: "RunConfig", b: "RunConfig") -> list[str]:
    """The fields that change a run's result (its identity) and differ between two configurations, as
    ``section.field: a -> b`` (values cut to 40 characters)."""
    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    fa, fb = flat(identity(a)), flat(identity(b))
    cut = lambda v: (str(v)[:37] + "...") if len(str(v)) > 40 else str(v)  # noqa: E731
    return [f"{k}: {cut(fa.get(k))} -> {cut(fb.get(k))}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def run_dir_of(path: str | Path) -> Path:
    """The run directory of a run directory or of a checkpoint file inside one."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def link_runs(sweep_dir: str | Path, store: str | Path) -> Path:
    """Make SWEEP/runs a link to ``store``, a run directory shared by several sweeps (a variant that several
    sweeps plan is then trained once). An existing SWEEP/runs must already be that link."""
    runs, store = Path(sweep_dir) / RUNS_DIR, Path(store)
    store.mkdir(parents=True, exist_ok=True)
    if runs.is_symlink() and runs.resolve() == store.resolve():
        return runs
    if runs.exists() or runs.is_symlink():
        raise SelfyError(f"{runs} already exists and is not a link to {store}: use another --out, or move its runs "
                         f"into {store} and remove it")
    runs.parent.mkdir(parents=True, exist_ok=True)
    runs.symlink_to(os.path.relpath(store.resolve(), runs.parent.resolve()), target_is_directory=True)
    return runs


def sweep_run_dirs(sweep_dir: str | Path) -> list[Path]:
    """The finished runs of a sweep that have their checkpoint (what robustness and CAM can load): those its
    record plans (its runs directory may be shared with other sweeps), else every run found there."""
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / RUNS_DIR).is_dir():
        raise SelfyError(f"{sweep_dir} is not a sweep directory (no runs/): pass the --out of a selfy-lab ablate run")
    planned = [r["run_id"] for r in read_sweep_record(sweep_dir).get("runs") or [] if isinstance(r, dict)]
    dirs = [run_dir(sweep_dir, i) for i in planned] if planned else list((sweep_dir / RUNS_DIR).iterdir())
    finished = sorted(d for d in dirs if is_finished(d))
    loadable = [d for d in finished if checkpoint_path(d).is_file()]
    if not loadable:
        why = (f"its {len(finished)} finished runs have no checkpoint (checkpoints are local, never committed): "
               f"re-run its selfy-lab ablate command to train them here" if finished else "it has no finished runs")
        raise SelfyError(f"{sweep_dir}: {why}")
    return loadable


def find_sweeps(root: str | Path) -> list[Path]:
    """Every sweep directory (one holding a sweep record) under ``root``."""
    return sorted(f.parent for f in Path(root).glob(f"**/{SWEEP_RECORD}"))


def find_checkpoints(root: str | Path) -> list[Path]:
    """Run directories with a checkpoint under ``root`` (checkpoints are local: never committed)."""
    return sorted(p.parent for p in Path(root).glob(f"**/{RUNS_DIR}/*/{CHECKPOINT}"))


def robustness_dir(sweep_dir: str | Path) -> Path:
    return Path(sweep_dir) / ROBUSTNESS_DIR


def figures_dir(out: str | Path) -> Path:
    return Path(out) / FIGURES


# ---- run configs ----

def write_run_config(path: str | Path, run: "RunConfig") -> None:
    atomic_write_text(Path(path) / CONFIG, yaml.safe_dump(to_dict(run), sort_keys=False))


def read_run_config(path: str | Path) -> "RunConfig":
    """The resolved config a run directory holds. A file read before and unchanged since (the same file, size
    and times) is not parsed again: the results README's tables read each of hundreds of runs several
    times, and the strict YAML parser takes most of that time. A RunConfig is frozen, so sharing it is safe."""
    f = Path(path) / CONFIG
    try:
        st = f.stat()  # a rewrite (atomic: a new inode) or an edit in place (new times) is read again
        return _parsed_run_config(str(f), st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as e:
        raise SelfyError(f"cannot read {f}: {str(e)[:200]}") from None


@functools.lru_cache(maxsize=4096)
def _parsed_run_config(file: str, inode: int, mtime_ns: int, ctime_ns: int, size: int) -> "RunConfig":
    return from_dict(RunConfig, load_yaml(Path(file).read_text(), file))


# ---- schema ----
VARIANT_FIELDS = ("backbone", "frames", "block", "offsets", "window", "extractor", "integrator", "similarity",
                  "fusion", "position", "options", "hierarchy", "aux", "init", "labels")
# where a row came from: the package version and source revision, when, and what ran it (torch, the device --
# "cpu" or the GPU's name -- and on the CPU the thread count, which sets a CPU run's round-off)
PROVENANCE = ("version", "git_rev", "time", "torch", "device", "threads")
EVAL_KEYS = ("test_clips", "test_crops")
# the test protocol of rows written before it was recorded (1 clip, centre crop): readers and appenders fill it
PROTOCOL_DEFAULTS = {"test_clips": "1", "test_crops": "1"}
ROBUSTNESS_KEYS = ("kind", "severity", "corrupted_frames", *EVAL_KEYS)


def row_columns(keys: Iterable[str] = ()) -> tuple[str, ...]:
    """Columns of tidy result rows; ``keys`` are what else tells rows of one run apart (a corruption, a
    test protocol)."""
    return ("experiment", "run_id", *VARIANT_FIELDS, "gflops", "params_m", "seed", *keys, "split", "metric", "value",
            *PROVENANCE)


RUN_COLUMNS = row_columns()
EVAL_COLUMNS = row_columns(EVAL_KEYS)
ROBUSTNESS_COLUMNS = row_columns((*ROBUSTNESS_KEYS, "weights"))
STATUS_COLUMNS = ("run_id", *VARIANT_FIELDS, "seed", "status", "error", "seconds")
ROBUSTNESS_SUMMARY_COLUMNS = ("run_id", *VARIANT_FIELDS, "seed", "kind", "corrupted_frames", *EVAL_KEYS, "split",
                              "metric", "value")


def provenance(device: str = "cpu") -> dict[str, Any]:
    """The provenance columns of rows computed now on ``device`` (``cpu`` or a GPU's name)."""
    import torch  # deferred: as in result_rows

    device = device or "cpu"
    return {"version": __version__, "git_rev": git_revision(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "torch": torch.__version__, "device": device,
            "threads": torch.get_num_threads() if device == "cpu" else ""}


ALLOW_DIRTY_ENV = "SELFY_LAB_ALLOW_DIRTY"  # set (1) by --allow-dirty; inherited by a sweep's worker processes


def allow_dirty_source(allow: bool = True) -> None:
    """Let this process and the processes it starts write results from uncommitted package code (each run
    then stores the diff as source.diff)."""
    if allow:
        os.environ[ALLOW_DIRTY_ENV] = "1"


def check_source(run_dir: str | Path | None = None) -> str:
    """The source revision results written now will carry. Package code with uncommitted changes stops with
    one line unless :func:`allow_dirty_source` was called; then the diff is stored in ``run_dir`` (when given)
    as source.diff, so that the run's code can be rebuilt."""
    rev = git_revision()
    if not rev.endswith("+dirty"):
        return rev
    if os.environ.get(ALLOW_DIRTY_ENV, "") not in ("1", "true", "yes"):
        raise SelfyError(f"the package's code has uncommitted changes (revision {rev}), so no commit would hold "
                         "the code of these results: commit them first, or pass --allow-dirty to write anyway "
                         "(each run then stores the diff as source.diff)")
    if run_dir is not None:
        atomic_write_text(Path(run_dir) / SOURCE_DIFF, source_diff())
    return rev


def result_rows(run: "RunConfig", metrics: dict[str, float], split: str = "val", experiment: str | None = None,
                keys: dict[str, Any] | None = None, device: str = "cpu") -> list[dict[str, Any]]:
    """The tidy rows of one run's ``metrics`` on ``split``, computed on ``device`` (``cpu`` or a GPU's name);
    ``keys`` (e.g. kind / severity) tell them apart from the run's other rows. Every result file's rows are
    built here."""
    # deferred: torch, which the results store never loads by itself: notebooks, reports and the command
    # line's checks read it without torch; rows are written by the engine, which has it loaded
    from ..models.flops import model_cost

    cost = model_cost(run.model, run.data.size)
    base = {"experiment": experiment or run.experiment or "train", "run_id": run.run_hash, **run.variant(),
            "gflops": cost["gflops"], "params_m": cost["params_m"], "seed": run.train.seed, **(keys or {}),
            "split": split}
    prov = provenance(device)
    return [{**base, "metric": m, "value": float(v), **prov} for m, v in metrics.items()]


def status_row(run: "RunConfig", status: str, error: str = "", seconds: float | str = "") -> dict[str, Any]:
    return {"run_id": run.run_hash, **run.variant(), "seed": run.train.seed, "status": status, "error": error,
            "seconds": seconds}


# ---- writing and reading ----

def append_rows(path: str | Path, rows: Iterable[dict[str, Any]], key: Iterable[str], columns: Iterable[str],
                defaults: dict[str, str] | None = None) -> Path:
    """Append rows to a CSV atomically. Rows whose ``key`` columns match an existing row replace it,
    so re-running a finished piece of work never duplicates rows; ``defaults`` fill key columns that rows
    lack (old files, callers that leave out a default protocol field)."""
    key, columns = tuple(key), tuple(columns)
    check_own_table(path, columns)  # a user's file at that path is never read as rows nor replaced

    def filled(r: dict) -> dict:
        return {**r, **{k: v for k, v in (defaults or {}).items() if not r.get(k)}}

    new = [filled({k: (csv_value(v) if isinstance(v, float) else str(v)) for k, v in r.items()}) for r in rows]
    fresh = {tuple(r.get(k, "") for k in key) for r in new}
    old = [filled(r) for r in read_csv(path)]
    old = [r for r in old if tuple(r.get(k, "") for k in key) not in fresh]
    return write_csv(path, old + new, columns)


def write_history(path: str | Path, history: list[dict[str, Any]]) -> Path:
    return write_csv(Path(path) / HISTORY, history)


def write_metrics(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """The run's final rows: from here on the run counts as finished."""
    return write_csv(Path(path) / METRICS, rows, RUN_COLUMNS)


def read_metrics(path: str | Path, split: str = "val") -> dict[str, float]:
    return {r["metric"]: float(r["value"]) for r in read_csv(Path(path) / METRICS) if r["split"] == split}


def write_error(path: str | Path, text: str) -> None:
    atomic_write_text(Path(path) / ERROR, text)


def append_eval(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Rows of `selfy-lab eval`, one set per (run, test protocol); ``path`` is a CSV file."""
    return append_rows(path, rows, ("run_id", *EVAL_KEYS, "split", "metric"), EVAL_COLUMNS, PROTOCOL_DEFAULTS)


def eval_protocol(clips: int, crops: int) -> str:
    """The test protocol's name in file names: ``2clips-3crops``."""
    return f"{clips}clip{'s' if clips > 1 else ''}-{crops}crop{'s' if crops > 1 else ''}"


def write_confusion(directory: str | Path, protocol: str, conf, class_names: list[str]) -> tuple[Path, Path]:
    """confusion-PROTOCOL.csv (tidy: one row per non-empty cell) and per_class-PROTOCOL.csv in ``directory``."""
    from ..core.metrics import per_class_accuracy  # deferred: torch (see result_rows)

    names = list(class_names)
    cells = [{"true": i, "true_class": names[i], "predicted": j, "predicted_class": names[j], "count": int(conf[i, j])}
             for i in range(len(names)) for j in range(len(names)) if conf[i, j]]
    acc = per_class_accuracy(conf)
    per = [{"label": i, "class": names[i], "clips": int(conf[i].sum()), "top1": float(acc[i])} for i in range(len(names))]
    d = ensure_writable(directory)
    return (write_csv(d / f"confusion-{protocol}.csv", cells, ("true", "true_class", "predicted", "predicted_class", "count")),
            write_csv(d / f"per_class-{protocol}.csv", per, ("label", "class", "clips", "top1")))


def write_sweep_record(sweep_dir: str | Path, record: dict[str, Any]) -> None:
    atomic_write_text(Path(sweep_dir) / SWEEP_RECORD, yaml.safe_dump(record, sort_keys=False))


def recorded_report(sweep_dir: str | Path) -> str:
    """What a sweep reports, as its record says (``report``, one of :data:`selfy_lab.config.vocabulary.REPORTS`,
    declared when it was planned); ``none`` for a record written before sweeps declared it."""
    return str(read_sweep_record(sweep_dir).get("report") or "none")


def recorded_paper_table(sweep_dir: str | Path) -> str:
    """The paper table a sweep reproduces, as its record says (``paper_table``, declared when it was planned:
    :func:`selfy_lab.studies.ablate.planned_paper_table`); "" for none, or for a record that names none."""
    return str(read_sweep_record(sweep_dir).get("paper_table") or "")


# a table of the results README: <!-- table KIND ARGS --> ... <!-- end table --> (selfy_lab.reports.readme_tables)
README_TABLE = re.compile(r"(<!-- table (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)
RESULTS_README = "README.md"


def readme_offsets_sweep(root: str | Path = "results") -> Path:
    """The offsets sweep that ``ROOT/README.md`` names for the paper's Table 3a (its first
    ``<!-- table paper 3a-... SWEEP -->`` marker): the models `cam` and `corrupt` take when not told."""
    readme = Path(root) / RESULTS_README
    if not readme.is_file():
        raise SelfyError(f"{readme} does not exist, so it names no offsets sweep: pass --sweep DIR or --checkpoint "
                         "PATH (or --results-root, the folder whose README.md names one)")
    for m in README_TABLE.finditer(readme.read_text(encoding="utf-8", errors="replace")):
        kind, *args = m.group("spec").split()
        if kind == "paper" and len(args) > 1 and args[0].startswith("3a"):
            sweep = Path(root) / args[1].split("+")[0]
            if not (sweep / SWEEP_RECORD).is_file():
                raise SelfyError(f"{readme} names {sweep} for Table 3a, which holds no sweep: run 'selfy-lab ablate "
                                 f"--offsets -3..3 --out {sweep}', or pass --sweep DIR / --checkpoint PATH")
            return sweep
    raise SelfyError(f"{readme} names no offsets sweep (a '<!-- table paper 3a-tsn SWEEP -->' marker): pass "
                     f"--sweep DIR or --checkpoint PATH")


def read_sweep_record(sweep_dir: str | Path) -> dict[str, Any]:
    try:
        rec = yaml.safe_load((Path(sweep_dir) / SWEEP_RECORD).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return rec if isinstance(rec, dict) else {}


def write_status(sweep_dir: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    return write_csv(Path(sweep_dir) / STATUS_TABLE, rows, STATUS_COLUMNS)


def read_status(sweep_dir: str | Path) -> list[dict[str, str]]:
    return read_csv(Path(sweep_dir) / STATUS_TABLE)


def collect_runs(sweep_dir: str | Path, run_ids: Iterable[str], experiment: str | None = None) -> Path:
    """Rebuild SWEEP/runs.csv from the finished run directories of these runs (atomic, no duplicates). Rows
    are labelled with the sweep's ``experiment`` when given: a run trained for another sweep of a shared
    store is also a row of this one."""
    rows: list[dict[str, str]] = []
    for run_id in run_ids:
        try:
            table = read_csv(run_dir(sweep_dir, run_id) / METRICS)  # read once, checked from what was read
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        if table_problem(table) is None:
            rows += [{**r, "experiment": experiment} if experiment else r for r in table]
    return write_csv(Path(sweep_dir) / RUNS_TABLE, rows, RUN_COLUMNS)


def robustness_cells(out: str | Path) -> set[tuple[str, ...]]:
    """(run_id, kind, severity, corrupted_frames, test_clips, test_crops, split, weights) of every robustness cell
    already evaluated in ``out`` (rows from before the test protocol was a key are the 1-clip, 1-crop test; rows
    from before the weights were recorded are a finished run's, or an unfinished run's at an unknown epoch,
    which never counts as done)."""
    return {(r["run_id"], r["kind"], r["severity"], r["corrupted_frames"],
             *(r.get(k) or PROTOCOL_DEFAULTS[k] for k in EVAL_KEYS), r.get("split") or "val",
             r.get("weights") or ("final" if r.get("experiment") == "robustness" else "unknown"))
            for r in read_csv(Path(out) / ROBUSTNESS_TABLE)}


def append_robustness(out: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Robustness rows: a cell is its run, corruption, test protocol and split (val and test rows of one cell
    both stay; a cell evaluated again from other weights of its run replaces the earlier rows)."""
    return append_rows(Path(out) / ROBUSTNESS_TABLE, rows, ("run_id", *ROBUSTNESS_KEYS, "split", "metric"),
                       ROBUSTNESS_COLUMNS, PROTOCOL_DEFAULTS)


def read_robustness(out: str | Path) -> list[dict[str, str]]:
    return read_csv(Path(out) / ROBUSTNESS_TABLE)


def write_robustness_summary(out: str | Path, rows: list[dict[str, Any]]) -> Path:
    return write_csv(Path(out) / ROBUSTNESS_SUMMARY, rows, ROBUSTNESS_SUMMARY_COLUMNS)
