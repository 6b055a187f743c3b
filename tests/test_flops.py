"""FLOPs (multiply-accumulates) against the paper's table and against PyTorch's own counter."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from selfy_lab.config.run import ModelConfig
from selfy_lab.models.flops import count_macs, model_cost, paper_table
from selfy_lab.models import build_model
from selfy_lab.models.selfsim import stss_macs


def test_paper_table_within_three_percent():
    rows, path = paper_table()
    assert path is None
    assert len(rows) == 18  # SPEC §8, Table 7a included
    worst = max(rows, key=lambda r: abs(r["rel_diff"]))
    assert abs(worst["rel_diff"]) <= 0.03, worst


def test_counter_matches_torch_flop_counter_on_plain_convs():
    model = build_model(ModelConfig(backbone="tsm-r18", block="none", frames=2)).eval()
    x = torch.randn(1, 2, 3, 112, 112)
    with FlopCounterMode(display=False) as fc:
        model(x)
    assert count_macs(model, x) == fc.get_total_flops() // 2  # torch counts 2 FLOPs per MAC


def test_stss_is_counted():
    cfg = ModelConfig(backbone="tsn-r18", offsets=(0,))
    wide = ModelConfig(backbone="tsn-r18", offsets=(0,), window=(11, 11))
    # widening the window changes only the STSS and the first extraction layers' input size
    d = model_cost(wide)["gflops"] - model_cost(cfg)["gflops"]
    assert d * 1e9 >= stss_macs(1, 8, 128, 14, 14, 1, 11, 11) - stss_macs(1, 8, 128, 14, 14, 1, 9, 9)


def test_meta_and_real_counts_agree():
    cfg = ModelConfig(backbone="tsn-r18-w16", frames=4, offsets=(-1, 0, 1), window=(5, 5))
    model = build_model(cfg).eval()
    real = count_macs(model, torch.randn(1, 4, 3, 96, 96))
    with torch.device("meta"):
        meta_model = build_model(cfg).eval()
        meta = count_macs(meta_model, torch.empty(1, 4, 3, 96, 96))
    assert real == meta


@pytest.mark.parametrize("frames", [8, 16])
def test_cost_grows_linearly_with_frames(frames):
    a = model_cost(ModelConfig(backbone="tsm-r18", block="none", frames=frames))["gflops"]
    assert a == pytest.approx(14.51 * frames / 8, rel=0.01)
