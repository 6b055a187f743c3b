"""selfy-lab: the experiments of SELFY (spatio-temporal self-similarity for action recognition).

``selfy_lab.stss``, ``selfy_lab.build_model`` and the models by name (``list_models``, ``create_model``,
``from_pretrained``: :mod:`selfy_lab.studies.zoo`) are imported lazily so that the command line starts without loading
torch.
"""
from .core.version import __version__

__all__ = ["__version__", "build_model", "create_model", "from_pretrained", "list_models", "stss"]


def __getattr__(name):
    if name in ("stss", "build_model"):
        from . import models  # deferred: `import selfy_lab` and the command line start without torch

        return getattr(models, name)
    if name in ("create_model", "from_pretrained", "list_models"):
        from .studies import zoo  # deferred: as above

        return getattr(zoo, name)
    raise AttributeError(f"module 'selfy_lab' has no attribute {name!r}")
