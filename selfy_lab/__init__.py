"""selfy-lab: the experiments of SELFY (spatio-temporal self-similarity for action recognition).

``selfy_lab.stss`` and ``selfy_lab.build_model`` are imported lazily so that the command line starts
without loading torch.
"""
from .version import __version__

__all__ = ["__version__", "build_model", "stss"]


def __getattr__(name):
    if name in ("stss", "build_model"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'selfy_lab' has no attribute {name!r}")
