"""The benchmark's baselines compute the same STSS as ours (otherwise the ratios would be meaningless)."""
import pytest
import torch

from selfy_lab import stss
from selfy_lab.studies.bench import (
    PROFILE_CLASSES,
    SELFY_TSM_R50,
    TSM_R50,
    bench_loader,
    bench_modules,
    bench_paper_scale,
    bench_profile,
    bench_step,
    bench_stss,
    bench_stss_memory,
    kernel_class,
    run_bench,
    saved_tensor_bytes,
    stss_reference_global,
    stss_unfold,
)
from selfy_lab.config.run import ModelConfig
from selfy_lab.core.errors import SelfyError
from selfy_lab.models import build_model


def test_baselines_equal_ours():
    torch.manual_seed(0)
    v = torch.randn(1, 4, 6, 10, 10, dtype=torch.float64)
    offs, win = (-2, -1, 0, 1, 2), (5, 5)
    ours = stss(v, offs, win)  # (B, T, L, U, V, H, W)
    ref = stss_reference_global(v, offs, win)  # (B*T*L, U, V, H, W)
    assert torch.allclose(ours.reshape(-1, 5, 5, 10, 10), ref, atol=1e-12)
    unf = stss_unfold(v, offs, win)  # (B, T, L, U*V, H*W)
    assert torch.allclose(ours.reshape(1, 4, 5, 25, 100), unf, atol=1e-12)


@pytest.mark.slow
def test_bench_stss_rows_are_tidy():
    rows = bench_stss(sizes=(8,), repeats=1, unfold_max_size=8)
    impls = {r["impl"] for r in rows if r["metric"] == "seconds"}
    assert impls == {"ours", "reference_global", "unfold"}
    assert all(set(r) == {"benchmark", "impl", "size", "metric", "value"} for r in rows)
    assert all(r["value"] > 0 for r in rows)


def test_saved_tensor_bytes_grows_with_the_block():
    x = torch.randn(1, 4, 3, 64, 64)
    y = torch.zeros(1, dtype=torch.long)
    cfg = ModelConfig(backbone="tsm-r18-w16", frames=4, num_classes=3, offsets=(-1, 0, 1), reduce=1)
    base = saved_tensor_bytes(build_model(ModelConfig(**{**cfg.__dict__, "block": "none"})), x, y)
    selfy = saved_tensor_bytes(build_model(cfg), x, y)
    assert 0 < base < selfy


@pytest.mark.slow
def test_bench_modules_gives_each_block_a_time_and_flop_ratio():
    base = ModelConfig(backbone="tsn-r18-w16", frames=8, num_classes=3, block="none")
    blocks = ("selfy", "tea", "nonlocal", "hcml-diff", "tea:every")
    rows = bench_modules(repeats=1, settings={"tiny": (base, 2, 32)}, blocks=blocks)
    ratios = {(r["impl"], r["metric"]): r["value"] for r in rows if r["metric"] != "seconds"}
    assert set(ratios) == {(f"{b}-tsn-r18-w16", m) for b in blocks for m in ("time_ratio", "flop_ratio")}
    assert all(v > 0 for v in ratios.values())
    assert all(ratios[(f"{b}-tsn-r18-w16", "flop_ratio")] > 1 for b in blocks)
    # TEA in each of res2-res5's eight residual blocks costs more FLOPs than one TEA after res3
    assert ratios[("tea:every-tsn-r18-w16", "flop_ratio")] > ratios[("tea-tsn-r18-w16", "flop_ratio")]
    assert {r["impl"] for r in rows if r["metric"] == "seconds"} >= {"tsn-r18-w16"}


@pytest.mark.slow
def test_bench_loader_reads_frame_folders_and_videos_with_each_worker_count():
    rows = bench_loader(workers=(0, 2), clips=4, batch=2, train_step=False)
    assert {r["impl"] for r in rows} == {f"{s}, {w} workers" for s in ("frames", "videos") for w in (0, 2)}
    assert all(r["metric"] == "clips_per_s" and r["value"] > 0 for r in rows)


def test_kernel_classes():
    assert kernel_class("aten::mkldnn_convolution") == kernel_class("aten::convolution_backward") == "conv_matmul"
    assert kernel_class("aten::mm") == kernel_class("aten::bmm") == "conv_matmul"
    assert kernel_class("aten::native_batch_norm_backward") == "batch_norm"
    assert kernel_class("aten::threshold_backward") == kernel_class("aten::mul") == "other"
    assert kernel_class("autograd::engine::evaluate_function: ConvolutionBackward0") == "other"


@pytest.mark.slow
def test_bench_profile_splits_each_step_by_kernel_class():
    base = ModelConfig(backbone="tsn-r18-w16", frames=4, num_classes=3, block="none")
    block = ModelConfig(backbone="tsn-r18-w16", frames=4, num_classes=3, offsets=(-1, 0, 1), window=(3, 3), reduce=1)
    rows = bench_profile(repeats=1, pairs={"tiny": (base, block, 2, 32)})
    v = {(r["impl"], r["metric"]): r["value"] for r in rows}
    assert {r["benchmark"] for r in rows} == {"tiny_profile"}
    plain, selfy = "tsn-r18-w16", "selfy-tsn-r18-w16"
    for m in (plain, selfy):
        assert all(v[(m, f"{c}_ms")] >= 0 for c in PROFILE_CLASSES)
        assert v[(m, "conv_matmul_ms")] > 0 and v[(m, "batch_norm_ms")] > 0
    # the block adds convolutions, matmuls and BatchNorms; its excess is its classes minus the backbone's
    for c in PROFILE_CLASSES:
        assert v[(selfy, f"{c}_excess_ms")] == pytest.approx(v[(selfy, f"{c}_ms")] - v[(plain, f"{c}_ms")])
    assert v[(selfy, "flop_share_ms")] > 0
    assert (plain, "flop_share_ms") not in v


def test_bench_profile_refuses_other_devices_in_one_line():
    with pytest.raises(SelfyError, match="CPU measurement"):
        bench_profile(device="meta", pairs={})
    assert bench_profile(pairs={}) == []  # no pairs asked for, none profiled


def test_bench_step_compiled_times_each_pair_eager_and_compiled(monkeypatch):
    wrapped = []
    monkeypatch.setattr(torch, "compile", lambda m, **kw: wrapped.append(m) or m)  # the rows, not the compiler
    base = ModelConfig(backbone="tsn-r18-w16", frames=4, num_classes=3, block="none")
    block = ModelConfig(backbone="tsn-r18-w16", frames=4, num_classes=3, offsets=(-1, 0, 1), window=(3, 3), reduce=1)
    rows = bench_step(repeats=1, compile=True, pairs={"tiny": (base, block, 2, 32)})
    v = {(r["benchmark"], r["impl"], r["metric"]): r["value"] for r in rows}
    plain, selfy = "tsn-r18-w16", "selfy-tsn-r18-w16"
    for b in ("tiny", "tiny_compiled"):
        assert v[(b, selfy, "time_ratio")] == pytest.approx(v[(b, selfy, "seconds")] / v[(b, plain, "seconds")])
        assert v[(b, selfy, "flop_ratio")] > 1
    for m in (plain, selfy):
        assert v[("tiny_compiled", m, "compile_seconds")] > 0
        assert v[("tiny_compiled", m, "compile_speedup")] == pytest.approx(
            v[("tiny", m, "seconds")] / v[("tiny_compiled", m, "seconds")])
    assert [type(m).__name__ for m in wrapped] == ["SELFYNet", "SELFYNet"] and wrapped[0] is not wrapped[1]
    assert {r["metric"] for r in rows if r["benchmark"] == "tiny"} == {"seconds", "time_ratio", "flop_ratio"}
    assert bench_step(repeats=1, pairs={"tiny": (base, block, 2, 32)}) and len(wrapped) == 2  # no --compile


def test_compile_without_the_step_part_is_a_one_line_error():
    with pytest.raises(SelfyError, match="add step or paper to --only"):
        run_bench(["stss"], device="cpu", compile=True)


@pytest.mark.slow
def test_the_paper_scale_pair_is_the_papers_and_each_batch_gets_time_clips_memory_and_their_ratios():
    assert (TSM_R50.backbone, TSM_R50.frames, TSM_R50.block) == ("tsm-r50", 8, "none")
    assert (SELFY_TSM_R50.block, SELFY_TSM_R50.offsets, SELFY_TSM_R50.window, SELFY_TSM_R50.position) == \
        ("selfy", (-2, -1, 0, 1, 2), (9, 9), ("res3",))
    base = ModelConfig(backbone="tsm-r18-w8", frames=4, num_classes=3, block="none")
    block = ModelConfig(backbone="tsm-r18-w8", frames=4, num_classes=3, offsets=(-1, 0, 1), window=(3, 3))
    rows = bench_paper_scale(repeats=1, batches=(1, 2), pair=(base, block), size=32, rss=False)
    v = {(r["benchmark"], r["impl"], r["metric"]): r["value"] for r in rows}
    plain, selfy = "tsm-r18-w8", "selfy-tsm-r18-w8"
    for b in ("paper_scale_b1", "paper_scale_b2"):
        assert v[(b, selfy, "time_ratio")] == pytest.approx(v[(b, selfy, "seconds")] / v[(b, plain, "seconds")])
        assert v[(b, plain, "clips_per_s")] == pytest.approx(int(b[-1]) / v[(b, plain, "seconds")])
        assert v[(b, selfy, "flop_ratio")] > 1 and v[(b, selfy, "saved_for_backward_mb_ratio")] > 1
    assert v[("paper_scale_b2", plain, "saved_for_backward_mb")] > v[("paper_scale_b1", plain, "saved_for_backward_mb")]


@pytest.mark.slow
def test_recomputing_the_stss_is_measured_against_saving_it():
    block = ModelConfig(backbone="tsm-r18-w8", frames=4, num_classes=3, offsets=(-1, 0, 1), window=(3, 3))
    rows = bench_stss_memory(repeats=1, block=block, size=32, rss=False)
    v = {(r["impl"], r["metric"]): r["value"] for r in rows}
    save, rec = "selfy-res2-reduce1-save", "selfy-res2-reduce1-recompute"
    assert v[(rec, "saved_for_backward_mb")] < v[(save, "saved_for_backward_mb")]
    assert v[(rec, "saved_for_backward_mb_ratio")] == pytest.approx(
        v[(rec, "saved_for_backward_mb")] / v[(save, "saved_for_backward_mb")])
    assert v[(rec, "time_ratio")] > 0 and ("tsm-r18-w8", "seconds") in v
