"""The SELFY block's memory-saving path: the STSS and its extraction recomputed in the backward pass give the
same outputs, gradients and BatchNorm statistics as keeping them, keep far fewer bytes, and are chosen by size."""
from dataclasses import replace

import pytest
import torch

from selfy_lab.config.run import ModelConfig
from selfy_lab.models import selfy as S
from selfy_lab.config.presets import resolve


def _branch(memory: str, similarity: str = "cosine", extractor: str = "conv") -> S.SelfyBranch:
    torch.manual_seed(0)
    return S.SelfyBranch(12, (-1, 0, 1), window=(5, 5), extractor=extractor, integrator="conv", similarity=similarity, reduce=1,
                         widths=S.BlockWidths(16, (4, 8, 8, 8), 8), zero_init=False, memory=memory).double().train()


def _step(branch: S.SelfyBranch, x: torch.Tensor):
    x = x.clone().requires_grad_(True)
    out = branch(x)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return out.detach(), x.grad, {n: p.grad for n, p in branch.named_parameters()}, \
        {n: b.clone() for n, b in branch.named_buffers()}


@pytest.mark.parametrize("similarity,extractor", [("cosine", "conv"), ("embedded_gaussian", "conv"),
                                                  ("dot", "conv3d"), ("cosine", "mlp")])
def test_recomputing_equals_saving_in_outputs_gradients_and_batchnorm_statistics(similarity, extractor):
    x = torch.randn(2, 4, 12, 6, 6, dtype=torch.float64).relu()
    saved = _step(_branch("save", similarity, extractor), x)
    recomputed = _step(_branch("recompute", similarity, extractor), x)
    assert torch.allclose(saved[0], recomputed[0], atol=1e-6) and torch.allclose(saved[1], recomputed[1], atol=1e-6)
    assert saved[2].keys() == recomputed[2].keys()
    for name in saved[2]:
        assert torch.allclose(saved[2][name], recomputed[2][name], atol=1e-6), name
    for name in saved[3]:  # the recomputation must not count its batch a second time
        assert torch.equal(saved[3][name], recomputed[3][name]), name
    moved = [n for n, b in recomputed[3].items() if n.startswith("extract.") and n.endswith("running_mean")
             and b.abs().max() > 0]  # the statistics compared above did update (they start at zero)
    assert moved or extractor == "mlp"


def _saved_bytes(branch: S.SelfyBranch, x: torch.Tensor) -> int:
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = branch(x)
    out.sum().backward()
    return sum(storages.values())


def test_recomputing_keeps_a_fraction_of_the_bytes():
    x = torch.randn(2, 4, 12, 6, 6, dtype=torch.float64).relu().requires_grad_(True)
    kept = {m: _saved_bytes(_branch(m), x) for m in ("save", "recompute")}
    assert kept["recompute"] < kept["save"] / 4, kept


def test_auto_recomputes_above_the_documented_volume_and_only_where_a_backward_pass_follows(monkeypatch):
    branch = _branch("auto")
    r = torch.randn(8, 16, 6, 6, dtype=torch.float64, requires_grad=True)
    volume = 8 * 6 * 6 * 3 * 5 * 5 * 8  # B*T*h*w*L*U*V float64 values
    monkeypatch.setattr(S, "RECOMPUTE_ABOVE_BYTES", volume - 1)
    assert branch.recomputes(r)
    with torch.no_grad():
        assert not branch.recomputes(r)
    assert not branch.recomputes(r.detach())
    monkeypatch.setattr(S, "RECOMPUTE_ABOVE_BYTES", volume)
    assert not branch.recomputes(r)
    assert _branch("recompute").recomputes(r) and not _branch("save").recomputes(r)


def test_the_memory_mode_is_checked_and_leaves_the_run_key_alone():
    with pytest.raises(ValueError, match="STSS memory mode"):
        ModelConfig(stss_memory="sometimes")
    run = resolve("quick")
    assert replace(run, model=replace(run.model, stss_memory="recompute")).run_hash == run.run_hash
