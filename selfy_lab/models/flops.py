"""Multiply-accumulate (the papers' "FLOPs") and parameter counts.

Counting rules (fvcore's conventions): convolutions count output elements x (C_in / groups) x kernel
taps, transposed convolutions count input elements x (C_out / groups) x taps, linear layers output
elements x in_features; BatchNorm, activations and pooling are not counted. A module that runs its
arithmetic in a re-expressed form (the STSS, the dense first extraction layer) reports its own MACs
through a ``macs(inputs, output)`` method, and nothing inside it is counted again.

Counting runs on the ``meta`` device: shapes only, no arithmetic, so R50 x 16 frames at 224 is instant.
"""
from __future__ import annotations

import functools
import math
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn

from ..config.run import ModelConfig
from ..config.vocabulary import SELFY_BLOCKS
from ..core import paper
from ..core.paper import PAPER_FLOPS_TABLE
from ..core.textfiles import claim_folder, write_csv
from . import build_model

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def count_macs(model: nn.Module, x: torch.Tensor, activation_products: int = 1) -> int:
    """Multiply-accumulates of one forward pass of ``model(x)``. Products of two activations (attention,
    all-pairs distances: modules with ``activation_product = True``) count ``activation_products`` times
    their MACs: 1 is this toolkit's convention; 2 reproduces SELFY's Table 7a, whose counter evidently
    counted their multiplications and additions separately (see ``paper.FLOPS``)."""
    total = 0
    suppress = 0
    handles = []

    def pre_own(mod, inputs):
        nonlocal suppress
        suppress += 1

    def post_own(mod, inputs, output):
        nonlocal suppress, total
        suppress -= 1
        if suppress == 0:
            total += int(mod.macs(inputs, output)) * (activation_products if getattr(mod, "activation_product", False) else 1)

    def post_std(mod, inputs, output):
        nonlocal total
        if suppress == 0:
            total += layer_macs(mod, inputs[0], output)

    for mod in model.modules():
        if callable(getattr(mod, "macs", None)):
            handles.append(mod.register_forward_pre_hook(pre_own))
            handles.append(mod.register_forward_hook(post_own))
        elif isinstance(mod, (*_CONV, *_CONV_T, nn.Linear)):
            handles.append(mod.register_forward_hook(post_std))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def layer_macs(mod: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(mod, _CONV):
        return out.numel() * (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
    if isinstance(mod, _CONV_T):
        return inp.numel() * (mod.out_channels // mod.groups) * math.prod(mod.kernel_size)
    if isinstance(mod, nn.Linear):
        return out.numel() * mod.in_features
    return 0


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_cost(cfg: ModelConfig, size: int = 224, batch: int = 1, activation_products: int = 1) -> dict[str, float]:
    """GMACs per clip of ``cfg.frames`` frames at ``size`` x ``size`` and parameters (millions)."""
    return dict(_model_cost(cfg, size, batch, activation_products))


@functools.lru_cache(maxsize=256)  # result rows ask for it once per row set
def _model_cost(cfg: ModelConfig, size: int, batch: int, activation_products: int = 1) -> dict[str, float]:
    with torch.device("meta"):
        model = build_model(cfg).eval()
        x = torch.empty(batch, cfg.frames, 3, size, size)
    return {"gflops": count_macs(model, x, activation_products) / batch / 1e9, "params_m": count_params(model) / 1e6}


def cost_report(cfg: ModelConfig, size: int = 224) -> list[str]:
    """``selfy-lab flops``: lines describing a configuration, its GFLOPs and parameters, and, for a model with a
    block or a hierarchy, the plain backbone's beside them."""
    cost = model_cost(cfg, size)
    v = cfg.variant()
    stss = (f" offsets {v['offsets']} window {v['window']} {cfg.extractor}/{cfg.integrator}"
            if v["offsets"] != "none" else "")  # the STSS fields mean nothing for the other motion modules
    desc = cfg.backbone + (f" + {cfg.block} at {v['position']}{stss}" if cfg.block != "none" else "") + (
        f" + {cfg.hierarchy} motion hierarchy at {'+'.join(cfg.hierarchy_levels)}" if cfg.hierarchy != "none" else "")
    lines = [f"{desc}, {cfg.frames} frames at {size}x{size}",
             f"  {cost['gflops']:.2f} GFLOPs (multiply-accumulates) per clip, {cost['params_m']:.2f} M parameters"]
    if cfg.block != "none" or cfg.hierarchy != "none":
        base = model_cost(replace(cfg, block="none", hierarchy="none", block_options=()), size)
        lines.append(f"  backbone alone: {base['gflops']:.2f} GFLOPs, {base['params_m']:.2f} M parameters "
                     f"(+{cost['gflops'] - base['gflops']:.2f} G, x{cost['gflops'] / base['gflops']:.3f})")
    return lines


def paper_table(size: int = 224, out: str | Path | None = None) -> tuple[list[dict], Path | None]:
    """Every FLOPs row of the paper we implement (Tables 1, 3a, 7a and 7d), ours beside the paper's; written to
    OUT/paper_table.csv when ``out`` is given. Returns (rows, path)."""
    if out is not None:
        claim_folder(out, ("paper_table.csv",))
    rows = []
    for ref in paper.FLOPS:
        cfg = ModelConfig(backbone=ref["backbone"], frames=ref["frames"], block=ref["block"],
                          block_options=ref.get("block_options", ()))
        if ref["block"] in SELFY_BLOCKS:
            cfg = replace(cfg, offsets=ref["offsets"], window=ref["window"])  # parsed by the config
        cost = model_cost(cfg, size, activation_products=ref.get("activation_products", 1))
        rows.append({
            "model": ref["model"], "backbone": ref["backbone"], "frames": ref["frames"], "offsets": ref["offsets"],
            "window": ref["window"], "paper_gflops": ref["paper_gflops"], "gflops": cost["gflops"],
            "rel_diff": cost["gflops"] / ref["paper_gflops"] - 1.0, "params_m": cost["params_m"],
        })
    if out is None:
        return rows, None
    cols = ["model", "backbone", "frames", "offsets", "window", "paper_gflops", "gflops", "rel_diff", "params_m"]
    return rows, write_csv(Path(out) / PAPER_FLOPS_TABLE, rows, cols)
