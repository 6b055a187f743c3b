"""Corruptions as pure functions on uint8 clips (T, H, W, 3), applied before normalisation.

* ``occlusion`` (paper, Sec. 4.5): a centred square cut out (black) with sides 40, 80, 120, 160, 200,
  224 px at severities 1-6 on a 224 frame, scaled with the frame for other sizes.
* ``motion_blur`` (paper): ImageNet-C's motion-blur kernel (``imagecorruptions``) with the paper's
  (radius, sigma) = (15, 5), (10, 8), (15, 12), (20, 15), (25, 20), (30, 25), scaled with the frame side
  / 224, at an angle in [-45, 45] degrees drawn per clip from its seed.
* every ImageNet-C corruption of ``imagecorruptions`` at its own severities 1-5;
* temporal corruptions from video-robustness benchmarks: ``frame_rate_drop`` (each frame held for
  ``severity + 1`` frames, as at a lower frame rate) and ``temporal_blur`` (each frame averaged with its
  ``severity`` neighbours on each side, like a long exposure).

Spatial corruptions touch only the chosen frames (the paper: the centre frame, the 4th of 8); temporal
ones act on the whole clip. Every random choice comes from the clip's seed, so every model sees the same
corrupted clips.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..config.grammar import parse_int_list
from ..core.paper import MOTION_BLUR_RADIUS_SIGMA, OCCLUSION_SIDES_224
from .transforms import clip_from_frames


@dataclass(frozen=True)
class Kind:
    name: str
    severities: int  # valid severities are 1..severities
    temporal: bool  # acts on the whole clip (True) or on chosen frames (False)
    source: str


def _imagenet_c_names() -> list[str]:
    from imagecorruptions import get_corruption_names  # deferred: heavy (numba, OpenCV), needed by corruptions alone

    return list(get_corruption_names("all"))


def kinds() -> dict[str, Kind]:
    out = {
        "occlusion": Kind("occlusion", severities=6, temporal=False, source="paper (Sec. 4.5): centred square cut-out"),
        "blur": Kind("blur", severities=6, temporal=False,
                     source="paper (Sec. 4.5): ImageNet-C motion blur with the paper's (radius, sigma)"),
    }
    for n in _imagenet_c_names():
        out[n] = Kind(n, severities=5, temporal=False, source="ImageNet-C (imagecorruptions)")
    out["frame_rate_drop"] = Kind("frame_rate_drop", severities=5, temporal=True,
                                       source="temporal: frames held (lower frame rate)")
    out["temporal_blur"] = Kind("temporal_blur", severities=5, temporal=True,
                                     source="temporal: average with neighbouring frames")
    return out


def centre_frame(T: int) -> int:
    """0-based centre frame: the 4th of 8 (index 3), the 8th of 16."""
    return (T - 1) // 2


def occlusion_side(severity: int, side: int) -> int:
    """Side of the occluding square at ``severity`` (1-6) on a frame whose shorter side is ``side``."""
    return min(side, round(OCCLUSION_SIDES_224[severity - 1] * side / 224))


def occlusion(frame: np.ndarray, severity: int) -> np.ndarray:
    H, W = frame.shape[:2]
    s = occlusion_side(severity, min(H, W))
    y0, x0 = (H - s) // 2, (W - s) // 2
    out = frame.copy()
    out[y0 : y0 + s, x0 : x0 + s] = 0
    return out


def motion_blur_params(severity: int, side: int) -> tuple[float, float]:
    """The paper's (radius, sigma) at ``severity`` (1-6), scaled from a 224 frame to ``side``."""
    r, s = MOTION_BLUR_RADIUS_SIGMA[severity - 1]
    k = side / 224
    return max(1, round(r * k)), s * k


def motion_blur(frame: np.ndarray, severity: int, angle: float) -> np.ndarray:
    from imagecorruptions.corruptions import _motion_blur  # deferred: as above (ImageNet-C's kernel)

    radius, sigma = motion_blur_params(severity, min(frame.shape[:2]))
    out = _motion_blur(frame, radius=radius, sigma=sigma, angle=angle)
    return np.clip(out, 0, 255).astype(np.uint8)


def imagenet_c(frame: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """One ImageNet-C corruption; their functions draw from numpy's global generator, seeded here."""
    from imagecorruptions import corrupt  # deferred: as above

    state = np.random.get_state()
    try:
        np.random.seed(seed % 2**32)
        return np.asarray(corrupt(frame, severity=severity, corruption_name=name), dtype=np.uint8)
    finally:
        np.random.set_state(state)


def frame_rate_drop(clip: np.ndarray, severity: int) -> np.ndarray:
    hold = severity + 1
    idx = (np.arange(len(clip)) // hold) * hold
    return clip[idx]


def temporal_blur(clip: np.ndarray, severity: int) -> np.ndarray:
    T = len(clip)
    c = clip.astype(np.float32)
    out = np.stack([c[max(0, t - severity) : t + severity + 1].mean(0) for t in range(T)])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def parse_frames(spec: str, T: int) -> tuple[int, ...]:
    """``center`` (default), ``all`` or 1-based frame numbers ``4,5`` -> 0-based indices."""
    spec = str(spec).strip().lower()
    if spec in ("center", "centre"):
        return (centre_frame(T),)
    if spec == "all":
        return tuple(range(T))
    return tuple(i - 1 for i in parse_int_list(spec, "frame", 1, T))


def corrupt_clip(clip: np.ndarray, kind: str, severity: int, frames: tuple[int, ...], seed: int) -> np.ndarray:
    """Corrupt a uint8 clip (T, H, W, 3). Severity 0 returns it unchanged."""
    k = kinds().get(kind)
    if k is None:
        raise ValueError(f"unknown corruption '{kind}': see selfy-lab corrupt --list")
    if not 0 <= severity <= k.severities:
        raise ValueError(f"severity {severity} is out of range for {kind}: valid severities are 1-{k.severities}")
    if severity == 0:
        return clip
    if k.temporal:
        return (frame_rate_drop if kind == "frame_rate_drop" else temporal_blur)(clip, severity)
    rng = np.random.default_rng([seed, 0xC0])
    angle = float(rng.uniform(-45, 45))  # one angle per clip: the same at every severity, for every model
    fn: Callable[[np.ndarray], np.ndarray]
    if kind == "occlusion":
        fn = lambda f: occlusion(f, severity)  # noqa: E731
    elif kind == "blur":
        fn = lambda f: motion_blur(f, severity, angle)  # noqa: E731
    else:
        fn = lambda f: imagenet_c(f, kind, severity, seed)  # noqa: E731
    out = clip.copy()
    for t in frames:
        out[t] = fn(clip[t])
    return out


def corrupt_tensor(clip, kind: str, severity: int, frames: tuple[int, ...], seed: int):
    """Same on a uint8 torch clip (T, C, H, W), as the evaluation pipeline holds it."""
    arr = clip.permute(0, 2, 3, 1).numpy()
    return clip_from_frames(corrupt_clip(arr, kind, severity, frames, seed))
