"""Bring committed result files to the current variant columns (``hierarchy``, ``aux``, ``init``, ``labels``),
and robustness files to the test-protocol columns (``test_clips``, ``test_crops``: 1 and 1, the only protocol
they were evaluated with), filling the variant columns from each run's own config.yaml (for a run that never finished, from its sweep's base config).
Values and run keys are untouched.

Run from the repository root: ``python tools/migrate_result_columns.py [results]``. Idempotent.
"""
from __future__ import annotations

import sys
from pathlib import Path

from selfy_lab import results as R

NEW = ("hierarchy", "aux", "init", "labels")
TABLES = {R.RUNS_TABLE: R.RUN_COLUMNS, R.STATUS_TABLE: R.STATUS_COLUMNS, R.METRICS: R.RUN_COLUMNS,
          R.ROBUSTNESS_TABLE: R.ROBUSTNESS_COLUMNS, R.ROBUSTNESS_SUMMARY: R.ROBUSTNESS_SUMMARY_COLUMNS}


def sweep_base(path: Path):
    from selfy_lab.config import RunConfig, from_dict

    for d in path.parents:
        if (d / R.SWEEP_RECORD).is_file():
            return from_dict(RunConfig, R.read_sweep_record(d)["base"])
    raise SystemExit(f"{path}: a run without config.yaml and no sweep.yaml above it")


def main(root: Path) -> None:
    configs = {d.parent.name: d.parent for d in root.glob(f"**/{R.RUNS_DIR}/*/{R.CONFIG}")}
    variants: dict[str, dict] = {}
    for name, columns in TABLES.items():
        for path in sorted(root.glob(f"**/{name}")):
            rows = R.read_csv(path)
            protocol = [c for c in R.EVAL_KEYS if c in columns and name != R.METRICS]
            if not rows or "run_id" not in rows[0] or all(r.get(c) for r in rows for c in (*NEW, *protocol)):
                continue
            for r in rows:
                rid = r["run_id"]
                if rid not in variants:
                    if rid in configs:
                        variants[rid] = R.read_run_config(configs[rid]).variant()
                    else:  # a run that never finished: its sweep's base (these columns were not swept then)
                        variants[rid] = sweep_base(path).variant()
                r.update({c: variants[rid][c] for c in NEW if not r.get(c)})
                r.update({c: R.PROTOCOL_DEFAULTS[c] for c in protocol if not r.get(c)})
            R.write_csv(path, rows, columns)
            print(f"migrated {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
