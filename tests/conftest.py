"""Fixtures shared by several test modules."""
import os

import pytest
from helpers import SHARED, built_once, make_frames_tree


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
    (inherited by the commands the tests run in subprocesses). The workers share it: a clip set is rendered
    once per session (the cache names a file only when it is complete, so concurrent renders are safe)."""
    old = os.environ.get("SELFY_LAB_CACHE")
    os.environ["SELFY_LAB_CACHE"] = str(built_once(tmp_path_factory, "benchmark-cache",
                                                   lambda folder: folder.mkdir(exist_ok=True)))
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


def _smoke_plan():
    from selfy_lab.studies import ablate as A
    from selfy_lab.config.presets import resolve

    return A.plan(resolve("smoke", overrides={"model": {"frames": 8}}, experiment="ablate"),
                  [None, (1,), (-3, -2, -1, 0, 1, 2, 3)], seeds=[0, 1])


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One trained smoke run with its checkpoint (the ladder baseline of :func:`smoke_sweep`, seed 0, in a sweep
    folder of its own), for tests that need a model and not a sweep. Tests copy it before writing into it."""
    from selfy_lab.store.results import sweep_run_dirs
    from selfy_lab.studies import ablate as A

    baseline = [r for r in _smoke_plan() if r.run.model.block == "none" and r.run.train.seed == 0]
    return sweep_run_dirs(built_once(tmp_path_factory, "smoke-run",
                                     lambda folder: A.run_sweep(baseline, folder)))[0]


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory):
    """A trained smoke sweep of the ladder baseline, {1} and -3..3 (8 frames, with checkpoints), shared by the
    robustness, CAM and notebook tests. Tests copy it before writing into it. Trained once per test session:
    the first worker to ask trains it under a lock, the others wait for it and read the same folder."""
    from selfy_lab.studies import ablate as A

    return built_once(tmp_path_factory, "smoke-sweep", lambda folder: A.run_sweep(_smoke_plan(), folder))
