"""Looking inside trained models: per-frame Grad-CAM and STSS maps as arrays, and ``cam_clips`` /
``stss_clip``, which load models and clips and compute them for `selfy-lab cam` and `selfy-lab stss` (whose
figures :mod:`selfy_lab.reports.viz` draws).

Grad-CAM uses ``pytorch-grad-cam``'s methods unchanged; only two things are specific to clip models whose
2-D backbone sees (B*T, C, H, W): the target is the *clip's* class score (so every frame's map answers
"where in this frame is the evidence for the clip's class"), and the maps are normalised per clip, not per
frame -- the library's per-image min-max scaling would stretch a frame with no evidence to full intensity,
making every frame look alike.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..config.run import RunConfig
from ..core.errors import SelfyError
from ..data import synthetic as syn
from ..data.datasets import build_dataset, class_names_of, load_user_clip, load_user_views
from ..data.transforms import clip_from_frames, normalize
from ..engine.checkpoint import load_run, run_config_of
from ..models.backbones import STAGES, stage_sizes, stages
from ..models.extract import soft_argmax_flow
from ..models.selfsim import stss
from ..models.selfy import STSS
from ..store import results as R

# gradient-based methods of pytorch-grad-cam whose maps come from one layer's activations and gradients
CAM_METHODS = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "eigengradcam",
               "gradcamelementwise")


def _cam_class(name: str):
    import pytorch_grad_cam as pgc  # deferred: heavy (OpenCV and more), needed by the CAM maps alone

    table = {"gradcam": pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus, "xgradcam": pgc.XGradCAM,
             "hirescam": pgc.HiResCAM, "layercam": pgc.LayerCAM, "eigencam": pgc.EigenCAM,
             "eigengradcam": pgc.EigenGradCAM, "gradcamelementwise": pgc.GradCAMElementWise}
    if name not in table:
        raise ValueError(f"unknown CAM method '{name}': choose from {', '.join(CAM_METHODS)}")
    return table[name]


def cam_layer(model, name: str = "res5") -> torch.nn.Module:
    """The module whose output is the map of stage ``name`` (``res5``: right before global average
    pooling). A block inserted after the stage is part of it."""
    layers = stages(model.backbone)
    if name not in layers:
        raise ValueError(f"unknown CAM layer '{name}': choose from {', '.join(layers)}")
    return model.blocks[name] if name in model.blocks else layers[name]


MIN_CAM_CELLS = 7  # the paper's res5 map at 224 input


def auto_cam_layer(size: int, min_cells: int = MIN_CAM_CELLS) -> str:
    """The deepest stage whose map has at least ``min_cells`` x ``min_cells`` cells at ``size`` x ``size`` input
    (res5 at the paper's 224; res3, 8x8, on the built-in benchmark's 64): deeper maps carry more class
    evidence, but a 2x2 map says which frame, not where."""
    sides = stage_sizes(size)
    fit = [name for name in reversed(STAGES) if sides[name] >= min_cells]
    return fit[0] if fit else "res2"


def _flatten_frames(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(0, 1) if x.dim() == 5 else x  # blocks output (B, T, C, h, w)


def clip_cam(model, clip: torch.Tensor, target: int, method: str = "gradcam", layer: str = "res5") -> np.ndarray:
    """Grad-CAM of a uint8 clip (T, C, H, W) for class ``target``: (T, H, W) in [0, 1], one scale per clip."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # deferred: as in _cam_class

    T, _, H, W = clip.shape
    device = next(model.parameters()).device
    x = normalize(clip[None].to(device))  # (1, T, C, H, W)
    cam = _cam_class(method)(model=model, target_layers=[cam_layer(model, layer)], reshape_transform=_flatten_frames)
    try:
        with torch.enable_grad():
            outputs = cam.activations_and_grads(x)  # forward with the library's hooks
            targets = [ClassifierOutputTarget(int(target))]
            model.zero_grad()
            sum(t(o) for t, o in zip(targets, outputs)).backward()
        acts = cam.activations_and_grads.activations[0].cpu().numpy()  # (T, C, h, w)
        grads = cam.activations_and_grads.gradients[0].cpu().numpy()
        raw = cam.get_cam_image(x, cam.target_layers[0], targets, acts, grads, eigen_smooth=False)  # (T, h, w)
    finally:
        cam.activations_and_grads.release()
    raw = np.maximum(raw, 0).astype(np.float32)
    raw = raw / (raw.max() + 1e-12)  # per clip: frames stay comparable
    up = F.interpolate(torch.from_numpy(raw)[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
    return up.clamp(0, 1).numpy()


def predict_clip(model, clip: torch.Tensor | list[torch.Tensor]) -> np.ndarray:
    """Class probabilities (K,) of a uint8 clip (T, C, H, W), or of a test item's views (a list of them: their
    logits averaged first, as the test protocol averages them)."""
    device = next(model.parameters()).device
    views = torch.stack(clip) if isinstance(clip, (list, tuple)) else clip[None]
    with torch.no_grad():
        return torch.softmax(model(normalize(views.to(device))).float().mean(0), -1).cpu().numpy()


# ---- STSS maps ----

def stss_from_model(model, clip: torch.Tensor, block: int = 0) -> dict:
    """The STSS a trained model computes for a uint8 clip (T, C, H, W), at its ``block``-th SELFY block.

    Returns ``S`` (T, L, U, V, h, w), ``offsets``, ``window`` and the feature-map size (h, w)."""
    mods = [m for m in model.modules() if isinstance(m, STSS)]
    if not mods:
        raise ValueError("this model has no SELFY block: use stss_from_pixels, or a model trained with one")
    mod = mods[block]
    captured = {}
    handle = mod.register_forward_hook(lambda m, i, o: captured.setdefault("S", o.detach()))
    try:
        predict_clip(model, clip)
    finally:
        handle.remove()
    vol = captured["S"][0]  # (T, h, w, L, U, V)
    return {"S": vol.permute(0, 3, 4, 5, 1, 2).float().cpu().numpy(), "offsets": mod.offsets, "window": mod.window,
            "source": f"{mod.similarity} STSS at the model's SELFY block", "size": tuple(vol.shape[1:3])}


def stss_from_pixels(clip: torch.Tensor, offsets=(-3, -2, -1, 0, 1, 2, 3), window=(5, 5), cell: int = 4) -> dict:
    """STSS of the raw pixels of a uint8 clip (T, C, H, W), after averaging ``cell`` x ``cell`` blocks
    (no model needed). Features: the normalised colours, mean-removed per clip, so the cosine similarity
    compares colour contrasts rather than brightness."""
    H, W = clip.shape[-2:]
    if cell > min(H, W):  # checked before any pooling or allocation
        raise SelfyError(f"--cell {cell} is larger than the frame ({H}x{W} pixels): use at most {min(H, W)}")
    cells = (H // cell, W // cell)
    if max(window) > 2 * max(cells) + 1:  # wider than every displacement: only padding, and a large allocation
        raise SelfyError(f"window {window[0]}x{window[1]} is larger than the STSS can use: {H}x{W} pixels in "
                         f"{cell}x{cell} cells make it {cells[0]}x{cells[1]} cells (at most "
                         f"{2 * max(cells) + 1}x{2 * max(cells) + 1} is accepted)")
    x = normalize(clip).float()  # (T, C, H, W)
    x = F.avg_pool2d(x, cell)
    x = x - x.mean(dim=(0, 2, 3), keepdim=True)
    S = stss(x[None], tuple(offsets), tuple(window))[0]  # (T, L, U, V, h, w)
    return {"S": S.numpy(), "offsets": tuple(offsets), "window": tuple(window),
            "source": f"cosine STSS of raw pixels ({cell}x{cell} cells)", "size": tuple(x.shape[-2:])}


def model_label(run) -> str:
    m = run.model
    return f"{m.backbone} baseline" if m.block == "none" else f"{m.backbone} l in {m.variant()['offsets']}"


def paper_pair(run_dirs) -> list:
    """The paper's Fig. 7 pair among a sweep's run directories: {1} and the widest offset range, seed 0."""
    cfgs = {d: run_config_of(d) for d in run_dirs}
    seed0 = [d for d in run_dirs if cfgs[d].train.seed == 0 and cfgs[d].model.block != "none"]
    one = [d for d in seed0 if cfgs[d].model.offsets == (1,)]
    widest = sorted(seed0, key=lambda d: len(cfgs[d].model.offsets))[-1:]
    return one[:1] + [d for d in widest if d not in one]


def explain_clip(models: list, x: torch.Tensor, names: list[str], label: int | None = None, target: int | None = None,
                 method: str = "gradcam", layer: str = "res5") -> list[dict]:
    """One row per (label, model) pair for a uint8 clip (T, C, H, W): its prediction and the CAM of ``target``
    (default: the model's own prediction); ``correct`` is None when the clip's ``label`` is unknown."""
    rows = []
    for tag, m in models:
        probs = predict_clip(m, x)
        pred = int(probs.argmax())
        explained = pred if target is None else target
        rows.append({"label": tag, "cam": clip_cam(m, x, explained, method, layer), "pred": names[pred],
                     "prob": float(probs[pred]), "correct": None if label is None else pred == label,
                     "target": names[explained]})
    return rows


def compare_cams(models: list, dataset, *, clips: list[int] | None = None, class_id: int | None = None,
                 disagree: bool = False, count: int = 2, method: str = "gradcam", layer: str = "res5") -> list[dict]:
    """CAMs of several trained models on the same validation clips.

    ``models``: (label, model) pairs. Clips: the given indices, else the first ``count`` clips (of
    ``class_id`` if given) where -- with ``disagree`` -- the models' predictions differ and one is right.
    The CAM explains ``class_id`` when given, else each model's prediction. Returns one dict per clip:
    ``index``, ``label``, ``frames`` uint8 (T, H, W, 3), ``rows`` (see :func:`explain_clip`)."""
    chosen = list(clips or [])
    if not chosen:
        labels = dataset.labels()
        for i in range(len(dataset)):
            if class_id is not None and labels[i] != class_id:
                continue
            x, y = dataset[(i, 0)]
            preds = [int(predict_clip(m, x).argmax()) for _, m in models]
            if not disagree or (len(set(preds)) > 1 and y in preds):
                chosen.append(i)
            if len(chosen) == count:
                break
    names = dataset.class_names
    out = []
    for i in chosen:
        x, y = dataset[(i, 0)]
        x = x[0] if x.dim() == 5 else x
        out.append({"index": i, "label": names[y], "frames": x.permute(0, 2, 3, 1).numpy(),
                    "rows": explain_clip(models, x, names, y, class_id, method, layer)})
    return out


def user_clip(path: Path, run, frames: int | None = None, size: int | None = None) -> torch.Tensor:
    """A user's video or frame folder as a run's test protocol samples it (the built-in benchmark's models:
    shorter side to the run's size; others: the run's resize), uint8 (T, C, H, W)."""
    resize_to = None if run is None or run.data.dataset == "synthetic" else run.data.resize
    return load_user_clip(path, frames or run.model.frames, size or run.data.size, resize_to)


def user_views(path: Path, run, clips: int = 1, crops: int = 1) -> list[torch.Tensor]:
    """A user's video or frame folder as a run's test protocol views it: ``clips`` x ``crops`` uint8 clips."""
    resize_to = None if run.data.dataset == "synthetic" else run.data.resize
    return load_user_views(path, run.model.frames, run.data.size, resize_to, clips, crops)


# ---- the command line's studies: models and clips in, maps out (viz draws them) ----

def cam_clips(checkpoints: list[Path], *, results_root: Path = Path("results"), clips: list[int] | None = None,
              class_name: str | None = None, disagree: bool = False, count: int = 2, method: str = "gradcam",
              layer: str = "auto", data_changes: dict | None = None, device: str = "auto",
              video: Path | None = None, note: Callable[[str], None] = lambda line: None,
              sweep: Path | None = None) -> list[dict]:
    """`selfy-lab cam`'s study: CAMs of the models (default: the paper's Fig. 7 pair of the offsets sweep
    ``sweep``, else of the one ``results_root``'s README names for Table 3a) on chosen validation clips, or on
    a user's ``video`` (a file or a frame folder), at ``layer`` (``auto``: :func:`auto_cam_layer` of the
    clips' size), explaining ``class_name`` if given, else each model's prediction. Several models without
    ``clips`` or a class are shown on clips where they disagree, or -- where they agree everywhere -- on the
    first ``count`` clips, which ``note`` (a one-line message) says. Returns per clip its ``frames``, ``rows``
    (label, prediction, correct, the class explained, the CAMs), ``layer``, map ``cells``, ``title`` and file
    ``stem``: what :func:`selfy_lab.reports.viz.write_cam_figures` draws."""
    if method not in CAM_METHODS:
        raise SelfyError(f"unknown CAM method '{method}': choose from {', '.join(CAM_METHODS)}")
    if layer not in ("auto", *STAGES):
        raise SelfyError(f"unknown CAM layer '{layer}': choose from auto, {', '.join(STAGES)}")
    models, run0 = _cam_models(checkpoints, results_root, device, note, sweep=sweep)
    data = {k: v for k, v in (data_changes or {}).items() if v}
    run0 = replace(run0, data=replace(run0.data, **data, test_clips=1, test_crops=1))
    if video is not None:
        names, ds = class_names_of(run0), None
    else:
        ds = build_dataset(run0, "val")
        names = ds.class_names
    class_id = None if class_name is None else _class_id(class_name, names)
    layer = auto_cam_layer(run0.data.size) if layer == "auto" else layer
    cells = stage_sizes(run0.data.size)[layer]
    if video is not None:
        if clips or disagree:
            raise SelfyError("--video explains one clip of yours: drop --clip / --disagree")
        x = user_clip(video, run0)
        shown = [{"index": Path(video).stem, "label": Path(video).name, "frames": x.permute(0, 2, 3, 1).numpy(),
                  "rows": explain_clip(models, x, names, None, class_id, method, layer)}]
    else:
        bad = [c for c in (clips or []) if not 0 <= c < len(ds)]
        if bad:
            raise SelfyError(f"--clip {bad[0]} is out of range: the validation set has {len(ds)} clips")
        by_default = not disagree and len(models) > 1 and class_id is None and not clips
        shown = compare_cams(models, ds, clips=clips, class_id=class_id, disagree=disagree or by_default, count=count,
                              method=method, layer=layer)
        if not shown and by_default:
            shown = compare_cams(models, ds, count=count, method=method, layer=layer)
            note(f"no validation clip where the models' predictions differ and one is right: showing the first "
                 f"{len(shown)} clips")
    if not shown:
        raise SelfyError("no validation clip matches (the models agree everywhere?): pass --clip N")
    for r in shown:
        what = r["label"] if video is not None else f"clip {r['index']}: {r['label']}"
        r.update(layer=layer, cells=cells, title=f"{what}  ({method} at {layer}, {cells}x{cells} map, normalised per clip)",
                 stem=f"cam_{r['index']}" if video is not None else f"cam_clip{r['index']}")
    return shown


def _cam_models(checkpoints: list[Path], results_root: Path, device: str,
                note: Callable[[str], None] = lambda line: None, *,
                sweep: Path | None = None) -> tuple[list[tuple[str, torch.nn.Module]], RunConfig]:
    """The models a CAM figure compares, each with its row label (default: the paper's Fig. 7 pair of the
    offsets sweep ``sweep``, else of the one ``results_root``'s README names), and the first one's run config.
    An unfinished run is said first (``note``) and its row label says it too."""
    paths = list(checkpoints)
    if not paths:
        sweep = sweep or R.readme_offsets_sweep(results_root)
        paths = paper_pair(R.sweep_run_dirs(sweep))
        if len(paths) < 2:
            raise SelfyError(f"the offsets sweep {sweep} lacks the {{1}} or a range run: pass --checkpoint twice")
    loaded = [load_run(p, device) for p in paths]
    run0 = loaded[0][0]
    if any(r.model.frames != run0.model.frames or r.data.size != run0.data.size for r, _ in loaded):
        raise SelfyError("the models differ in frames or input size: compare models trained on the same clips")
    labels = [model_label(r) for r, _ in loaded]
    if len(set(labels)) < len(labels):
        labels = [f"{lab} [{Path(p).name}]" for lab, p in zip(labels, paths)]
    for i, p in enumerate(paths):
        unfinished = R.unfinished_note(p)
        if unfinished:
            note(f"note: {unfinished}")
            labels[i] += f" (unfinished: {R.weights_tag(p)})"
    return list(zip(labels, [m for _, m in loaded])), run0


def _class_id(class_name: str, names: list[str]) -> int:
    """The label id ``class_name`` names: an id, or a class name in any case."""
    class_id = int(class_name) if class_name.isdigit() else next(
        (i for i, n in enumerate(names) if n.lower() == class_name.lower()), None)
    if class_id is None or not 0 <= class_id < len(names):
        raise SelfyError(f"unknown class '{class_name}': give a label id or a name of the dataset's classes")
    return class_id


def stss_clip(checkpoint: Path | None = None, *, clip: int = 0, query: tuple[int, int, int] | None = None,
              offsets: tuple[int, ...] | None = None, window: tuple[int, int] | None = None, cell: int = 4,
              frames: int = 8, size: int = 64, device: str = "auto", video: Path | None = None) -> dict:
    """`selfy-lab stss`'s study: a clip's STSS, at a trained model's block (``checkpoint``) or from raw pixels;
    the clip is a validation clip of the model, a built-in benchmark clip, or a user's ``video`` (a file or a
    frame folder). Returns the clip's ``frames`` (uint8 (T, H, W, 3)) and ``name``, the STSS (``st``; its
    ``source``) and the ``query`` cell (default: :func:`default_query`): what
    :func:`selfy_lab.reports.viz.write_stss_figures` draws."""
    if checkpoint is not None:
        if offsets or window:
            raise SelfyError("--offsets / --window apply to raw pixels; a model's STSS uses the model's own")
        run, model = load_run(checkpoint, device)
        if video is not None:
            x, name = user_clip(video, run), Path(video).name
        else:
            ds = build_dataset(run, "val")
            if not 0 <= clip < len(ds):
                raise SelfyError(f"--clip {clip} is out of range: the validation set has {len(ds)} clips")
            x, y = ds[(clip, 0)]
            x = x[0] if x.dim() == 5 else x
            name = ds.class_names[y]
        try:
            st = stss_from_model(model, x)
        except ValueError as e:
            raise SelfyError(str(e)) from None
    elif video is not None:
        offsets = offsets or (-3, -2, -1, 0, 1, 2, 3)
        if max(abs(o) for o in offsets) >= frames:
            raise SelfyError(f"offsets reach beyond a {frames}-frame clip")
        x, name = user_clip(video, None, frames, size), Path(video).name
        st = stss_from_pixels(x, offsets, window or (5, 5), cell)
    else:
        offsets = offsets or (-3, -2, -1, 0, 1, 2, 3)
        if max(abs(o) for o in offsets) >= frames:
            raise SelfyError(f"offsets reach beyond a {frames}-frame clip")
        arr, y = syn.render_clip(0, "val", clip, frames, size)
        x = clip_from_frames(arr)
        st = stss_from_pixels(x, offsets, window or (5, 5), cell)
        name = syn.CLASS_NAMES[y]
    T = st["S"].shape[0]
    h, w = st["size"]
    if query is not None and not (0 <= query[0] < T and 0 <= query[1] < h and 0 <= query[2] < w):
        raise SelfyError(f"--query {','.join(map(str, query))} is outside the STSS: t < {T}, y < {h}, x < {w}")
    return {"frames": x.permute(0, 2, 3, 1).numpy(), "st": st, "name": name, "source": st["source"],
            "query": query or default_query(st)}


def default_query(st: dict) -> tuple[int, int, int]:
    """(t, y, x) in feature cells: the centre frame, at the cell whose similarity peaks move the most."""
    S = st["S"]
    T = S.shape[0]
    t = (T - 1) // 2
    flow = soft_argmax_flow(S)[t]  # (L, 2, h, w)
    moving = [i for i, o in enumerate(st["offsets"]) if o != 0] or list(range(flow.shape[0]))
    mag = np.sqrt((flow[moving] ** 2).sum(1)).sum(0)  # (h, w)
    y, x = np.unravel_index(int(mag.argmax()), mag.shape)
    return t, int(y), int(x)
