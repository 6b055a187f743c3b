"""``selfy-lab``: each command parses its flags, calls one library function and prints."""
import sys

from ..core.errors import SelfyError, user_message
from . import models, runs, sweeps, visual
from .common import app


def main() -> None:
    """Console entry point: user errors print one line and exit with status 2."""
    try:
        app()
    except SelfyError as e:

        print(f"error: {user_message(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
