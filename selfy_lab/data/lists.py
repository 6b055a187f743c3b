"""Clip lists in the formats users have, and class-name files.

* ``tsn``: TSN/TSM list files, ``<folder or video> <num_frames> <label>`` per line;
* ``two-column``: ``<video> <label>`` per line (MMAction2's video lists; FineGym's element-level splits, whose
  first column is a clip id: the video is ``<clip id>.mp4`` (or another video suffix found) under the root);
* ``ssv2-json``: Something-Something V2's ``train.json`` / ``validation.json`` (``id``, ``template`` with
  brackets, ``placeholders``), classes from its ``labels.json``; videos ``<id>.webm`` under the root;
* ``kinetics-csv``: the official Kinetics-400/600/700 CSVs (``label,youtube_id,time_start,time_end,split``);
  videos ``<youtube_id>_<start:06d>_<end:06d>.mp4`` under ``<root>/<label>/`` or flat under the root, as the
  common downloaders save them; class names from the train CSV (its labels, sorted) or a class-name file;
* ``diving48-json``: Diving-48's ``Diving48_V2_*.json`` (``vid_name``, ``label``, ``start_frame``,
  ``end_frame``); videos ``<vid_name>.mp4`` under the root, the clip being frames start..end.

``auto`` (the default) tells them apart from the file itself. Every malformed line or item stops with one
message naming the file and the line (or item).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from ..config.vocabulary import LIST_FORMATS
from ..core.errors import DataError
from ..core.textfiles import read_lines, read_text

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov")


@dataclass(frozen=True)
class ListEntry:
    path: Path  # frame folder or video file, re-rooted
    num_frames: int  # listed frames (0: unknown until the video is opened)
    label: int
    source: str  # "list_file:line" for error messages
    start: int = 0  # the clip's first frame in the video (0-based; Diving-48 lists a range)
    end: int | None = None  # its last frame, inclusive (None: the end of the video)


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
    for n, line in enumerate(read_lines(list_file), 1):
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


def detect_format(path: str | Path) -> str:
    """The format of a clip list, from its content (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"list file {path} does not exist: pass --train-list / --val-list or --data-root")
    if path.suffix.lower() == ".json":
        items = _json_items(path)
        keys = set(items[0]) if items and isinstance(items[0], dict) else set()
        if {"id", "template"} <= keys:
            return "ssv2-json"
        if {"vid_name", "label"} <= keys:
            return "diving48-json"
        raise DataError(f"{path}: a JSON list of neither Something-Something V2 items (id, template) nor Diving-48 "
                        f"items (vid_name, label, start_frame, end_frame): pass --list-format")
    first = next((line for line in read_lines(path) if line.strip()), "")
    if first.replace(" ", "").lower().startswith(KINETICS_HEADER):
        return "kinetics-csv"
    cols = len(first.split())
    if cols in (2, 3):
        return "tsn" if cols == 3 else "two-column"
    raise DataError(f"{path}: cannot tell its format from its first line ({cols} columns): expected "
                    f"'<folder> <num_frames> <label>' or '<video> <label>', or pass --list-format")


def read_clips(path: str | Path, fmt: str = "auto", root: str | Path | None = None,
               num_classes: int | None = None, class_names: list[str] | None = None) -> list[ListEntry]:
    """The clips of a list in any of :data:`LIST_FORMATS`; ``class_names`` (in label order) are needed by
    ``ssv2-json``, whose items name their class by its template."""
    if fmt not in LIST_FORMATS:
        raise DataError(f"unknown list format '{fmt}': choose from {', '.join(LIST_FORMATS)}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "tsn":
        return read_list(path, root, num_classes)
    path = Path(path)
    if fmt == "two-column":
        entries = _read_two_column(path, root, num_classes)
    elif fmt == "ssv2-json":
        entries = _read_ssv2(path, root, class_names)
    elif fmt == "kinetics-csv":
        entries = _read_kinetics(path, root, class_names)
    else:
        entries = _read_diving48(path, root, num_classes)
    if not entries:
        raise DataError(f"{path} lists no clips")
    return entries


def _json_items(path: Path) -> list:
    try:
        items = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not a readable JSON file ({type(e).__name__}: {str(e)[:80]})") from None
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON list of clips, found a {type(items).__name__}")
    return items


def _video(root: str | Path | None, list_dir: Path, name: str, default_suffix: str) -> Path:
    """A listed video: re-rooted, with ``default_suffix`` (or a video suffix found on disk) when it has none."""
    p = reroot(name, root, list_dir)
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return p
    found = [p.with_name(p.name + s) for s in VIDEO_SUFFIXES if p.with_name(p.name + s).is_file()]
    return found[0] if found else p.with_name(p.name + default_suffix)


def _label(value, where: str, num_classes: int | None) -> int:
    try:
        label = int(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: the label must be an integer, got '{value}'") from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        raise DataError(f"{where}: label {label} is out of range for {num_classes} classes (0-{(num_classes or 1) - 1})")
    return label


def _read_two_column(path: Path, root, num_classes) -> list[ListEntry]:
    entries = []
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        cols, where = line.split(), f"{path}:{n}"
        if len(cols) != 2:
            raise DataError(f"{where}: expected 2 columns '<video> <label>', found {len(cols)}")
        entries.append(ListEntry(_video(root, path.parent, cols[0], ".mp4"), 0, _label(cols[1], where, num_classes), where))
    return entries


KINETICS_HEADER = "label,youtube_id,time_start,time_end"


def _kinetics_rows(path: Path) -> list[tuple[int, dict]]:
    rows = list(csv.DictReader(io.StringIO(read_text(path))))
    if not rows or not set(KINETICS_HEADER.split(",")) <= set(rows[0]):
        raise DataError(f"{path}: expected the Kinetics CSV header {KINETICS_HEADER},split")
    return [(n, r) for n, r in enumerate(rows, 2)]


def kinetics_class_names(path: str | Path) -> list[str]:
    """The classes of a Kinetics CSV: its labels, sorted (the order MMAction2's label maps use)."""
    return sorted({r["label"].strip() for _, r in _kinetics_rows(Path(path)) if (r.get("label") or "").strip()})


def _read_kinetics(path: Path, root, class_names: list[str] | None) -> list[ListEntry]:
    if not class_names:
        raise DataError(f"{path}: Kinetics rows name their class: pass the train CSV or a class-name file as --categories")
    ids = {name: i for i, name in enumerate(class_names)}
    base = Path(root) if root else path.parent
    entries = []
    for n, r in _kinetics_rows(path):
        where = f"{path}:{n}"
        label = (r.get("label") or "").strip()
        if label not in ids:
            raise DataError(f"{where}: class '{label[:40]}' is not among the {len(ids)} classes of --categories "
                            "(a test CSV without labels cannot be scored)")
        try:
            name = f"{r['youtube_id'].strip()}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}.mp4"
        except (TypeError, ValueError, AttributeError):
            raise DataError(f"{where}: time_start and time_end must be seconds, got {r.get('time_start')!r} and "
                            f"{r.get('time_end')!r}") from None
        candidates = [base / label / name, base / label.replace(" ", "_") / name, base / name]
        video = next((c for c in candidates if c.is_file()), candidates[0])
        entries.append(ListEntry(video, 0, ids[label], where))
    return entries


def _read_ssv2(path: Path, root, class_names: list[str] | None) -> list[ListEntry]:
    if not class_names:
        raise DataError(f"{path}: Something-Something V2 items name their class by template: pass its labels.json as --categories")
    ids = {name: i for i, name in enumerate(class_names)}
    entries = []
    for n, item in enumerate(_json_items(path), 1):
        where = f"{path}: item {n}"
        if not isinstance(item, dict) or "id" not in item or "template" not in item:
            raise DataError(f"{where}: expected an object with 'id' and 'template' (test.json has no labels)")
        template = str(item["template"]).replace("[", "").replace("]", "")
        if template not in ids:
            raise DataError(f"{where}: template '{item['template']}' is not a class of the labels file")
        entries.append(ListEntry(_video(root, path.parent, str(item["id"]), ".webm"), 0, ids[template], where))
    return entries


def _read_diving48(path: Path, root, num_classes) -> list[ListEntry]:
    entries = []
    for n, item in enumerate(_json_items(path), 1):
        where = f"{path}: item {n}"
        if not isinstance(item, dict) or not {"vid_name", "label"} <= set(item):
            raise DataError(f"{where}: expected an object with 'vid_name', 'label', 'start_frame' and 'end_frame'")
        start, end = item.get("start_frame", 0), item.get("end_frame")
        if not isinstance(start, int) or start < 0 or (end is not None and (not isinstance(end, int) or end < start)):
            raise DataError(f"{where}: start_frame {start!r} and end_frame {end!r} must be frame numbers, start <= end")
        frames = 0 if end is None else end - start + 1
        entries.append(ListEntry(_video(root, path.parent, str(item["vid_name"]), ".mp4"), frames,
                                 _label(item["label"], where, num_classes), where, start, end))
    return entries


def read_class_names(path: str | Path) -> list[str]:
    """Class names in label order from a class-name file (one per line), Something-Something V2's
    ``labels.json`` (template -> id) or Diving-48's vocabulary JSON (one list of words per class)."""
    path = Path(path)
    if path.suffix.lower() == ".csv" and path.is_file() and read_text(path).replace(" ", "").lower().startswith(KINETICS_HEADER):
        return kinetics_class_names(path)
    if path.suffix.lower() != ".json":
        return read_categories(path)
    if not path.is_file():
        raise DataError(f"class-name file {path} does not exist: pass --categories")
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not a readable JSON file ({type(e).__name__})") from None
    if isinstance(data, dict):  # SS-V2 labels.json: {"Holding something next to something": "19", ...}
        try:
            by_id = {int(v): k for k, v in data.items()}
        except (TypeError, ValueError):
            raise DataError(f"{path}: expected {{class template: id}} with integer ids") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise DataError(f"{path}: class ids must be 0..{len(by_id) - 1}, each once")
        return [by_id[i] for i in range(len(by_id))]
    if isinstance(data, list) and data and all(isinstance(c, (list, str)) for c in data):  # Diving-48 vocabulary
        return unique_names(path, [" ".join(map(str, c)) if isinstance(c, list) else c for c in data])
    raise DataError(f"{path}: neither a labels.json (template -> id) nor a list of class names")


def read_categories(path: str | Path) -> list[str]:
    """One class name per line, line index = label (a missing trailing newline is fine)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"class-name file {path} does not exist: pass --categories")
    names = [line.strip() for line in read_lines(path)]
    while names and not names[-1]:
        names.pop()
    if not names or any(not n for n in names):
        raise DataError(f"{path}: class names must be non-empty, one per line")
    return unique_names(path, names)


def unique_names(path: Path, names: list[str]) -> list[str]:
    """Class names, refused when one is given twice (two labels would share a name)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names, 1):
        if name in seen:
            raise DataError(f"{path}:{i}: class '{name}' is named twice (also line {seen[name]}): each label needs its own name")
        seen[name] = i
    return names
