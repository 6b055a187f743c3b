"""What is in this video? (``selfy-lab predict``): a trained model's top-k classes, with their probabilities, for
each of a user's videos or frame folders, sampled as the test protocol samples a clip (one clip of the model's
frames, the centre crop; or 2 clips x 3 crops, their logits averaged). A video that cannot be decoded is reported
and the others go on."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..core.errors import DataError, SelfyError
from ..data.datasets import IMAGE_SUFFIXES, class_names_of
from ..data.lists import VIDEO_SUFFIXES
from ..engine.checkpoint import load_run
from ..store import results as R
from .explain import predict_clip, user_views

# weights: "final", or "after N of M epochs" for an unfinished run's last checkpoint
PREDICTION_COLUMNS = ("video", "rank", "class_id", "class", "probability", "weights")


def inputs_of(paths: list[Path]) -> list[Path]:
    """The clips named by ``paths``: a video file or a folder of frames as itself; a folder of videos (or of
    frame folders) as each of them, in name order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise SelfyError(f"{p} does not exist: pass video files, frame folders or folders of them")
        if p.is_dir() and not any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir()):
            inner = sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_SUFFIXES or f.is_dir())
            if not inner:
                raise SelfyError(f"{p} holds no videos ({', '.join(VIDEO_SUFFIXES)}), frames or frame folders")
            out += inner
        else:
            out.append(p)
    return out


def predict(paths: list[Path], model_path: Path, top_k: int = 5, device: str = "auto",
            on_skip: Callable[[Path, str], None] = lambda path, why: None, clips: int = 1,
            crops: int = 1, on_note: Callable[[str], None] = lambda line: None) -> list[dict]:
    """Rows (``PREDICTION_COLUMNS``) of the ``top_k`` classes of every clip of ``paths`` by the model of
    ``model_path`` (a run folder, its checkpoint or an export), over the test protocol's ``clips`` (1 or 2) x
    ``crops`` (1 or 3) views, their logits averaged; an unreadable clip calls ``on_skip``, an unfinished run's
note ``on_note`` (and each row's ``weights`` says which)."""
    if clips not in (1, 2) or crops not in (1, 3):
        raise SelfyError(f"the test protocol is --clips 1 or 2 and --crops 1 or 3, got {clips} and {crops}")
    videos = inputs_of(paths)
    run, model = load_run(model_path, device)
    weights = R.weights_tag(model_path)
    unfinished = R.unfinished_note(model_path)
    if unfinished:
        on_note(f"note: {unfinished}")
    try:
        names = class_names_of(run)
    except SelfyError:  # a real dataset whose categories file is not on this machine
        names = [str(i) for i in range(run.model.num_classes)]
    k = max(1, min(top_k, len(names)))
    rows = []
    for clip in videos:
        try:
            x = user_views(clip, run, clips, crops)
        except DataError as e:
            on_skip(clip, str(e))
            continue
        probs = torch.from_numpy(predict_clip(model, x))
        top = torch.topk(probs, k)
        rows += [{"video": str(clip), "rank": r + 1, "class_id": int(i), "class": names[int(i)],
                  "probability": float(p), "weights": weights} for r, (p, i) in enumerate(zip(top.values, top.indices))]
    return rows
