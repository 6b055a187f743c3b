"""User-facing errors: the CLI prints their message on one line, without a traceback."""

import re


class SelfyError(Exception):
    """Bad input or environment the user can fix; the message says how."""


class DataError(SelfyError):
    """A data file is missing or malformed; the message names the file (and line)."""


class DivergedError(SelfyError):
    """Training produced a nan or infinite loss: the run stops unfinished (sweeps mark it diverged)."""


def user_message(exc: BaseException) -> str:
    """One line for the user. Errors re-raised from DataLoader workers carry the worker's traceback
    in their message; the last line is the original message."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    line = text.splitlines()[0] if text else type(exc).__name__
    # a value pasted by mistake (a whole file as a flag) is cut, so the line stays one a terminal shows
    return re.sub(r"\S{200,}", lambda m: f"{m.group(0)[:80]}...({len(m.group(0))} characters)", line)
