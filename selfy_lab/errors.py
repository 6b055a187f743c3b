"""User-facing errors: the CLI prints their message on one line, without a traceback."""


class SelfyError(Exception):
    """Bad input or environment the user can fix; the message says how."""
