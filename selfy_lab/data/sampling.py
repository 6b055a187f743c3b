"""TSN segment sampling: split a video into T equal segments, take one frame per segment."""
from __future__ import annotations

import numpy as np


def segment_indices(num_frames: int, frames: int, *, train: bool, rng: np.random.Generator | None = None,
                    clips: int = 1) -> np.ndarray:
    """0-based frame indices, shape (clips, T).

    Training: a random frame in each segment. Testing: the centre of each segment; a second clip
    takes the start of each segment (TSM's two-clip test).
    """
    seg = num_frames / frames
    i = np.arange(frames)
    if train:
        rng = rng or np.random.default_rng()
        idx = np.floor((i + rng.random(frames)) * seg)[None]
    else:
        starts = [0.5, 0.0][:clips]
        idx = np.stack([np.floor((i + s) * seg) for s in starts])
    return np.clip(idx.astype(np.int64), 0, num_frames - 1)
