"""The datasets a run reads, built by :func:`build_dataset`: the built-in benchmark (:mod:`.benchmark`), clips
listed by a list file (frame folders or video files) and a folder of videos; and the class names of each.
Items are ``(clip, label)`` with clip uint8 (T, C, H, W), or (clips, T, C, H, W) when a test uses two clips,
addressed as ``(index, sample_seed)``: every random choice of an item (frames, crop, flip) comes from its seed,
so loading is deterministic whatever the worker count."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..config.run import DataConfig, RunConfig
from ..core.errors import DataError
from . import synthetic as syn
from .benchmark import SyntheticClips
from .clips import ClipDataset, item_address
from .flip import mirror_pairs
from .lists import VIDEO_SUFFIXES, ListEntry, read_class_names, read_clips
from .sampling import segment_indices
from .transforms import center_crop, clip_from_frames, random_scale_crop, resize, three_crops
from .video import read_picked


class ListClips(ClipDataset):
    """Frame folders (``template`` names 1-based frames) or video files, listed by a TSN list file."""

    def __init__(self, cfg: DataConfig, *, frames: int, entries: list[ListEntry], template: str, train: bool,
                 class_names: list[str]):
        super().__init__(cfg, frames=frames, train=train, class_names=class_names)
        self.entries, self.template = entries, template

    def __len__(self) -> int:
        return len(self.entries)

    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.entries])

    def clip(self, item) -> torch.Tensor:
        index, seed = item_address(item)
        out = self._views(index, np.random.default_rng(seed))
        return out[0] if len(out) == 1 else torch.stack(out)

    def __getitem__(self, item):
        index, seed = item_address(item)
        label = self.entries[index].label
        if not self.train:  # testing draws nothing at random: the clip's views as they are
            return self.clip(item), label
        rng = np.random.default_rng(seed)
        return self._augment(self._views(index, rng)[0], label, rng)

    def _views(self, index: int, rng) -> list[torch.Tensor]:
        """The item's sampled, resized and cropped clips (one in training, ``test_clips`` x ``test_crops`` in
        testing)."""
        e = self.entries[index]
        clips = 1 if self.train else self.cfg.test_clips
        if e.path.suffix.lower() in VIDEO_SUFFIXES:
            def pick(total: int) -> np.ndarray:  # sample inside the listed range once the length is known
                last = total - 1 if e.end is None else min(e.end, total - 1)
                if last < e.start:
                    raise DataError(f"{e.source}: video {e.path} has {total} frames, none in {e.start}..{e.end}")
                return e.start + segment_indices(last - e.start + 1, self.frames, train=self.train, rng=rng,
                                                 clips=clips)

            views = read_picked(e.path, pick, e.source)  # (clips, T, H, W, 3)
        else:
            idx = segment_indices(e.num_frames, self.frames, train=self.train, rng=rng, clips=clips)  # (clips, T)
            views = [stack_frames([self._frame(e, int(i) + 1) for i in row]) for row in idx]
        out = []
        for frames in views:
            clip = resize(clip_from_frames(frames), self.cfg.resize)  # (T, C, H, W)
            if self.train:
                out.append(random_scale_crop(clip, self.cfg.size, self.cfg.scales, rng))
            elif self.cfg.test_crops == 3:
                out += three_crops(clip, self.cfg.size)
            else:
                out.append(center_crop(clip, self.cfg.size))
        return out  # clip-major: (clip 0: crops...), (clip 1: crops...)

    def _frame(self, e: ListEntry, number: int) -> np.ndarray:
        path = e.path / self.template.format(number)
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except FileNotFoundError:
            if not e.path.is_dir():
                raise DataError(f"{e.source}: frame folder {e.path} does not exist") from None
            raise DataError(f"{e.source}: {e.path} has no frame {path.name} (the list says {e.num_frames} frames)") from None
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"{e.source}: cannot read image {path} ({type(err).__name__})") from None


def stack_frames(frames: list[np.ndarray]) -> np.ndarray:
    """(H, W, 3) frames -> (T, H, W, 3); a frame of another size than the first is resized to it (bilinear),
    as a folder of frames extracted at two resolutions needs."""
    H, W = frames[0].shape[:2]
    same = [f if f.shape[:2] == (H, W) else np.asarray(Image.fromarray(f).resize((W, H), Image.BILINEAR))
            for f in frames]
    return np.stack(same)


def check_entries(entries: list[ListEntry], template: str, progress=None, on_missing: str = "stop") -> list[ListEntry]:
    """Before training: every listed folder exists and holds its last listed frame (or the video exists). A
    missing one stops with one line naming the list's line (``on_missing`` stop), or is left out (skip): returns
    the entries on disk. Nothing left on disk stops either way."""
    kept: list[ListEntry] = []
    for i, e in enumerate(entries):
        if e.path.suffix.lower() in VIDEO_SUFFIXES:
            problem = None if e.path.is_file() else f"video {e.path} does not exist"
        elif not e.path.is_dir():
            problem = f"frame folder {e.path} does not exist"
        elif not (e.path / template.format(e.num_frames)).is_file():
            problem = f"{e.path} has no frame {template.format(e.num_frames)} (the list says {e.num_frames} frames)"
        else:
            problem = None
        if problem is None:
            kept.append(e)
        elif on_missing == "stop":
            raise DataError(f"{e.source}: {problem} (--on-missing skip counts and skips such clips)")
        if progress and i % 1000 == 0:
            progress(i + 1, len(entries))
    if entries and not kept:
        raise DataError(f"none of the {len(entries)} listed clips is on disk (first: {entries[0].source}): check "
                        "--data-root")
    return kept


def resolve_paths(cfg: DataConfig, keys=("train", "val", "categories")) -> dict[str, Path | None]:
    conv = cfg.conventions
    root = Path(cfg.data_root) if cfg.data_root else None

    def pick(explicit: str, default_name: str | None) -> Path | None:
        if explicit:
            return Path(explicit)
        if default_name is None:
            return None
        if root is None:
            raise DataError(f"dataset {cfg.dataset} needs --data-root (or explicit --train-list, --val-list, --categories)")
        return root / default_name

    sources = {"train": (cfg.train_list, conv.get("train_list")), "val": (cfg.val_list, conv.get("val_list")),
               "test": (cfg.test_list, conv.get("test_list")), "categories": (cfg.categories, conv.get("categories"))}
    return {k: pick(*sources[k]) for k in keys}


def frame_template(cfg: DataConfig) -> str:
    template = cfg.frame_template or cfg.conventions.get("template", "{:05d}.jpg")
    try:
        template.format(1)
    except (IndexError, KeyError, ValueError):
        raise DataError(f"frame template '{template}' must contain one integer field, e.g. {{:05d}}.jpg or img_{{:05d}}.jpg") from None
    return template


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def load_user_clip(path: str | Path, frames: int, size: int, resize_to: tuple[int, int] | None = None) -> torch.Tensor:
    """A user's clip (a video file or a folder of frame images, in name order) sampled like the test protocol:
    the centre frame of each of ``frames`` segments, resized to ``resize_to`` (H, W) -- or, without it, the
    shorter side to ``size`` -- then centre-cropped to ``size``. uint8 (T, C, H, W)."""
    return load_user_views(path, frames, size, resize_to)[0]


def load_user_views(path: str | Path, frames: int, size: int, resize_to: tuple[int, int] | None = None,
                    clips: int = 1, crops: int = 1) -> list[torch.Tensor]:
    """The test protocol's views of a user's clip, as a list dataset's test item holds them: ``clips`` (1: the
    segments' centres; 2: also their starts, TSM's two-clip test) x ``crops`` (1: centre; 3: TSN's three crops
    along the longer side), clip-major; each uint8 (T, C, H, W). Resizing as :func:`load_user_clip`."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path} holds no frame images ({', '.join(IMAGE_SUFFIXES)})")
        idx = segment_indices(len(files), frames, train=False, clips=clips)
        try:
            arrs = [stack_frames([np.asarray(Image.open(files[i]).convert("RGB")) for i in row]) for row in idx]
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise DataError(f"{path}: cannot read its frames ({type(e).__name__})") from None
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        arrs = list(read_picked(path, lambda n: segment_indices(n, frames, train=False, clips=clips), str(path)))
    else:
        raise DataError(f"--video {path}: expected a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder of frames")
    views = []
    for arr in arrs:
        clip = clip_from_frames(arr)  # (T, C, H, W)
        if resize_to is None:
            H, W = clip.shape[-2:]
            resize_to = (size, max(size, round(W * size / H))) if H <= W else (max(size, round(H * size / W)), size)
        clip = resize(clip, resize_to)
        views += three_crops(clip, size) if crops == 3 else [center_crop(clip, size)]
    return views


SPLITS = ("train", "val", "test")


def scored_splits(run: RunConfig) -> tuple[str, ...]:
    """The splits a finished run is scored on: validation (what choices read) and, where the dataset has one,
    the held-out test split (what reported tables read): the built-in benchmark always, a list dataset when a
    labelled test list is given (``--test-list``). Pretraining reads no labels and is scored on none."""
    if run.train.objective != "supervised":
        return ()
    if run.data.dataset == "synthetic" or run.data.test_list:
        return ("val", "test")
    return ("val",)


def build_dataset(run: RunConfig, split: str, *, check: bool | None = None, progress=None) -> ClipDataset:
    """The dataset of a run's ``split`` (train / val / test); train applies the training augmentation."""
    cfg, frames = run.data, run.model.frames
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}': choose from {', '.join(SPLITS)}")
    if split == "test" and "test" not in scored_splits(run):
        raise DataError(f"dataset {cfg.dataset} has no test split here: pass a labelled test list with --test-list "
                        "(Something-Something publishes none with labels: its tables report validation)")
    train = split == "train"
    if cfg.dataset == "videos":
        if split != "train":
            raise DataError("--dataset videos holds no labels, so it has no validation split: it is for pretraining")
        return FolderClips(cfg, frames=frames, progress=progress)
    if cfg.dataset == "synthetic":
        if frames < syn.MIN_FRAMES:
            raise DataError(f"the built-in benchmark's clips need at least {syn.MIN_FRAMES} frames (its classes "
                            f"move, pause and bounce over time), got --frames {frames}")
        return SyntheticClips(cfg, frames=frames, split=split, train=train)
    paths = resolve_paths(cfg, ("categories", split))
    names = class_names_of(run)
    if len(names) != run.model.num_classes:
        raise DataError(f"{paths['categories']} names {len(names)} classes, the model has {run.model.num_classes}: "
                        f"pass the class list of {cfg.dataset}")
    fmt = cfg.list_format if cfg.list_format != "auto" else cfg.conventions.get("list_format", "auto")
    entries = read_clips(paths[split], fmt, cfg.data_root or None, len(names), names)
    template = frame_template(cfg)
    listed = len(entries)
    if cfg.check if check is None else check:
        entries = check_entries(entries, template, progress, cfg.on_missing)
    ds = ListClips(cfg, frames=frames, entries=entries, template=template, train=train, class_names=names)
    ds.skipped = listed - len(entries)  # listed clips not on disk (--on-missing skip)
    return ds


class FolderClips(ListClips):
    """Every video file and frame folder under ``data_root``, recursively, without labels (each item's label
    is 0): the clips ``selfy-lab pretrain --dataset videos`` learns from. A video that cannot be opened is
    skipped and counted (``skipped``); a frame folder's frames are its images in name order."""

    def __init__(self, cfg: DataConfig, *, frames: int, progress=None):
        entries, self.frame_files, self.skipped = scan_clips(cfg.data_root, progress)
        super().__init__(cfg, frames=frames, entries=entries, template="", train=True, class_names=["unlabeled"])

    def _frame(self, e: ListEntry, number: int) -> np.ndarray:
        path = self.frame_files[e.path][number - 1]
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"cannot read image {path} ({type(err).__name__})") from None


def scan_clips(root: str | Path, progress=None) -> tuple[list[ListEntry], dict[Path, list[Path]], int]:
    """(entries, each frame folder's image files in name order, how many videos could not be opened) of the
    video files and frame folders under ``root``."""
    root = Path(root) if root else None
    if root is None or not root.is_dir():
        raise DataError(f"--data-root {root or '(not given)'} is not a folder: pass the folder that holds your videos")
    videos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    folders: dict[Path, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            folders.setdefault(p.parent, []).append(p)
    entries, skipped = [], 0
    for i, v in enumerate(videos):
        if progress:
            progress(i + 1, len(videos))
        try:
            with av.open(str(v)) as container:
                if not container.streams.video:
                    raise ValueError("no video stream")
        except Exception:  # not a video, damaged, or a codec this build lacks: skipped and counted
            skipped += 1
            continue
        entries.append(ListEntry(v, 0, 0, str(v)))
    entries += [ListEntry(d, len(files), 0, str(d)) for d, files in folders.items()]
    if not entries:
        extra = f" ({skipped} video files could not be opened)" if skipped else ""
        raise DataError(f"{root} holds no readable videos ({', '.join(VIDEO_SUFFIXES)}) or frame folders{extra}")
    return entries, {d: files for d, files in folders.items()}, skipped


def class_names_of(run: RunConfig) -> list[str]:
    """The class names of a run's dataset, without reading its clip lists."""
    if run.data.dataset == "synthetic":
        return list(syn.CLASS_NAMES)
    if run.data.dataset == "videos":
        return ["unlabeled"]
    return read_class_names(resolve_paths(run.data, ("categories",))["categories"])


def class_rows(dataset: str, data_root: str = "", categories: str = "") -> tuple[list[str], list[list[str]]]:
    """`selfy-lab describe`: one row per class (label, name, and for the built-in benchmark its pair and
    kind) with the class its clips become when flipped; returns (columns, rows)."""
    if dataset == "synthetic":
        pairs = mirror_pairs(list(syn.CLASS_NAMES))
        return (["label", "class", "pair", "kind", "flip ->"],
                [[str(i), c.name, c.pair, c.kind, str(pairs.get(i, "-"))] for i, c in enumerate(syn.CLASSES)])
    try:
        cfg = DataConfig(dataset=dataset, data_root=data_root or "", categories=categories or "")
    except ValueError as e:
        raise DataError(str(e)) from None
    names = read_class_names(resolve_paths(cfg, ("categories",))["categories"])
    pairs = mirror_pairs(names)
    return ["label", "class", "flip ->"], [[str(i), n, str(pairs.get(i, "-"))] for i, n in enumerate(names)]
