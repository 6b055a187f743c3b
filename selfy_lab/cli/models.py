"""selfy-lab flops and bench."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config.experiments import model_from_flags
from ..core.errors import SelfyError
from .common import (
    LIST, Backbone, Block, BlockOptions, Extractor, Frames, Fusion, Hierarchy, HierarchyLevels, Integrator, Offsets,
    Position, Reduce, Similarity, Window, app, at_least, comma_list, console, progress_bar, table,
)


@app.command()
def flops(
    paper: Annotated[bool, typer.Option("--paper", help="Compute every FLOPs row of the paper (Tables 1, 3a, 7a and 7d) beside its value.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="With --paper: write OUT/paper_table.csv.")] = None,
    size: Annotated[int, typer.Option(help="Input side in pixels.")] = 224,
    backbone: Backbone = None, frames: Frames = None, block: Block = None, block_options: BlockOptions = None, offsets: Offsets = None,
    window: Window = None, extractor: Extractor = None, integrator: Integrator = None,
    similarity: Similarity = None, fusion: Fusion = None, position: Position = None, reduce: Reduce = None,
    hierarchy: Hierarchy = None, hierarchy_levels: HierarchyLevels = None,
):
    """Multiply-accumulates per clip (the papers' "GFLOPs") and parameters of a configuration.

    Defaults are the paper's SELFYNet-TSM-R18 (res3, offsets -2..2, 9x9). Examples:

      selfy-lab flops --backbone tsn-r18 --offsets -3..3

      selfy-lab flops --paper --out results/flops
    """
    flags = dict(locals())
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..models.flops import cost_report, paper_table

    at_least(size, 16, "--size")
    con = console()
    if paper:
        rows, path = paper_table(size, out)
        con.print(table(
            f"FLOPs per clip at {size}x{size} (multiply-accumulates), ours vs the paper",
            ["model", "backbone", "frames", "offsets", "window", "paper G", "ours G", "diff", "params M"],
            [[r["model"], r["backbone"], str(r["frames"]), r["offsets"], r["window"], f"{r['paper_gflops']:.1f}",
              f"{r['gflops']:.2f}", f"{r['rel_diff'] * 100:+.1f}%", f"{r['params_m']:.2f}"] for r in rows]))
        con.print(f"largest |difference|: {max(abs(r['rel_diff']) for r in rows) * 100:.1f}% over {len(rows)} rows")
        if path:
            con.print(f"wrote {path}")
        return
    for line in cost_report(model_from_flags(flags), size):
        con.print(line)


@app.command()
def bench(
    out: Annotated[Path, typer.Option(help="Directory for bench.csv (tidy rows).")] = Path("runs/bench"),
    device: Annotated[str, typer.Option(help="cpu, cuda or auto (cuda when present).")] = "auto",
    only: Annotated[list[str], typer.Option(help=f"Parts ({LIST}): stss, step, modules, memory, loader (data loading vs training throughput), profile (where the step time goes, CPU), paper (TSM-R50 vs SELFYNet-TSM-R50 at 8x224x224, real batches), stss-memory (the STSS recomputed in the backward pass vs kept).")] = ["stss,step,modules,memory"],
    sizes: Annotated[list[str], typer.Option(help=f"STSS map sizes ({LIST}).")] = ["14,28,56"],
    repeats: Annotated[int, typer.Option(help="Timed repeats per measurement (after one warm-up).")] = 5,
    channels_last: Annotated[bool, typer.Option(help="Run both models channels-last in the step benchmark.")] = True,
    block: Annotated[Optional[list[str]], typer.Option(
        "--block", help=f"Your own modules (PACKAGE.MODULE:CLASS; {LIST}) beside the built-in ones in the modules part.")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="Step and paper parts: also run each pair under torch.compile (inductor; compiling takes minutes on a CPU), its eager and compiled steps taking turns (rows <pair>_compiled: compiled ratios, compile_seconds, compile_speedup).")] = False,
):
    """Speed and memory of the STSS and of a SELFYNet training step, as ratios measured side by side.

    (a) stss: STSS forward+backward (8 frames, C=128, -2..2, 9x9) against the reference code's global-matmul path and an F.unfold version.

    (b) step: training steps, block vs plain backbone, interleaved, median, each beside its FLOP ratio: SELFYNet-TSM-R18 vs TSM-R18 on one 8x3x224x224 clip (train_step), the quick preset's -3..3 pair at its batch (train_step_quick) and with the STSS at res3's full 8x8, 5x5 window (train_step_quick_8x8).

    (c) modules: every --block (SELFY -3..3 and each motion module) at res3, and STM, TEA and TAM inside every residual block of res2-res5 (stm:every, ...), vs the plain backbone, on the quick preset and on TSM-R18 at 8x224x224 (modules_*).

    (d) memory: activations saved for backward and peak memory of the full-width steps.

    --compile adds the steps of (b) under torch.compile (<pair>_compiled rows), timed beside the eager ones.

    Not in the default parts: loader (clips/s of the list-file loader beside the training step); profile (the steps of (b) under torch.profiler: convolutions and matmuls, BatchNorm and the rest, each block's excess per class beside its FLOP share; CPU only); paper (TSM-R50 vs SELFYNet-TSM-R50, block after res3, 8x224x224: batches 1-2 on CPUs with their profile, 8/16/32 in bf16 on GPUs until one does not fit: step time, clips/s, peak memory, each ratio beside the FLOP ratio); stss-memory (SELFY at res2 with reduce 1, its STSS kept or recomputed in the backward pass: time and memory).
    """
    # deferred: these load torch, which the command line's start (--help, completion) must not
    from ..studies.bench import run_bench

    at_least(repeats, 1, "--repeats")
    try:
        size_list = tuple(int(s) for s in comma_list(sizes))
    except ValueError:
        raise SelfyError(f"--sizes '{','.join(sizes)}' must be a comma list of integers, e.g. 14,28,56") from None
    for s in size_list:
        at_least(s, 3, "--sizes")
    with progress_bar(spinner=True) as prog:
        task = prog.add_task("bench", total=None)
        rows, dev_name, path = run_bench(comma_list(only), device, size_list, repeats, channels_last, out, compile,
                                         lambda s: prog.update(task, description=s), tuple(comma_list(block or [])))
    con = console()
    con.print(table(f"bench on {dev_name}", ["benchmark", "impl", "size", "metric", "value"],
                    [[r["benchmark"], r["impl"], str(r["size"]), r["metric"], f"{r['value']:.4g}"] for r in rows]))
    con.print(f"wrote {path}")
