"""Reading the text files users bring (experiment files, list files, class names): UTF-8 with or without the
byte-order mark that Windows editors write; anything else is one line naming the file and the line."""
from __future__ import annotations

from pathlib import Path

from .errors import DataError


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
