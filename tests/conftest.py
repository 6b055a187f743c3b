"""Fixtures shared by several test modules."""
import os

import pytest
from helpers import SHARED, make_frames_tree


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs one worker per core) each worker's torch, and the commands it
    starts, get their share of the cores instead of all of them, so the workers do not oversubscribe the
    machine. Set OMP_NUM_THREADS to choose otherwise."""
    # the suite trains and writes results from whatever checkout it runs in (a change being tested is uncommitted
    # by nature); tests/test_provenance.py checks the refusal itself
    os.environ.setdefault("SELFY_LAB_ALLOW_DIRTY", "1")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def keep_thread_count():
    """A test that sets torch's thread count gives the worker's back: two workers at two threads each on two
    cores slow every later test severalfold (studies.runner restores its runs' count itself)."""
    import torch

    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def benchmark_cache(tmp_path_factory):
    """The built-in benchmark's rendered clips go into a folder of the test session, never the user's home
    (inherited by the commands the tests run in subprocesses)."""
    old = os.environ.get("SELFY_LAB_CACHE")
    os.environ["SELFY_LAB_CACHE"] = str(tmp_path_factory.mktemp("benchmark-cache"))
    yield
    if old is None:
        os.environ.pop("SELFY_LAB_CACHE", None)
    else:
        os.environ["SELFY_LAB_CACHE"] = old


@pytest.fixture
def fake_ssv1(tmp_path):
    """An SS-V1 tree: real list lines (authors' absolute paths), generated JPEGs, the real class list."""
    lines = [ln for ln in (SHARED / "v1_val_list_excerpt.txt").read_text().splitlines()[:8]]
    lines = [f"{p} {min(int(n), 12)} {lab}" for p, n, lab in (ln.split() for ln in lines)]
    make_frames_tree(tmp_path, lines)
    (tmp_path / "train_videofolder.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "val_videofolder.txt").write_text("\n".join(lines[:4]) + "\n")
    (tmp_path / "category.txt").write_text((SHARED / "category.txt").read_text())
    return tmp_path


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory):
    """A trained smoke sweep of the ladder baseline, {1} and -3..3 (8 frames, with checkpoints), shared by the
    robustness, CAM and notebook tests. Tests copy it before writing into it."""
    from selfy_lab.studies import ablate as A
    from selfy_lab.config.presets import resolve

    out = tmp_path_factory.mktemp("results") / "sweep"
    runs = A.plan(resolve("smoke", overrides={"model": {"frames": 8}}, experiment="ablate"),
                  [None, (1,), (-3, -2, -1, 0, 1, 2, 3)], seeds=[0, 1])
    A.run_sweep(runs, out)
    return out
