"""The package's version, in one place (pyproject.toml and ``selfy_lab.__version__`` read it here), and the
source revision the package runs from."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

__version__ = "0.1.0"


def git_revision() -> str:
    """Short git revision of the source tree the package runs from, ``+dirty`` if it has changes; where the
    tree was copied without its history (a cluster node's copy), the revision named by ``SELFY_LAB_GIT_REV``."""
    if os.environ.get("SELFY_LAB_GIT_REV"):
        return os.environ["SELFY_LAB_GIT_REV"]
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
