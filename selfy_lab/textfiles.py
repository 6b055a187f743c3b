"""Text files in and out. Reading the files users bring (experiment files, list files, class names): UTF-8
with or without the byte-order mark that Windows editors write; anything else is one line naming the file and
the line. Writing: output folders checked before any work, files replaced atomically, CSV rows with every
digit of a float."""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from .errors import DataError, SelfyError


def read_text(path: str | Path) -> str:
    """The file's text, decoded as UTF-8 (a leading BOM dropped); a file in another encoding is a
    :class:`DataError` naming the file, the line and what to do."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save it as UTF-8 "
                        f"(e.g. iconv -f latin1 -t utf-8)") from None


def read_lines(path: str | Path) -> list[str]:
    """:func:`read_text` split into lines."""
    return read_text(path).splitlines()


def ensure_writable(path: str | Path, what: str = "--out") -> Path:
    """Create the output directory ``path`` now, before any work, or stop with one line saying why not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise SelfyError(f"cannot write to {path} ({reason}): pass a writable directory as {what}") from None
    return path


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], columns: Iterable[str] | None = None) -> Path:
    """Write rows atomically; ``columns`` fixes the order (default: first row's keys, then new ones)."""
    rows = list(rows)
    cols = list(columns) if columns else []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="raise", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: csv_value(r.get(k, "")) for k in cols})
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def csv_value(v: Any) -> Any:
    """A value as a CSV cell: a float by its repr, which keeps every digit."""
    return repr(v) if isinstance(v, float) else v  # repr keeps every digit of a float


def read_csv(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
