"""TSN/TSM list files (``<folder or video> <num_frames> <label>`` per line) and class-name files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError


@dataclass(frozen=True)
class ListEntry:
    path: Path  # frame folder or video file, re-rooted
    num_frames: int
    label: int
    source: str  # "list_file:line" for error messages


def reroot(raw: str, root: str | Path | None, list_dir: Path) -> Path:
    """Where a listed path lives. Lists often hold the authors' absolute paths (``/Dataset/SSV1/85``):
    with a root, an absolute path keeps only its last component under the root and a relative path
    is joined to the root; without one, relative paths are relative to the list file's folder."""
    p = Path(raw)
    if root:
        return Path(root) / (p.name if p.is_absolute() else p)
    return p if p.is_absolute() else list_dir / p


def read_list(list_file: str | Path, root: str | Path | None = None, num_classes: int | None = None) -> list[ListEntry]:
    """Parse a list file; any malformed line stops with one message naming the file and line."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise DataError(f"list file {list_file} does not exist: pass --train-list / --val-list or --data-root")
    entries = []
    with open(list_file) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            cols = line.split()
            where = f"{list_file}:{n}"
            if len(cols) != 3:
                raise DataError(f"{where}: expected 3 columns '<folder> <num_frames> <label>', found {len(cols)}")
            try:
                frames, label = int(cols[1]), int(cols[2])
            except ValueError:
                raise DataError(f"{where}: num_frames and label must be integers, got '{cols[1]}' and '{cols[2]}'") from None
            if frames < 1:
                raise DataError(f"{where}: num_frames must be at least 1, got {frames}")
            if label < 0 or (num_classes is not None and label >= num_classes):
                raise DataError(f"{where}: label {label} is out of range for {num_classes} classes (0-{(num_classes or 1) - 1})")
            entries.append(ListEntry(reroot(cols[0], root, list_file.parent), frames, label, where))
    if not entries:
        raise DataError(f"{list_file} lists no clips")
    return entries


def read_categories(path: str | Path) -> list[str]:
    """One class name per line, line index = label (a missing trailing newline is fine)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"class-name file {path} does not exist: pass --categories")
    names = [line.strip() for line in path.read_text().splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names or any(not n for n in names):
        raise DataError(f"{path}: class names must be non-empty, one per line")
    return names
