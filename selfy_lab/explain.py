"""Looking inside trained models: per-frame Grad-CAM and STSS maps. Arrays in, arrays out (no plotting).

Grad-CAM uses ``pytorch-grad-cam``'s methods unchanged; only two things are specific to clip models whose
2-D backbone sees (B*T, C, H, W): the target is the *clip's* class score (so every frame's map answers
"where in this frame is the evidence for the clip's class"), and the maps are normalised per clip, not per
frame -- the library's per-image min-max scaling would stretch a frame with no evidence to full intensity,
making every frame look alike.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .data.transforms import normalize
from .models.selfy import STSS

# gradient-based methods of pytorch-grad-cam whose maps come from one layer's activations and gradients
CAM_METHODS = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "eigengradcam",
               "gradcamelementwise")


def _cam_class(name: str):
    import pytorch_grad_cam as pgc

    table = {"gradcam": pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus, "xgradcam": pgc.XGradCAM,
             "hirescam": pgc.HiResCAM, "layercam": pgc.LayerCAM, "eigencam": pgc.EigenCAM,
             "eigengradcam": pgc.EigenGradCAM, "gradcamelementwise": pgc.GradCAMElementWise}
    if name not in table:
        raise ValueError(f"unknown CAM method '{name}': choose from {', '.join(CAM_METHODS)}")
    return table[name]


def cam_layer(model, name: str = "res5") -> torch.nn.Module:
    """The module whose output is the map before global average pooling (``res5``), or another stage.
    A block inserted after the stage is part of it."""
    stages = {"res2": "layer1", "res3": "layer2", "res4": "layer3", "res5": "layer4"}
    if name not in stages:
        raise ValueError(f"unknown CAM layer '{name}': choose from {', '.join(stages)}")
    if name in model.blocks:
        return model.blocks[name]
    return getattr(model.backbone, stages[name])


def _flatten_frames(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(0, 1) if x.dim() == 5 else x  # blocks output (B, T, C, h, w)


def clip_cam(model, clip: torch.Tensor, target: int, method: str = "gradcam", layer: str = "res5") -> np.ndarray:
    """Grad-CAM of a uint8 clip (T, C, H, W) for class ``target``: (T, H, W) in [0, 1], one scale per clip."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

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


def predict_clip(model, clip: torch.Tensor) -> np.ndarray:
    """Class probabilities (K,) of a uint8 clip (T, C, H, W)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.softmax(model(normalize(clip[None].to(device))).float(), -1)[0].cpu().numpy()


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
    from .models.selfsim import stss

    x = normalize(clip).float()  # (T, C, H, W)
    x = F.avg_pool2d(x, cell)
    x = x - x.mean(dim=(0, 2, 3), keepdim=True)
    S = stss(x[None], tuple(offsets), tuple(window))[0]  # (T, L, U, V, h, w)
    return {"S": S.numpy(), "offsets": tuple(offsets), "window": tuple(window),
            "source": f"cosine STSS of raw pixels ({cell}x{cell} cells)", "size": tuple(x.shape[-2:])}


def soft_argmax_flow(S: np.ndarray, tau: float = 0.05) -> np.ndarray:
    """Soft-argmax displacement (Eq. 2) of an STSS (T, L, U, V, h, w): (T, L, 2, h, w), (du, dv) in cells."""
    T, L, U, V, h, w = S.shape
    s = torch.from_numpy(S).float().reshape(T, L, U * V, h, w)
    p = torch.softmax(s / tau, dim=2).view(T, L, U, V, h, w)
    u = torch.arange(U, dtype=torch.float32) - U // 2
    v = torch.arange(V, dtype=torch.float32) - V // 2
    du = (p.sum(3) * u.view(1, 1, U, 1, 1)).sum(2)
    dv = (p.sum(2) * v.view(1, 1, V, 1, 1)).sum(2)
    return torch.stack([du, dv], 2).numpy()


def model_label(run) -> str:
    m = run.model
    return f"{m.backbone} baseline" if m.block == "none" else f"{m.backbone} l in {m.variant()['offsets']}"


def paper_pair(run_dirs) -> list:
    """The paper's Fig. 7 pair among a sweep's run directories: {1} and the widest offset range, seed 0."""
    from .train import read_run_config

    cfgs = {d: read_run_config(d) for d in run_dirs}
    seed0 = [d for d in run_dirs if cfgs[d].train.seed == 0 and cfgs[d].model.block != "none"]
    one = [d for d in seed0 if cfgs[d].model.offsets == (1,)]
    widest = sorted(seed0, key=lambda d: len(cfgs[d].model.offsets))[-1:]
    return one[:1] + [d for d in widest if d not in one]


def compare_cams(models: list, dataset, clips: list[int] | None = None, class_id: int | None = None,
                 disagree: bool = False, count: int = 2, method: str = "gradcam", layer: str = "res5") -> list[dict]:
    """CAMs of several trained models on the same validation clips.

    ``models``: (label, model) pairs. Clips: the given indices, else the first ``count`` clips (of
    ``class_id`` if given) where -- with ``disagree`` -- the models' predictions differ and one is right.
    Returns one dict per clip: ``index``, ``label``, ``frames`` uint8 (T, H, W, 3), ``rows`` (see viz.cam_figure)."""
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
        rows = []
        for label, m in models:
            probs = predict_clip(m, x)
            pred = int(probs.argmax())
            rows.append({"label": label, "cam": clip_cam(m, x, pred, method, layer), "pred": names[pred],
                         "prob": float(probs[pred]), "correct": pred == y})
        out.append({"index": i, "label": names[y], "frames": x.permute(0, 2, 3, 1).numpy(), "rows": rows})
    return out
