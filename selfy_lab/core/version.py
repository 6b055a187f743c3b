"""The package's version, in one place (pyproject.toml and ``selfy_lab.__version__`` read it here), and the
source revision the package runs from: its git commit, ``+dirty`` when the package's code has changes that no
commit holds, and those changes (:func:`source_diff`) for a run that was allowed to record them."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parent.parent
# what decides a result: the package's code and its declared dependencies (experiment files, notebooks and
# results are recorded with each run or are not code)
SOURCE_PATHS = ("selfy_lab", "pyproject.toml")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)


def git_revision() -> str:
    """Short git revision of the source tree the package runs from, ``+dirty`` if the package's code has
    uncommitted changes (new files in the package included); where the tree was copied without its history (a
    cluster node's copy), the revision named by ``SELFY_LAB_GIT_REV``; ``unknown`` outside a git checkout."""
    if os.environ.get("SELFY_LAB_GIT_REV"):
        return os.environ["SELFY_LAB_GIT_REV"]
    try:
        rev = _git("rev-parse", "--short", "HEAD")
        if rev.returncode != 0:
            return "unknown"
        dirty = _git("status", "--porcelain", "--untracked-files=normal", "--", *SOURCE_PATHS).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def source_diff() -> str:
    """The package's uncommitted changes against HEAD, as a patch (new files in full): what a ``+dirty`` run
    stores beside its results so that its code can be rebuilt."""
    try:
        text = _git("diff", "HEAD", "--", *SOURCE_PATHS).stdout
        new = _git("ls-files", "--others", "--exclude-standard", "--", *SOURCE_PATHS).stdout.split()
        for f in new:
            text += _git("diff", "--no-index", "--", "/dev/null", f).stdout
        return text
    except (OSError, subprocess.SubprocessError) as e:
        return f"# the diff could not be taken: {e}\n"
