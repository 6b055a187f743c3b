"""Re-key committed results after the run key changed to leave out fields that do not change the result
(data.workers, data.check, train.eval_every, the preset and experiment names), and bring their columns to
the current schema: the provenance column ``config_hash`` is dropped (``run_id`` is the one config key) and
robustness rows gain the run's ``gflops`` / ``params_m``. Values are untouched.

Run once from the repository root: ``python tools/migrate_run_keys.py [results]``. Idempotent.
"""
from __future__ import annotations

import sys
from pathlib import Path

from selfy_lab import results as R
from selfy_lab.flops import model_cost


def rekey_sweep(sweep: Path) -> dict[str, str]:
    """Rename the run directories of one sweep to their current keys; returns old -> new."""
    mapping = {}
    runs = sweep / R.RUNS_DIR
    for d in sorted(p for p in runs.iterdir() if (p / R.CONFIG).is_file()):
        new = R.read_run_config(d).run_hash
        mapping[d.name] = new
        if new != d.name:
            d.rename(runs / new)
    return mapping


def rewrite(path: Path, mapping: dict[str, str], columns, costs: dict[str, dict] | None = None) -> None:
    rows = R.read_csv(path)
    if not rows:
        return
    for r in rows:
        r["run_id"] = mapping.get(r["run_id"], r["run_id"])
        r.pop("config_hash", None)
        if costs is not None and "gflops" not in r:
            r.update(gflops=costs[r["run_id"]]["gflops"], params_m=costs[r["run_id"]]["params_m"])
    R.write_csv(path, rows, columns)


def migrate(root: Path) -> None:
    for sweep in R.find_sweeps(root):
        mapping = rekey_sweep(sweep)
        costs = {}
        for d in (sweep / R.RUNS_DIR).iterdir():
            run = R.read_run_config(d)
            costs[run.run_hash] = model_cost(run.model, run.data.size)
            rewrite(d / R.METRICS, mapping, R.RUN_COLUMNS)
        rewrite(sweep / R.RUNS_TABLE, mapping, R.RUN_COLUMNS)
        rewrite(sweep / R.STATUS_TABLE, mapping, R.STATUS_COLUMNS)
        rob = R.robustness_dir(sweep)
        rewrite(rob / R.ROBUSTNESS_TABLE, mapping, R.ROBUSTNESS_COLUMNS, costs)
        rewrite(rob / R.ROBUSTNESS_SUMMARY, mapping, R.ROBUSTNESS_SUMMARY_COLUMNS)
        record = R.read_sweep_record(sweep)
        for r in record.get("runs") or []:
            r["run_id"] = mapping.get(r["run_id"], r["run_id"])
        R.write_sweep_record(sweep, record)
        changed = sum(old != new for old, new in mapping.items())
        print(f"{sweep}: {len(mapping)} runs, {changed} re-keyed")
    bench = root / "bench" / "bench.csv"
    rows = R.read_csv(bench)
    if rows and "config_hash" in rows[0]:
        for r in rows:
            r.pop("config_hash")
        R.write_csv(bench, rows)


if __name__ == "__main__":
    migrate(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
