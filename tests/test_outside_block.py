"""--block PACKAGE.MODULE:CLASS: a module written outside the package, through train, flops, cam and bench."""
import shutil
from pathlib import Path

import pytest
import torch

from selfy_lab.config.run import ModelConfig
from selfy_lab.core.errors import SelfyError
from selfy_lab.models import build_model

from helpers import cli_inproc, one_line_error, rows

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "outside"


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A folder holding the user's module, the working directory (as a user runs selfy-lab from it)."""
    d = tmp_path / "mine"
    shutil.copytree(FIXTURE, d)
    monkeypatch.chdir(d)
    return d


def test_an_outside_module_is_inserted_where_the_position_says(user_dir):
    cfg = ModelConfig(backbone="tsm-r18-w8", block="gate_module:TemporalGate", frames=4, num_classes=5,
                      position="res2+res4:every", block_options="hidden=3")
    model = build_model(cfg)
    assert set(model.blocks) == {"res2", "res4:every-0", "res4:every-1"}
    assert model.blocks["res2"].module.fc[0].out_features == 3  # its option reached the constructor
    out = model(torch.randn(2, 4, 3, 64, 64))
    out.sum().backward()
    assert out.shape == (2, 5) and all(p.grad is not None for p in model.blocks.parameters())


@pytest.mark.parametrize("block, message", [
    ("nowhere_module:Gate", "cannot import module 'nowhere_module'"),
    ("gate_module:Missing", "has no 'Missing'"),
    ("gate_module:WrongShape", "must return the (B, T, C, H, W) shape"),
    ("gate_module:TwoDimensional", "failed on a (B, T, C, H, W) = (2, "),
])
def test_a_broken_outside_module_stops_with_one_line(user_dir, block, message):
    with pytest.raises(SelfyError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        build_model(ModelConfig(backbone="tsn-r18-w8", block=block, frames=4, num_classes=5))
    assert one_line_error(cli_inproc("flops", "--block", block, cwd=user_dir), message)
    assert one_line_error(cli_inproc("flops", "--block", "gate_module:TemporalGate", "--block-options", "wide=2",
                                     cwd=user_dir), "unexpected keyword argument 'wide'")
    assert one_line_error(cli_inproc("flops", "--block", "gate:a:b", cwd=user_dir), "PACKAGE.MODULE:CLASS")
    assert one_line_error(cli_inproc("bench", "--only", "modules", "--block", "tea", "--out", user_dir / "b",
                                     cwd=user_dir), "PACKAGE.MODULE:CLASS")


@pytest.mark.slow
def test_an_outside_module_trains_counts_and_explains(user_dir, tmp_path):
    spec = "gate_module:TemporalGate"
    p = cli_inproc("flops", "--backbone", "tsn-r18", "--block", spec, cwd=user_dir)
    assert p.returncode == 0, p.stderr
    assert f"tsn-r18 + {spec} at res3" in p.stdout and "GFLOPs" in p.stdout
    run = tmp_path / "run"
    p = cli_inproc("train", "--preset", "smoke", "--block", spec, "--out", run, cwd=user_dir)
    assert p.returncode == 0, p.stderr
    metrics = {r["metric"]: float(r["value"]) for r in rows(run / "metrics.csv")}
    assert 0 <= metrics["top1"] <= 1 and rows(run / "metrics.csv")[0]["block"] == spec
    p = cli_inproc("cam", "--checkpoint", run, "--clip", "0", "--out", tmp_path / "cam", cwd=user_dir)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "cam" / "cam_clip0.png").stat().st_size > 5000
