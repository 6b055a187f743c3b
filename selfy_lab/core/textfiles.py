"""Text files in and out. Reading the files users bring (experiment files, list files, class names): UTF-8
with or without the byte-order mark that Windows editors write; anything else is one line naming the file and
the line. Writing: output folders checked before any work, files replaced atomically, CSV rows with every
digit of a float."""
from __future__ import annotations

import csv
import fnmatch
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import yaml

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


MAX_YAML_ALIASES = 100  # a configuration needs a few; a "billion laughs" document needs thousands


def load_yaml(text: str, where: str):
    """YAML a user wrote, parsed strictly: a key given twice in one mapping (where a plain parser keeps the last
    silently) and a document with more than :data:`MAX_YAML_ALIASES` aliases (an alias bomb) stop with one line
    naming ``where`` and the line; YAML syntax errors likewise."""
    class Strict(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                Strict.aliases += 1
                if Strict.aliases > MAX_YAML_ALIASES:
                    mark = self.peek_event().start_mark
                    raise DataError(f"{where}:{mark.line + 1}: more than {MAX_YAML_ALIASES} YAML aliases (*name); "
                                    "write the values out")
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise DataError(f"{where}:{key_node.start_mark.line + 1}: '{str(key)[:40]}' is given twice in "
                                    "one section; keep one")
                seen.add(key)
            return super().construct_mapping(node, deep)

    try:
        return yaml.load(text, Loader=Strict)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise DataError(f"{where}{line}: not valid YAML ({str(getattr(e, 'problem', None) or e)[:120]})") from None


def ensure_writable(path: str | Path, what: str = "--out") -> Path:
    """Create the output directory ``path`` now, before any work, or stop with one line saying why not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SelfyError(f"{what} {path} is a file, where a folder is written: nothing was written; pass a folder name")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise SelfyError(f"cannot write to {path} ({reason}): pass a writable directory as {what}") from None
    return path


def claim_folder(path: str | Path, ours: Iterable[str], what: str = "--out") -> Path:
    """The output folder of a command, checked before any work: a new or empty folder (hidden entries aside),
    or one this command wrote before (it holds an entry matching one of the glob patterns ``ours``: a run's
    config.yaml, a sweep's runs.csv, a CAM's PNG). A file there, or a folder of the user's, stops with one line
    and nothing is touched; then the folder is created and its writability probed (:func:`ensure_writable`)."""
    path, ours = Path(path), tuple(ours)
    if path.is_dir():
        try:
            entries = sorted(e.name for e in path.iterdir() if not e.name.startswith("."))
        except OSError as e:
            raise SelfyError(f"cannot read {path} ({e.strerror or type(e).__name__}): pass a folder you can write "
                             f"as {what}") from None
        if entries and not any(fnmatch.fnmatch(n, pat) for n in entries for pat in ours):
            shown = ", ".join(entries[:2]) + (f" and {len(entries) - 2} more" if len(entries) > 2 else "")
            raise SelfyError(f"{what} {path} holds files selfy-lab did not write ({shown}): nothing was written; "
                             "pass a new or empty folder")
    return ensure_writable(path, what)


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, with the permissions
    the user's umask gives a new file: an interruption or a full disk leaves the old file or none, never half."""
    path = Path(path)
    if path.is_dir():
        raise SelfyError(f"{path} is a folder, where a file is written: pass a file path (e.g. {path / 'out.csv'})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise SelfyError(f"cannot write {path} ({e.strerror or type(e).__name__}): choose a writable place") from None
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 would hide results from the user's group
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a quota: the old file stays whole, the partial one goes
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise SelfyError(f"cannot write {path} ({e.strerror or type(e).__name__}): free some space and run the "
                         "same command again; what was written before is whole") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_own_table(path: str | Path, columns: Iterable[str]) -> None:
    """Stop with one line when ``path`` exists and is not a table this tool writes there (its first line shares
    less than half its columns with ``columns``): a user's file is never replaced by a results table."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            header = next(csv.reader([f.readline()]), [])
    except OSError:
        return
    header = [h.strip() for h in header if h.strip()]
    if not header:  # an empty file (a write cut short by a full disk): nothing in it to lose
        return
    if len(set(header) & set(columns)) * 2 < len(header):
        raise SelfyError(f"{path} exists and is not a selfy-lab results table (its first line: "
                         f"{','.join(header)[:60]}): it is left as it is; choose another --out")


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], columns: Iterable[str] | None = None) -> Path:
    """Write rows atomically; ``columns`` fixes the order (default: first row's keys, then new ones). With
    ``columns``, an existing file that is not such a table stops with one line (:func:`check_own_table`)."""
    rows = list(rows)
    if columns:
        check_own_table(path, columns)
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
