"""Plain helpers shared by the tests (fixtures live in conftest.py)."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parent / "fixtures" / "something-something"  # real list lines and class names


def rows(path):
    """The rows of a CSV file as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder ``name`` of this test session, filled by ``build(folder)`` once: by the first pytest-xdist
    worker that asks, under a lock, while the others wait for it and then read the same folder (the parent of
    the workers' own temporary folders). What it holds is shared: tests copy it before writing into it."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with FileLock(str(root / f"{name}.lock")):
        if not (root / f"{name}.built").exists():
            build(root / name)
            (root / f"{name}.built").touch()
    return root / name


def free_port() -> int:
    """A TCP port on the loopback nothing listens on now (for torchrun's rendezvous)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_error(p, msg: str) -> bool:
    """The command stopped with status 2 and exactly one line on stderr holding ``msg``, no traceback."""
    lines = p.stderr.strip().splitlines()
    return p.returncode == 2 and len(lines) == 1 and msg in lines[0] and "Traceback" not in p.stderr


def make_frames_tree(root: Path, list_lines: list[str], size=(60, 80), template="{:05d}.jpg"):
    """Frame folders (random JPEGs) for the given list lines."""
    rng = np.random.default_rng(0)
    for line in list_lines:
        folder, n, _ = line.split()
        d = root / Path(folder).name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(1, int(n) + 1):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(d / template.format(i), quality=70)


def cli_inproc(*args, env=None, cwd=None):
    """Run ``selfy-lab ARGS`` in this process: the console script's entry point, flags, output and exit status,
    without a new interpreter importing torch (seconds per call). For tests of what a command does; what only a
    process shows (a kill, torchrun, what the command line imports at its start) runs ``python -m selfy_lab.cli``
    in a subprocess. ``env`` is set for the call and put back after. Returns an object like
    ``subprocess.CompletedProcess``."""
    import contextlib
    import io

    from selfy_lab.cli import main

    out, err, code = io.StringIO(), io.StringIO(), 0
    old_argv, old_cwd = sys.argv, os.getcwd()
    old_env = {k: os.environ.get(k) for k in (env or {})}
    sys.argv = ["selfy-lab", *map(str, args)]
    try:
        os.environ.update({k: str(v) for k, v in (env or {}).items()})
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def write_video(path: Path, n: int, size=(48, 64), codec: str = "libx264", fps: int = 25) -> Path:
    """A real encoded video of ``n`` frames whose frame i is a flat grey of level 10 * i (H.264 .mp4 or
    VP9 .webm), so a decoded frame tells which frame it was."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for i in range(n):
            img = np.full((*size, 3), min(255, 10 * i), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


class Stop(Exception):
    """Raised by :func:`stop_after_first_epoch` to interrupt a training run."""


def stop_after_first_epoch(event, **kw):
    """A ``fit`` callback that interrupts the run once its first epoch is checkpointed."""
    if event == "epoch_end" and kw["epoch"] == 0:
        raise Stop


def finished_runs(sweep: Path, cells, experiment: str = "tuning", *, report: str = "none",
                  recipe: tuple[float, int] = (0.004, 6)) -> Path:
    """A sweep folder of finished runs without training: (block, lr, epochs, seed, top1) each, the smoke preset
    otherwise, a validation after every epoch rising to ``top1``; its record declares ``report`` and its base
    ``recipe`` (lr, epochs)."""
    from dataclasses import replace

    from selfy_lab.store import results as R
    from selfy_lab.config.presets import resolve

    base = resolve("smoke")
    ids = []
    for block, lr, epochs, seed, top1 in cells:
        run = replace(base, model=replace(base.model, block=block),
                      train=replace(base.train, lr=lr, epochs=epochs, seed=seed))
        d = R.run_dir(sweep, run.run_hash)
        R.write_run_config(d, run)
        R.write_history(d, [{"epoch": e, "val_top1": top1 * e / epochs} for e in range(1, epochs + 1)])
        R.write_metrics(d, R.result_rows(run, {"top1": top1, "top5": 1.0}, "val", experiment))
        ids.append(run.run_hash)
    R.collect_runs(sweep, ids)
    R.write_sweep_record(sweep, {"report": report, "recipe": {"lr": recipe[0], "epochs": recipe[1]}})
    return sweep
