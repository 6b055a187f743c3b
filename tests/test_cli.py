"""The command line as a user runs it: the console script, its help, its errors and its outputs."""
import csv
import subprocess
import sys

import pytest
from helpers import cli_inproc, one_line_error


def run(*args, check=False):
    """``selfy-lab ARGS`` in this process (the same entry point; no interpreter start per call)."""
    p = cli_inproc(*args)
    if check and p.returncode != 0:
        raise AssertionError(p.stdout + p.stderr)
    return p


def test_help_lists_commands():
    """As a user runs it: a new process."""
    p = subprocess.run([sys.executable, "-m", "selfy_lab.cli", "--help"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    for cmd in ("flops", "bench"):
        assert cmd in p.stdout


@pytest.mark.slow
def test_flops_of_a_configuration():
    p = run("flops", "--backbone", "tsn-r18", "--offsets", "-3..3", check=True)
    assert "17.99 GFLOPs" in p.stdout and "14.51" in p.stdout


@pytest.mark.slow
def test_flops_paper_table_csv(tmp_path):
    run("flops", "--paper", "--out", str(tmp_path), check=True)
    rows = list(csv.DictReader(open(tmp_path / "paper_table.csv")))
    assert list(rows[0]) == ["model", "backbone", "frames", "offsets", "window", "paper_gflops", "gflops", "rel_diff",
                             "params_m"]
    assert len(rows) == 18 and all(abs(float(r["rel_diff"])) <= 0.03 for r in rows)


@pytest.mark.parametrize("args,msg", [
    (["flops", "--offsets", "3..-3"], "reversed offsets range"),
    (["flops", "--offsets", "1,1"], "twice"),
    (["flops", "--window", "8x8"], "odd"),
    (["flops", "--backbone", "vgg"], "unknown backbone"),
    (["flops", "--extractor", "fft"], "unknown extractor"),
    (["bench", "--only", "gpu", "--out", "/tmp/selfy-lab-bench-test"], "unknown bench part"),
    (["bench", "--repeats", "0"], "--repeats must be at least 1"),
    (["flops", "--paper", "--out", "/proc/selfy-lab-flops"], "cannot write to /proc/selfy-lab-flops"),
    (["flops", "--size", "4"], "--size must be at least 16"),
    (["report", "--only", "nope"], "no notebook named nope"),
    (["report", "--timeout-s", "0"], "--timeout-s must be at least 1"),
    (["describe", "--out", "/proc/selfy-lab-describe"], "cannot write to /proc/selfy-lab-describe"),
])
def test_bad_input_is_one_line(args, msg):
    p = cli_inproc(*args)
    assert one_line_error(p, msg), p.stderr


def test_unknown_flag_is_a_usage_error():
    p = run("flops", "--bogus")
    assert p.returncode == 2 and "No such option" in p.stderr


@pytest.mark.slow
def test_bench_writes_tidy_csv(tmp_path):
    run("bench", "--only", "stss", "--sizes", "8", "--repeats", "1", "--out", str(tmp_path), check=True)
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    assert {"benchmark", "impl", "size", "metric", "value", "device", "git_rev", "version"} <= set(rows[0])
    assert any(r["metric"] == "speedup_of_ours" for r in rows)
