"""The built-in motion benchmark: procedural clips whose label is in the motion only.

Like Something-Something, appearance carries no label information: the actor's shape, colours,
texture, size and start position, the textured background, a ground line and static distractor
objects are drawn from the same distributions for every class. The classes come in pairs:

* four exact time-reversal pairs (a clip of one class, played backwards, is a clip of the other):
  moving left / right, approaching / receding, appearing / disappearing, rotating clockwise /
  counterclockwise. A frame-order-blind model (TSN with average consensus) is at chance within them;
* a mirror pair with the same frames in another order: left then right / right then left;
  (every clip holds the actor, a second object -- the one pushed in the collision classes, static
  elsewhere -- and by default 0-1 static distractors; more clutter slows learning from scratch a lot:
  with 0-2, the quick preset's SELFY model did not leave chance within its 8 epochs)
* three pairs that need context over more than two frames: moving with a pause / steadily,
  pushing another object / pretending to push it (a collision), falling and bouncing / landing.

Every clip is a pure function of (seed, split, index): generation is deterministic, needs no
download, and train / val / test are disjoint because the split enters the random seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SPLITS = {"train": 0, "val": 1, "test": 2}
MIN_FRAMES = 3  # the fewest frames in which every class's motion can be drawn
GENERATOR_VERSION = 3  # bump when rendering changes: it keys the on-disk cache


@dataclass(frozen=True)
class MotionClass:
    name: str
    pair: str  # pair id: classes sharing it are only told apart by their motion's order or context
    kind: str  # "reverse", "mirror" or "context"


CLASSES: tuple[MotionClass, ...] = (
    MotionClass("moving something left", "left/right", "reverse"),
    MotionClass("moving something right", "left/right", "reverse"),
    MotionClass("something approaching", "approach/recede", "reverse"),
    MotionClass("something receding", "approach/recede", "reverse"),
    MotionClass("something appearing", "appear/disappear", "reverse"),
    MotionClass("something disappearing", "appear/disappear", "reverse"),
    MotionClass("rotating something clockwise", "rotation", "reverse"),
    MotionClass("rotating something counterclockwise", "rotation", "reverse"),
    MotionClass("moving something left then right", "left-right order", "mirror"),
    MotionClass("moving something right then left", "left-right order", "mirror"),
    MotionClass("moving something with a pause", "pause", "context"),
    MotionClass("moving something steadily", "pause", "context"),
    MotionClass("pushing something with something", "push", "context"),
    MotionClass("pretending to push something", "push", "context"),
    MotionClass("something falling and bouncing back up", "bounce", "context"),
    MotionClass("something falling and landing", "bounce", "context"),
)
CLASS_NAMES = tuple(c.name for c in CLASSES)

# actor and distractor shapes: unions of convex polygons in unit coordinates; none is rotation-invariant
# at the per-frame rotation steps used (<= 10 degrees), so rotation is visible for every shape
_SHAPES = {
    "square": [[(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]],
    "triangle": [[(0.0, -1.0), (0.87, 0.5), (-0.87, 0.5)]],
    "L": [[(-0.9, -0.9), (-0.3, -0.9), (-0.3, 0.9), (-0.9, 0.9)], [(-0.9, 0.3), (0.9, 0.3), (0.9, 0.9), (-0.9, 0.9)]],
    "T": [[(-0.9, -0.9), (0.9, -0.9), (0.9, -0.35), (-0.9, -0.35)], [(-0.28, -0.9), (0.28, -0.9), (0.28, 0.9), (-0.28, 0.9)]],
    "cross": [[(-0.9, -0.3), (0.9, -0.3), (0.9, 0.3), (-0.9, 0.3)], [(-0.3, -0.9), (0.3, -0.9), (0.3, 0.9), (-0.3, 0.9)]],
    "arrow": [[(-0.9, -0.25), (0.2, -0.25), (0.2, 0.25), (-0.9, 0.25)], [(0.1, -0.8), (0.95, 0.0), (0.1, 0.8)]],
    "kite": [[(0.0, -1.0), (0.6, -0.1), (0.0, 1.0), (-0.6, -0.1)]],
}
_TEXTURES = ("solid", "stripes", "checker", "two-tone")
_BACKGROUNDS = ("flat", "blobs", "stripes", "gradient")


@dataclass
class _Object:
    shape: str
    radius: float  # pixels
    colour: np.ndarray  # (3,) in [0, 1]
    colour2: np.ndarray
    texture: str
    tex_freq: float
    x: float
    y: float
    angle: float  # radians
    scale: float = 1.0
    alpha: float = 1.0


class Renderer:
    """Draws objects with anti-aliased edges on a fixed pixel grid."""

    def __init__(self, size: int):
        self.size = size
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        self.xs, self.ys = xs, ys

    def draw(self, canvas: np.ndarray, obj: _Object) -> None:
        r = obj.radius * obj.scale
        # only the pixels around the object change: every shape lies within 1.3 radii of its centre, and the
        # soft edge adds half a pixel (outside, the mask is exactly 0 and the canvas stays as it is)
        reach = 1.3 * r + 2
        y0, y1 = max(0, int(obj.y - reach)), min(self.size, int(np.ceil(obj.y + reach)) + 1)
        x0, x1 = max(0, int(obj.x - reach)), min(self.size, int(np.ceil(obj.x + reach)) + 1)
        if y0 >= y1 or x0 >= x1:
            return
        canvas = canvas[y0:y1, x0:x1]
        c, s = np.cos(obj.angle), np.sin(obj.angle)
        dx, dy = self.xs[y0:y1, x0:x1] - obj.x, self.ys[y0:y1, x0:x1] - obj.y
        u = (c * dx + s * dy) / r  # object coordinates: rotate by -angle, unit radius
        v = (-s * dx + c * dy) / r
        inside = None
        for edges in _EDGES[obj.shape]:
            d = _convex_inside_distance(u, v, edges) * r  # pixels, > 0 inside
            inside = d if inside is None else np.maximum(inside, d)
        mask = np.clip(inside + 0.5, 0.0, 1.0) * obj.alpha  # one-pixel soft edge
        if obj.texture == "solid":
            t = np.zeros_like(u)
        elif obj.texture == "stripes":
            t = (np.sin(u * obj.tex_freq * np.pi) > 0).astype(np.float32)
        elif obj.texture == "checker":
            t = ((np.floor(u * obj.tex_freq) + np.floor(v * obj.tex_freq)) % 2).astype(np.float32)
        else:  # two-tone: split along the object's own axis, so it rotates with the object
            t = (u > 0).astype(np.float32)
        colour = obj.colour[None, None] * (1 - t[..., None]) + obj.colour2[None, None] * t[..., None]
        canvas *= 1 - mask[..., None]
        canvas += colour * mask[..., None]


def _inward_edges(poly) -> list[tuple[np.ndarray, np.ndarray]]:
    """(vertex, unit inward normal) of every edge of a convex polygon (either vertex order)."""
    pts = np.asarray(poly, dtype=np.float32)
    centre = pts.mean(0)
    edges = []
    for a, b in zip(pts, np.roll(pts, -1, axis=0)):
        e = b - a
        n = np.array([-e[1], e[0]], dtype=np.float32)
        n /= np.linalg.norm(n)
        if np.dot(centre - a, n) < 0:
            n = -n  # point the normal inward
        edges.append((a, n))
    return edges


_EDGES = {name: [_inward_edges(poly) for poly in polys] for name, polys in _SHAPES.items()}


def _convex_inside_distance(u, v, edges) -> np.ndarray:
    """Signed distance to the boundary of a convex polygon given by its inward edges: > 0 inside."""
    d = None
    for a, n in edges:
        di = (u - a[0]) * n[0] + (v - a[1]) * n[1]
        d = di if d is None else np.minimum(d, di)
    return d


def _random_colour(rng, avoid: np.ndarray | None = None, min_dist: float = 0.35) -> np.ndarray:
    for _ in range(50):
        c = rng.uniform(0.0, 1.0, 3).astype(np.float32)
        if avoid is None or np.abs(c - avoid).mean() >= min_dist / 1.5 and np.linalg.norm(c - avoid) >= min_dist:
            return c
    return (1.0 - avoid).astype(np.float32)


def _background(rng, size: int) -> np.ndarray:
    base = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    kind = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "flat":
        pattern = np.zeros((size, size), np.float32)
    elif kind == "blobs":
        g = rng.normal(0, 1, (6, 6)).astype(np.float32)
        idx = np.linspace(0, 5, size)
        i0 = np.floor(idx).astype(int).clip(0, 4)
        f = (idx - i0).astype(np.float32)
        rows = g[i0] * (1 - f)[:, None] + g[i0 + 1] * f[:, None]
        pattern = rows[:, i0] * (1 - f)[None] + rows[:, i0 + 1] * f[None]
        pattern /= np.abs(pattern).max() + 1e-6
    elif kind == "stripes":
        th = rng.uniform(0, np.pi)
        pattern = np.sign(np.sin((np.cos(th) * xs + np.sin(th) * ys) * rng.uniform(6, 14) * np.pi))
    else:
        th = rng.uniform(0, 2 * np.pi)
        pattern = (np.cos(th) * (xs - 0.5) + np.sin(th) * (ys - 0.5)) * 2
    tint = rng.uniform(-1, 1, 3).astype(np.float32)
    bg = base[None, None] + 0.12 * pattern[..., None] * tint[None, None]
    # a ground line in every clip (it matters for the bouncing / landing classes only)
    floor = int(size * rng.uniform(0.86, 0.93))
    bg[floor : floor + max(1, size // 32)] = _random_colour(rng, base)
    return np.clip(bg, 0, 1), floor


def _random_object(rng, size: int, bg: np.ndarray) -> _Object:
    shape = list(_SHAPES)[rng.integers(len(_SHAPES))]
    colour = _random_colour(rng, bg.reshape(-1, 3).mean(0))
    return _Object(
        shape=shape, radius=size * rng.uniform(0.10, 0.15), colour=colour,
        colour2=_random_colour(rng, colour, 0.3), texture=_TEXTURES[rng.integers(len(_TEXTURES))],
        tex_freq=float(rng.uniform(2.0, 3.5)), x=0.0, y=0.0, angle=float(rng.uniform(0, 2 * np.pi)),
    )


def _lin(a: float, b: float, T: int) -> np.ndarray:
    return np.linspace(a, b, T, dtype=np.float32)


def _vertical(pause: bool, rng, T: int, S: int) -> np.ndarray:
    """Per-frame y of a vertical move up or down, with a pause in the middle or steadily."""
    d = S * rng.uniform(0.3, 0.45) * (1 if rng.random() < 0.5 else -1)
    y_start = S / 2 - d / 2
    if pause:
        p_max = max(1, min(T // 3, T - 2))
        p = int(rng.integers(min(2, p_max), p_max + 1))  # frames of rest
        k = int(rng.integers(1, max(2, T - p)))  # the pause starts after k moving steps
        steps = np.ones(T - 1, np.float32)
        steps[k : k + p] = 0.0
        prof = np.concatenate([[0.0], np.cumsum(steps)]) / steps.sum()
    else:
        prof = np.linspace(0, 1, T)
    return (y_start + d * prof).astype(np.float32)


def _push(push: bool, rng, T: int, S: int, actor: _Object, other: _Object, floor: int):
    """Per-frame (x, y) of the actor and of the other object: A pushes B along a diagonal (B moves on after
    the contact, A stops), or pretends to (A goes back the way it came, B never moves)."""
    direction = np.array([rng.choice([-1, 1]), rng.choice([-1, 1])], np.float32) / np.sqrt(2)
    contact = actor.radius * 0.9 + other.radius * 0.9
    tc = int(rng.integers(max(2, T // 2 - 1), T // 2 + 2))  # frame of contact
    speed = S * rng.uniform(0.06, 0.08)
    centre = np.array([S / 2, floor / 2], np.float32)
    b0 = centre - direction * (speed * (T - 1 - tc)) / 2 + direction * contact / 2
    a_contact = b0 - direction * contact
    t = np.arange(T, dtype=np.float32)
    a = a_contact[None] + direction[None] * (speed * np.minimum(t - tc, 0))[:, None]  # (T, 2)
    b = np.repeat(b0[None], T, 0)
    if push:
        b = b0[None] + direction[None] * (speed * np.maximum(t - tc, 0))[:, None]
    else:
        a = a_contact[None] - direction[None] * (speed * np.abs(t - tc))[:, None]
    return (a[:, 0], a[:, 1]), (b[:, 0], b[:, 1])


def _fall(bounce: bool, rng, T: int, m: float, actor: _Object, floor: int) -> np.ndarray:
    """Per-frame y of a fall from rest that bounces back up (restitution 0.6) or lands and stays."""
    ground = floor - actor.radius * 0.9
    h = ground - rng.uniform(m * 0.8, ground - (ground - m) * 0.55)
    t_hit = rng.uniform(0.4, 0.6) * (T - 1)
    g = 2 * h / t_hit**2
    t = np.arange(T, dtype=np.float32)
    y = ground - h + 0.5 * g * t**2
    after = t > t_hit
    if bounce:
        v_up = 0.6 * g * t_hit
        tt = t - t_hit
        y = np.where(after, ground - (v_up * tt - 0.5 * g * tt**2), y)
    y = np.where(after, np.minimum(y, ground), y) if bounce else np.minimum(y, ground)
    return y.astype(np.float32)


def _trajectory(label: int, rng, T: int, size: int, actor: _Object, other: _Object, floor: int):
    """Per-frame (x, y, angle, scale, alpha) of the actor, and the other object's (x, y) (or None)."""
    S = size
    m = S * 0.18  # margin from the border
    x0, y0 = rng.uniform(m, S - m), rng.uniform(m, floor - m * 0.6)
    angle = np.full(T, actor.angle, np.float32)
    scale = np.ones(T, np.float32)
    alpha = np.ones(T, np.float32)
    ox = oy = None
    base = label - label % 2  # the first class of the pair; odd members are derived from it
    reverse = False
    if base == 0:  # moving left (right = the reverse)
        d = S * rng.uniform(0.3, 0.5)
        x0 = rng.uniform(m + d, S - m)
        xs, ys = _lin(x0, x0 - d, T), np.full(T, y0, np.float32)
        reverse = label == 1
    elif base == 2:  # approaching: growing (receding = the reverse)
        xs, ys = np.full(T, x0, np.float32), np.full(T, y0, np.float32)
        scale = _lin(rng.uniform(0.45, 0.65), rng.uniform(1.35, 1.6), T)
        reverse = label == 3
    elif base == 4:  # appearing: fading in over a random span (disappearing = the reverse)
        xs, ys = np.full(T, x0, np.float32), np.full(T, y0, np.float32)
        t0, t1 = rng.uniform(0.0, 0.25), rng.uniform(0.6, 1.0)
        alpha = np.clip((np.linspace(0, 1, T) - t0) / (t1 - t0), 0, 1).astype(np.float32)
        reverse = label == 5
    elif base == 6:  # rotating clockwise on screen (y down: growing angle) (counterclockwise = the reverse)
        xs, ys = np.full(T, x0, np.float32), np.full(T, y0, np.float32)
        angle = actor.angle + _lin(0, np.deg2rad(rng.uniform(40, 70)), T)
        reverse = label == 7
    elif base == 8:  # left then right (right then left = its mirror image)
        d1, d2 = S * rng.uniform(0.2, 0.3), S * rng.uniform(0.2, 0.3)
        k = int(rng.integers(max(2, T // 3), max(3, 2 * T // 3) + 1))  # turning frame
        sgn = -1.0 if label == 8 else 1.0
        x0 = S / 2 + rng.uniform(-0.1, 0.1) * S
        turn, end = x0 + sgn * d1, x0 - sgn * d2  # first away in direction sgn, then back past the start
        xs = np.concatenate([_lin(x0, turn, k + 1)[:-1], _lin(turn, end, T - k)])
        ys = np.full(T, y0, np.float32)
    elif base == 10:  # vertical motion, with a pause in the middle (10) or steadily (11)
        xs, ys = np.full(T, x0, np.float32), _vertical(label == 10, rng, T, S)
    elif base == 12:  # pushing (12) / pretending to push (13) along a diagonal
        (xs, ys), (ox, oy) = _push(label == 12, rng, T, S, actor, other, floor)
    else:  # falling from rest, then bouncing back up (14) or landing and staying (15)
        xs, ys = np.full(T, x0, np.float32), _fall(label == 14, rng, T, m, actor, floor)
    track = [xs, ys, angle, scale, alpha]
    if reverse:
        track = [a[::-1].copy() for a in track]
    return track, (ox, oy)


def render_clip(seed: int, split: str, index: int, frames: int = 8, size: int = 64, distractors: int = 1,
                noise: float = 0.02) -> tuple[np.ndarray, int]:
    """One clip as uint8 (T, H, W, 3) and its label; a pure function of its arguments.

    Labels cycle through the classes (index mod K), so every split is balanced."""
    rng = np.random.default_rng([seed, SPLITS[split], index])
    label = index % len(CLASSES)
    bg, floor = _background(rng, size)
    r = Renderer(size)
    actor = _random_object(rng, size, bg)
    other = _random_object(rng, size, bg)
    n_distract = int(rng.integers(0, distractors + 1))
    static = [_random_object(rng, size, bg) for _ in range(n_distract)]
    for d in static:
        d.x, d.y = rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.8) * size
    (xs, ys, ang, sc, al), (ox, oy) = _trajectory(label, rng, frames, size, actor, other, floor)
    if ox is None:  # the second object is in every clip (the object count carries no label); static here
        ox = np.full(frames, rng.uniform(0.1, 0.9) * size, np.float32)
        oy = np.full(frames, rng.uniform(0.1, 0.8) * size, np.float32)
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        canvas = bg.copy()
        for d in static:
            r.draw(canvas, d)
        other.x, other.y = float(ox[t]), float(oy[t])
        r.draw(canvas, other)
        actor.x, actor.y, actor.angle, actor.scale, actor.alpha = (float(xs[t]), float(ys[t]), float(ang[t]),
                                                                    float(sc[t]), float(al[t]))
        r.draw(canvas, actor)
        canvas += rng.normal(0, noise, canvas.shape).astype(np.float32)  # sensor noise, fresh every frame
        out[t] = (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
    return out, label


def pair_metrics(logits, labels) -> dict[str, float]:
    """Accuracies on the benchmark's class pairs.

    * ``order_pairs_top1`` / ``context_pairs_top1``: top-1 on clips of the order-dependent (reverse and
      mirror) / context classes;
    * ``order_pairs_binary``: how often the true class scores above its pair partner (chance 0.5).
    """
    logits, labels = torch.as_tensor(logits).float(), torch.as_tensor(labels).long()
    partner = torch.tensor([i + 1 if i % 2 == 0 else i - 1 for i in range(len(CLASSES))])
    kinds = [c.kind for c in CLASSES]
    pred = logits.argmax(1)
    out = {}
    for name, keep in (("order_pairs", ("reverse", "mirror")), ("context_pairs", ("context",))):
        m = torch.tensor([kinds[int(y)] in keep for y in labels])
        if m.any():
            out[f"{name}_top1"] = (pred[m] == labels[m]).float().mean().item()
            own = logits[m].gather(1, labels[m, None])[:, 0]
            other = logits[m].gather(1, partner[labels[m]][:, None])[:, 0]
            out[f"{name}_binary"] = (own > other).float().mean().item()
    return out
