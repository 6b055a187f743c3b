"""The model configurations that the benchmarks time and the comparison tables name: the paper's pairs (a
block's model and its plain backbone), the built-in benchmark's pair as the quick preset trains it, and every
block of the motion-module comparison. Defined once here, so that a bench row and a table row meet by name."""
from __future__ import annotations

from dataclasses import replace

from .grammar import EVERY
from .presets import resolve
from .run import ModelConfig
from .vocabulary import MOTION_BLOCKS

SELFY_TSM_R18 = ModelConfig(backbone="tsm-r18", offsets=(-2, -1, 0, 1, 2), window=(9, 9), position=("res3",))
TSM_R18 = replace(SELFY_TSM_R18, block="none")


def quick_pair() -> tuple[ModelConfig, ModelConfig, int, int]:
    """The built-in benchmark's pair as the quick preset trains it: (plain backbone, SELFY -3..3, batch, size)."""
    run = resolve("quick", overrides={"model": {"offsets": "-3..3"}})
    return replace(run.model, block="none"), run.model, run.train.batch_size, run.data.size


def step_pairs() -> dict[str, tuple[ModelConfig, ModelConfig, int, int]]:
    """The training-step comparisons: name -> (plain backbone, with the block, batch, input side). Besides the
    full-width pair and the quick preset's, ``train_step_quick_8x8`` is the quick pair with the STSS at res3's
    full 8x8 and a 5x5 window (the CPU preset before its STSS took the reference's 2x reduction)."""
    base, block, batch, size = quick_pair()
    return {"train_step": (TSM_R18, SELFY_TSM_R18, 1, 224), "train_step_quick": (base, block, batch, size),
            "train_step_quick_8x8": (base, replace(block, reduce=1, window=(5, 5)), 16, size)}


TSM_R50 = ModelConfig(backbone="tsm-r50", frames=8, block="none")
SELFY_TSM_R50 = replace(TSM_R50, block="selfy", offsets=(-2, -1, 0, 1, 2), window=(9, 9), position=("res3",))


def module_settings() -> dict[str, tuple[ModelConfig, int, int]]:
    """The module comparison's settings: name -> (plain backbone, batch, input side)."""
    base, _, batch, size = quick_pair()
    return {"modules_quick": (base, batch, size), "modules_tsm_r18": (TSM_R18, 1, 224)}


# the offsets of the SELFY block in the module comparison (the other blocks take none)
MODULE_SELFY_OFFSETS = (-3, -2, -1, 0, 1, 2, 3)


# the modules benched also in their papers' arrangement, one inside every residual block of res2-res5
# (experiments/motion_modules_every.yaml), as ``<block>:every``
MODULE_EVERY_BLOCKS = ("stm", "tea", "tam")
MODULE_EVERY_POSITION = tuple(f"res{i}{EVERY}" for i in (2, 3, 4, 5))


def module_configs(base: ModelConfig) -> dict[str, ModelConfig]:
    """Every block at res3 of ``base``: SELFY with -3..3 and each motion module, on the base's other fields;
    STM, TEA and TAM inside every residual block of res2-res5 (``stm:every``, ...); and HCML's frame-difference
    hierarchy at res2-res4 (``hcml-diff``, trained with its auxiliary loss)."""
    selfy = replace(base, block="selfy", offsets=MODULE_SELFY_OFFSETS, position=("res3",))
    every = {f"{b}{EVERY}": replace(base, block=b, position=MODULE_EVERY_POSITION) for b in MODULE_EVERY_BLOCKS}
    return {"selfy": selfy, **{b: replace(selfy, block=b) for b in MOTION_BLOCKS}, **every,
            "hcml-diff": replace(base, hierarchy="diff")}  # the motion hierarchy at res2-res4, with its loss
