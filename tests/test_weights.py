"""Backbone weights: torchvision-format state dicts land strictly, in every backbone."""
import urllib.error
from dataclasses import replace

import pytest
import torch
import torchvision

from selfy_lab.engine import weights
from selfy_lab.config.run import ModelConfig
from selfy_lab.core.errors import SelfyError
from selfy_lab.models import build_model

TV = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34, 50: torchvision.models.resnet50}


@pytest.mark.parametrize("backbone", ["tsn-r18", "tsm-r18", *(pytest.param(b, marks=pytest.mark.slow)  # full-size nets
                                                               for b in ("tsn-r34", "tsm-r34", "tsn-r50", "tsm-r50"))])
def test_torchvision_state_dict_lands_in_every_backbone(tmp_path, backbone):
    cfg = ModelConfig(backbone=backbone, num_classes=7, position=("res2", "res3"))
    torch.manual_seed(1)
    tv = TV[cfg.depth]()
    path = tmp_path / "w.pth"
    torch.save(tv.state_dict(), path)
    model = build_model(cfg)
    report = weights.load_pretrained(model, str(path), cfg.depth)
    assert report["loaded"] == len(tv.state_dict()) - 2  # all but torchvision's fc
    assert report["new"] and all(n.startswith(("blocks.", "fc.")) for n in report["new"])
    for k, v in tv.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(model.backbone.state_dict()[k], v), k


def test_same_output_as_torchvision_features(tmp_path):
    """TSN with loaded weights computes torchvision's ResNet features frame by frame."""
    tv = torchvision.models.resnet18().eval()
    torch.save(tv.state_dict(), tmp_path / "w.pth")
    model = build_model(ModelConfig(backbone="tsn-r18", block="none", frames=2)).eval()
    weights.load_pretrained(model, str(tmp_path / "w.pth"), 18)
    x = torch.randn(1, 2, 3, 64, 64)
    ours = model.forward_features(x).mean((-2, -1))
    ref = torch.nn.Sequential(*list(tv.children())[:-2])(x[0]).mean((-2, -1))
    assert torch.allclose(ours, ref, atol=1e-5)


def test_imagenet_from_torchvision_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = weights.imagenet_cache_path(18)
    path.parent.mkdir(parents=True)
    sd = torchvision.models.resnet18().state_dict()
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # as in the 2017 file
    torch.save(sd, path)
    model = build_model(ModelConfig(backbone="tsm-r18"))
    assert weights.load_pretrained(model, "imagenet", 18)["loaded"] == len(sd) - 2


def test_imagenet_offline_and_uncached_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(SelfyError) as e:
        weights.load_pretrained(build_model(ModelConfig()), "imagenet", 18)
    msg = str(e.value)
    assert "\n" not in msg and str(weights.imagenet_cache_path(18)) in msg and "--pretrained" in msg


def test_wrong_architecture_and_bad_files_are_clear_errors(tmp_path):
    torch.save(torchvision.models.resnet50().state_dict(), tmp_path / "r50.pth")
    with pytest.raises(SelfyError, match="does not match the ResNet-18"):
        weights.load_pretrained(build_model(ModelConfig()), str(tmp_path / "r50.pth"), 18)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(SelfyError, match="cannot read"):
        weights.read_state_dict(tmp_path / "junk.pth")
    with pytest.raises(SelfyError, match="does not exist"):
        weights.read_state_dict(tmp_path / "missing.pth")
    with pytest.raises(SelfyError, match="full-width"):
        weights.load_pretrained(build_model(ModelConfig(backbone="tsn-r18-w16")), "imagenet", 18, width=16)


def test_module_prefix_is_stripped(tmp_path):
    sd = {"module." + k: v for k, v in torchvision.models.resnet18().state_dict().items()}
    torch.save({"state_dict": sd}, tmp_path / "ddp.pth")
    model = build_model(replace(ModelConfig(), block="none"))
    assert weights.load_pretrained(model, str(tmp_path / "ddp.pth"), 18)["loaded"] > 0


@pytest.mark.slow
def test_an_exported_model_loads_bit_for_bit_everywhere_a_run_is_accepted(tmp_path):
    """selfy-lab export: safetensors weights, config and model card; load_run, eval, cam and --pretrained take
    the folder; another architecture is one line naming the difference."""
    from helpers import cli_inproc, one_line_error

    from selfy_lab.store import results as R
    from selfy_lab.engine.checkpoint import load_run
    from selfy_lab.config.presets import resolve
    from selfy_lab.engine.train import fit

    run = resolve("smoke", overrides={"train": {"epochs": 1}})
    fit(run, tmp_path / "run")
    p = cli_inproc("export", tmp_path / "run", "--out", tmp_path / "model")
    assert p.returncode == 0, p.stderr
    assert {f.name for f in (tmp_path / "model").iterdir()} == {"model.safetensors", "config.yaml", "config.json",
                                                               "README.md"}
    card = (tmp_path / "model" / "README.md").read_text()
    assert run.run_hash in card and "tsn-r18-w8" in card and "| top1 |" in card and "git revision" in card
    import json

    import yaml
    meta = yaml.safe_load(card.split("---\n")[1])  # the front matter hub tooling reads
    assert meta["library_name"] == "selfy-lab" and meta["license"] == "mit" and meta["datasets"] == ["synthetic"]
    assert meta["model-index"][0]["results"][0]["metrics"][0]["type"] == "accuracy"
    hub = json.loads((tmp_path / "model" / "config.json").read_text())
    assert hub["library_name"] == "selfy-lab" and hub["num_classes"] == run.model.num_classes
    assert hub["selfy_lab_config"]["model"]["backbone"] == "tsn-r18-w8" and hub["run_id"] == run.run_hash
    _, trained = load_run(tmp_path / "run", "cpu")
    again, exported = load_run(tmp_path / "model", "cpu")
    assert again.run_hash == run.run_hash
    a, b = trained.state_dict(), exported.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    p = cli_inproc("eval", tmp_path / "model", "--out", tmp_path / "eval.csv")
    assert p.returncode == 0, p.stderr
    assert R.read_csv(tmp_path / "eval.csv")[0]["run_id"] == run.run_hash
    p = cli_inproc("cam", "--checkpoint", tmp_path / "model", "--clip", "0", "--out", tmp_path / "cam")
    assert p.returncode == 0, p.stderr
    p = cli_inproc("train", "--preset", "smoke", "--epochs", "1", "--backbone", "tsn-r18-w16", "--pretrained",
                   tmp_path / "model", "--out", tmp_path / "other")
    assert one_line_error(p, "its backbone does not match this model's")
    assert one_line_error(cli_inproc("export", tmp_path / "nowhere", "--out", tmp_path / "x"), "has not finished")


def test_the_models_shipped_in_the_repository_load():
    """results/models: the exported models the README's cam / stss examples use on a fresh clone."""
    from helpers import ROOT

    from selfy_lab.engine.checkpoint import load_run

    for name, block in (("tsn-r18-w16-baseline", "none"), ("tsn-r18-w16-selfy-3", "selfy")):
        run, model = load_run(ROOT / "results" / "models" / name, "cpu")
        assert run.model.block == block and not model.training
        with torch.no_grad():
            out = model(torch.zeros(1, run.model.frames, 3, run.data.size, run.data.size))
        assert out.shape == (1, 16) and torch.isfinite(out).all()
