"""The package's version, in one place: pyproject.toml and ``selfy_lab.__version__`` read it here."""
__version__ = "0.1.0"
