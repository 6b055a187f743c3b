"""The CUDA path on a GPU: the STSS and the whole SELFY model equal their CPU results in float64, a run trains
with mixed precision and no host synchronisation in its step loop, and --deterministic runs repeat to the
bit. Skipped where torch sees no CUDA device (CI has none): on a GPU machine, `python -m pytest tests/test_cuda.py`."""
import copy
import warnings
from collections import Counter

import pytest
import torch
from helpers import rows
from test_stss import brute_force

from selfy_lab import stss
from selfy_lab.models import selfsim as stss_mod
from selfy_lab.models.net import build_model
from selfy_lab.config.presets import resolve
from selfy_lab.engine.train import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("hw", [(5, 6), (20, 13)])
def test_stss_on_cuda_equals_brute_force(hw):
    """Both correlation paths (one global product; tiles, taken from 20x13 on) on the GPU, float64."""
    torch.manual_seed(0)
    v = torch.randn(1, 4, 3, *hw, dtype=torch.float64)
    assert (stss_mod._choose_tile(*hw, 1, 2) is not None) == (hw == (20, 13))
    out = stss(v.cuda(), (-2, 0, 1), (3, 5))
    assert out.is_cuda
    assert torch.allclose(out.cpu(), brute_force(v, (-2, 0, 1), (3, 5)), atol=1e-12)


def test_selfy_model_on_cuda_equals_cpu_in_float64():
    """The quick preset's SELFYNet -3..3 (the block active from the start), in training mode: outputs and every
    parameter's gradient on the GPU equal the CPU's, which the CPU tests tie to the reference formulation."""
    run = resolve("quick", overrides=dict(model=dict(offsets=(-3, -2, -1, 0, 1, 2, 3))))
    torch.manual_seed(0)
    cpu = build_model(run.model).double().train()
    for m in cpu.modules():  # non-trivial BatchNorm affine parameters everywhere, the block's included
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    gpu = copy.deepcopy(cpu).cuda()
    x = torch.randn(2, 8, 3, 64, 64, dtype=torch.float64)
    y = torch.tensor([3, 11])
    out_cpu, out_gpu = cpu(x), gpu(x.cuda())
    assert torch.allclose(out_gpu.cpu(), out_cpu, rtol=1e-9, atol=1e-11)
    torch.nn.functional.cross_entropy(out_cpu, y).backward()
    torch.nn.functional.cross_entropy(out_gpu, y.cuda()).backward()
    for (name, a), b in zip(cpu.named_parameters(), gpu.parameters()):
        assert torch.allclose(b.grad.cpu(), a.grad, rtol=1e-7, atol=1e-12), name


def test_a_cuda_run_trains_with_mixed_precision_and_no_host_sync_in_its_steps(tmp_path):
    """Between an epoch's start and its first progress report (the smoke preset's 4 steps) the loop makes no
    synchronising call but the report's own two reads (loss and accuracy)."""
    run = resolve("smoke", overrides=dict(train=dict(epochs=2)))
    assert run.train.amp and len(range(0, run.data.synthetic_train, run.train.batch_size)) < 10  # one report

    def watch(event, **kw):
        if event == "epoch_start":
            torch.cuda.set_sync_debug_mode("warn")
        elif event == "step":
            torch.cuda.set_sync_debug_mode("default")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = fit(run, tmp_path / "run", watch, "cuda")
    torch.cuda.set_sync_debug_mode("default")
    syncs = Counter(f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)
                    and not w.filename.endswith("cuda/__init__.py"))  # set_sync_debug_mode's own, at turning it on
    assert sum(syncs.values()) <= 2 * run.train.epochs, syncs
    history = rows(tmp_path / "run" / "history.csv")
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(float(r["train_loss"]))) for r in history)
    assert "threads" not in history[0]  # the CPU's thread count does not set a GPU run's round-off
    assert 0 <= metrics["top1"] <= 1
    assert {r["device"] for r in rows(tmp_path / "run" / "metrics.csv")} == {torch.cuda.get_device_name()}


def test_deterministic_cuda_runs_repeat_to_the_bit(tmp_path):
    run = resolve("smoke", overrides=dict(train=dict(epochs=2, deterministic=True)))
    for d in ("a", "b"):
        fit(run, tmp_path / d, device="cuda")
    a, b = ([{k: v for k, v in r.items() if k != "train_seconds"} for r in rows(tmp_path / d / "history.csv")]
            for d in ("a", "b"))
    assert a == b
    va, vb = ([(r["metric"], r["value"]) for r in rows(tmp_path / d / "metrics.csv") if r["metric"] != "seconds"]
              for d in ("a", "b"))
    assert va == vb
    assert not torch.are_deterministic_algorithms_enabled()
