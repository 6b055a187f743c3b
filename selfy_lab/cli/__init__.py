"""``selfy-lab``: each command parses its flags, calls one library function and prints."""
import sys

from ..core.errors import SelfyError
from . import models, runs, sweeps, visual  # noqa: F401  (register the commands)
from .common import app  # noqa: F401


def main() -> None:
    """Console entry point: user errors print one line and exit with status 2."""
    try:
        app()
    except SelfyError as e:
        from ..core.errors import user_message

        print(f"error: {user_message(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
