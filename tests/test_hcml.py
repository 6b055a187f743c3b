"""Hierarchical contrastive motion learning: the InfoNCE loss, its pairs, the hierarchy in every level subset."""
import itertools
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from helpers import Stop, stop_after_first_epoch

from selfy_lab.config.run import ModelConfig
from selfy_lab.models import build_model
from selfy_lab.models.hcml import future_pairs, info_nce
from selfy_lab.config.presets import resolve

LEVELS = ("res2", "res3", "res4", "res5")


def test_info_nce_equals_a_direct_computation():
    torch.manual_seed(0)
    p, z, tau = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64), 0.2
    ref = 0.0
    for i in range(6):
        sims = [float(p[i] @ z[j]) / float(p[i].norm() * z[j].norm()) / tau for j in range(6)]
        ref += -(sims[i] - math.log(sum(math.exp(s) for s in sims)))
    assert info_nce(p, z, tau).item() == pytest.approx(ref / 6, rel=1e-6)


def test_info_nce_is_minimised_by_the_true_future_features():
    torch.manual_seed(0)
    z = torch.randn(32, 16)
    true = info_nce(z, z, 0.1)
    shuffled = info_nce(z, z[torch.randperm(32)], 0.1)
    noisy = info_nce(z + 0.5 * torch.randn_like(z), z, 0.1)
    assert true < noisy < shuffled
    assert true < 0.05  # distinct targets, a small temperature: the positive takes nearly all the mass
    p = torch.randn(32, 16, requires_grad=True)  # and gradient descent on the predictions finds them
    opt = torch.optim.SGD([p], lr=1.0)
    for _ in range(200):
        opt.zero_grad()
        info_nce(p, z, 0.1).backward()
        opt.step()
    sims = F.normalize(p.detach(), dim=1) @ F.normalize(z, dim=1).t()
    assert torch.equal(sims.argmax(1), torch.arange(32))  # every prediction now picks its own future


def test_pairs_put_time_t_beside_the_previous_level_at_t_plus_delta():
    B, T, D, delta, grid = 2, 5, 4, 2, 2
    idx = torch.arange(B * T, dtype=torch.float32).view(B, T, 1, 1, 1)
    cell = torch.arange(grid * grid, dtype=torch.float32).view(1, 1, 1, grid, grid)
    pred = (idx * 10 + cell).expand(B, T, D, grid, grid)  # value = 10 * (b T + t) + cell
    # the previous level at twice the resolution: each cell a constant 2x2 patch, so pooling keeps its value
    target = (idx * 10 + cell).repeat_interleave(2, -1).repeat_interleave(2, -2).expand(B, T, D, 2 * grid, 2 * grid)
    p, z = future_pairs(pred, target, delta, grid)
    assert p.shape == z.shape == (B * (T - delta) * grid * grid, D)
    # same clip, same cell, delta frames later: the target's index is the prediction's + 10 * delta
    assert torch.equal(z[:, 0] - p[:, 0], torch.full((len(p),), 10.0 * delta))
    rows = [(b, t, c) for b in range(B) for t in range(T - delta) for c in range(grid * grid)]
    assert p[:, 0].tolist() == [10 * (b * T + t) + c for b, t, c in rows]


def tiny(levels, encoder="diff", **kw):
    return ModelConfig(backbone="tsm-r18-w8", frames=4, num_classes=5, block="none", hierarchy=encoder,
                       hierarchy_levels=levels, offsets=(-1, 0, 1), window=(3, 3), dropout=0.0, **kw)


@pytest.mark.parametrize("encoder", ["diff", "selfy"])
@pytest.mark.parametrize("levels", [c for n in range(1, 5) for c in itertools.combinations(LEVELS, n)],
                         ids=lambda c: "+".join(c))
def test_the_hierarchy_trains_at_every_level_subset(levels, encoder):
    torch.manual_seed(0)
    model = build_model(tiny(levels, encoder)).train()
    model.hierarchy.loss_enabled = True
    out = model(torch.randn(2, 4, 3, 64, 64))
    aux = model.hierarchy.loss()
    assert out.shape == (2, 5) and torch.isfinite(out).all() and torch.isfinite(aux)
    (F.cross_entropy(out, torch.tensor([0, 3])) + aux).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert set(model.hierarchy.levels) == set(levels)


def test_the_hierarchy_starts_as_the_plain_backbone():
    torch.manual_seed(0)
    model = build_model(tiny(("res2", "res3", "res4"))).eval()
    plain = build_model(ModelConfig(backbone="tsm-r18-w8", frames=4, num_classes=5, block="none", dropout=0.0)).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("hierarchy.")})
    x = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), plain(x), atol=1e-6)


def test_the_target_is_not_trained_by_the_loss():
    torch.manual_seed(0)
    model = build_model(tiny(("res3",))).train()
    hier = model.hierarchy
    hier.loss_enabled = True
    hier.start()
    x = torch.randn(2, 4, 16, 8, 8)  # res3 output of the w8 backbone at 64x64
    prev = torch.randn(2, 4, 8, 16, 16, requires_grad=True)  # res2 output: the level's target
    hier.level("res3", x, prev)
    hier.loss().backward()
    assert prev.grad is None  # stop-gradient on the previous level
    assert hier.levels["res3"].target.weight.grad is not None


def test_each_level_predicts_the_future_motion_features_of_the_level_below():
    """The paper's objective: level k's motion features at t predict level k-1's motion features at t + delta;
    the lowest level predicts the stage before it. The loss is computed only where it is used."""
    torch.manual_seed(0)
    wide = dict(backbone="tsm-r18-w32")  # stem and res2 32 channels, res3 64; motion widths 8 and 8
    model = build_model(replace(tiny(("res2", "res3")), **wide)).train()
    hier = model.hierarchy
    res2, res3 = hier.levels["res2"], hier.levels["res3"]
    assert not res2.motion_target and res2.target.in_channels == 32  # the stem's output
    assert res3.motion_target and res3.target.in_channels == res2.fuse[0].in_channels == 8  # res2's motion width
    assert res3.predictor[0][0].in_channels == res3.fuse[0].in_channels == 8  # from the motion features alone
    seen = {}
    res3.target.register_forward_hook(lambda m, i, o: seen.update(target=i[0]) and None)
    res2.encoder.register_forward_hook(lambda m, i, o: seen.update(motion2=o) and None)
    x = torch.randn(2, 4, 3, 64, 64)
    model(x)
    assert hier._pending == [] and "target" not in seen  # not enabled: nothing computed
    hier.loss_enabled = True
    model(x)
    assert torch.equal(seen["target"], seen["motion2"].detach().flatten(0, 1))  # res2's motion, stop-gradient
    old = build_model(replace(tiny(("res2", "res3"), hcml_target="backbone", hcml_predictor="motion+appearance"), **wide))
    lv = old.hierarchy.levels["res3"]
    assert lv.target.in_channels == 32  # res2's backbone output
    assert lv.predictor[0][0].in_channels == 8 + 64  # res3's motion and its 64 backbone channels


def test_a_configuration_that_shows_the_future_is_refused_unless_allowed():
    for model, why in (({"backbone": "tsm-r18-w8", "block": "none"}, "TSM backbone"),
                       ({"block": "selfy", "offsets": "-1..1", "position": "res3"}, "selfy block at res3"),
                       ({"block": "tea", "position": "res4:every"}, "tea block at res4:every")):
        with pytest.raises(ValueError, match=why):
            resolve("smoke", overrides={"model": model, "train": {"aux": "hcml"}})
        assert resolve("smoke", overrides={"model": {**model, "hcml_allow_leak": True}, "train": {"aux": "hcml"}})
        assert resolve("smoke", overrides={"model": model})  # no contrastive objective: nothing to leak into
    for model in ({"block": "selfy", "offsets": "-2..0"}, {"block": "tea", "position": "res5"}):  # causal, or after
        assert resolve("smoke", overrides={"model": model, "train": {"aux": "hcml"}})


def test_aux_hcml_adds_the_frame_difference_hierarchy_and_keeps_earlier_run_keys():
    plain = resolve("quick", overrides={"model": {"block": "none"}})
    aux = resolve("quick", overrides={"model": {"block": "none"}, "train": {"aux": "hcml"}})
    assert aux.model.hierarchy == "diff" and plain.model.hierarchy == "none"
    assert aux.run_hash != plain.run_hash
    assert resolve("quick", overrides={"model": {"block": "none"}, "train": {"aux_weight": 1.0}}).run_hash == plain.run_hash  # defaults key nothing
    with pytest.raises(ValueError, match="looks past"):
        tiny(("res3",), hcml_delta=4)
    with pytest.raises(ValueError, match="hierarchy levels"):
        tiny(("pool1", "res3"))


@pytest.mark.slow
def test_training_with_the_auxiliary_loss_records_it(tmp_path):
    from selfy_lab.store import results as R
    from selfy_lab.engine.train import fit

    run = resolve("smoke", overrides={"model": {"block": "none"}, "train": {"aux": "hcml", "aux_weight": 0.5}})
    fit(run, tmp_path)
    train = R.read_metrics(tmp_path, "train")
    assert train["aux_loss"] > 0 and train["loss"] > 0.5 * train["aux_loss"]  # the total holds the weighted term


def test_a_sweep_crosses_the_auxiliary_loss_baseline_included():
    from selfy_lab.studies import ablate as A

    base = resolve("smoke", overrides={"model": {"frames": 8}})
    runs = A.plan(base, [None, (-3, -2, -1, 0)], {"aux": ["none", "hcml"]}, seeds=[0])  # causal: offsets <= 0
    got = sorted((r.run.model.block, r.run.train.aux, r.run.model.hierarchy) for r in runs)
    assert got == [("none", "hcml", "diff"), ("none", "none", "none"), ("selfy", "hcml", "diff"), ("selfy", "none", "none")]
    assert len({r.run_id for r in runs}) == 4 and any("aux=hcml" in r.label for r in runs)
    assert {r.run.variant()["aux"] for r in runs} == {"none", "hcml"}  # a column of every result row


# ---- pretraining without labels, then fine-tuning or a linear probe ----

PRETRAIN = dict(model=dict(block="none"), train=dict(objective="hcml", epochs=2), data=dict(synthetic_train=32))


def _weights(path):
    return torch.load(path / "checkpoint.pt", weights_only=True)["model"]


@pytest.mark.slow
def test_pretraining_never_reads_a_label_and_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from selfy_lab.data.benchmark import SyntheticClips
    from selfy_lab.engine.train import fit

    def no_labels(*a, **kw):
        raise AssertionError("pretraining read a label")

    monkeypatch.setattr(SyntheticClips, "__getitem__", no_labels)  # (clip, label) items
    monkeypatch.setattr(SyntheticClips, "labels", no_labels)
    run = resolve("smoke", overrides=PRETRAIN)
    assert run.model.hierarchy == "diff"
    assert fit(run, tmp_path / "a") == {}  # no validation: nothing labelled to score
    train = __import__("selfy_lab.store.results", fromlist=["x"]).read_metrics(tmp_path / "a", "train")
    assert train["loss"] > 0 and "top1" not in train

    with pytest.raises(Stop):
        fit(run, tmp_path / "b", stop_after_first_epoch)
    fit(run, tmp_path / "b")
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_pretrain_then_fine_tune_or_probe_then_eval(tmp_path):
    from selfy_lab.engine.evaluate import evaluate_run
    from selfy_lab.engine.train import fit

    pre = tmp_path / "pre"
    fit(resolve("smoke", overrides=PRETRAIN), pre)
    pretrained = _weights(pre)
    common = dict(model=dict(block="none", hierarchy="diff", pretrained=str(pre)), data=dict(label_fraction=0.5))
    fit(resolve("smoke", overrides=common), tmp_path / "ft")
    tuned = _weights(tmp_path / "ft")
    assert not torch.equal(tuned["backbone.conv1.weight"], pretrained["backbone.conv1.weight"])  # fine-tuned

    probe = resolve("smoke", overrides={**common, "train": dict(freeze_backbone=True)})
    fit(probe, tmp_path / "probe")
    probed = _weights(tmp_path / "probe")
    fixed = [k for k in pretrained if k.startswith(("backbone.", "hierarchy."))]
    assert fixed and all(torch.equal(probed[k], pretrained[k]) for k in fixed)  # BN statistics too
    assert not torch.equal(probed["fc.weight"], tuned["fc.weight"])
    _, metrics, _, _ = evaluate_run(tmp_path / "probe", device="cpu")
    assert 0 <= metrics["top1"] <= 1


def test_label_fraction_keeps_the_same_share_of_every_class():
    from selfy_lab.data.clips import label_subset
    from selfy_lab.data.datasets import build_dataset

    run = resolve("smoke", overrides=dict(data=dict(synthetic_train=64)))
    full = build_dataset(run, "train")
    sub = label_subset(full, 0.25)
    counts = torch.bincount(torch.as_tensor(sub.labels()), minlength=16)
    assert len(sub) == 16 and (counts == 1).all()  # 4 clips per class -> 1
    assert list(label_subset(full, 0.25).indices) == list(sub.indices)  # the same clips every time
    assert torch.equal(sub[(0, 7)][0], full[(int(sub.indices[0]), 7)][0])


def test_bad_pretraining_combinations_are_refused():
    with pytest.raises(ValueError, match="needs pretrained weights"):
        resolve("smoke", overrides=dict(train=dict(freeze_backbone=True)))
    with pytest.raises(ValueError, match="no labels to add"):
        resolve("smoke", overrides=dict(train=dict(objective="hcml", aux="hcml")))


def test_result_rows_tell_scratch_fine_tuned_and_probed_runs_apart(tmp_path):
    from selfy_lab.store import results as R
    from selfy_lab.reports import tables as T

    scratch = resolve("smoke", overrides=dict(data=dict(label_fraction=0.1)))
    probe = resolve("smoke", overrides=dict(model=dict(pretrained="runs/hcml"), train=dict(freeze_backbone=True)))
    assert (scratch.variant()["init"], scratch.variant()["labels"]) == ("scratch", "0.1")
    assert (probe.variant()["init"], probe.variant()["labels"]) == ("file-probe", "1")
    table = tmp_path / R.RUNS_TABLE  # the columns survive the results store
    R.write_csv(table, R.result_rows(scratch, {"top1": 0.5}) + R.result_rows(probe, {"top1": 0.4}), R.RUN_COLUMNS)
    df = T.load_runs(table)
    assert sorted(zip(df["init"], df["labels"])) == [("file-probe", "1"), ("scratch", "0.1")]


@pytest.mark.parametrize("encoder", ["diff", "selfy"])
def test_motion_features_never_see_the_frames_they_predict(encoder):
    """m_t depends on frames <= t only: changing frames after t leaves m_0..m_t as they were."""
    from selfy_lab.models.hcml import DifferenceEncoder, SelfyEncoder
    from selfy_lab.models.selfy import BlockWidths

    torch.manual_seed(0)
    enc = (DifferenceEncoder(8, 4) if encoder == "diff" else
           SelfyEncoder(8, width=4, offsets=(-2, -1, 0, 1, 2), window=(3, 3), reduce=1,
                        widths=BlockWidths().scaled(0.125))).eval()
    x = torch.rand(2, 6, 8, 8, 8)
    later = x.clone()
    later[:, 3:] = torch.rand_like(later[:, 3:])  # new frames 3..5
    with torch.no_grad():
        a, b = enc(x), enc(later)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-6) and not torch.allclose(a[:, 3:], b[:, 3:])


def test_sweep_variants_keep_braced_offsets_and_fill_seed_paths():
    from selfy_lab.studies import ablate as A

    base = resolve("smoke", overrides={"model": {"frames": 8}})
    runs = A.plan(base, [(-1, 0, 1)], variants=[{"block": "selfy", "offsets": "{1}"},
                                                {"block": "none", "pretrained": "runs/pre/seed-{seed}"}], seeds=[0, 3])
    assert {r.run.model.offsets for r in runs if r.run.model.block == "selfy"} == {(1,)}
    assert sorted(r.run.model.pretrained for r in runs if r.run.model.block == "none") == ["runs/pre/seed-0", "runs/pre/seed-3"]


def test_a_probe_takes_no_auxiliary_loss_and_an_unfinished_pretraining_is_refused(tmp_path):
    from selfy_lab.engine.checkpoint import save_checkpoint
    from selfy_lab.core.errors import SelfyError
    from selfy_lab.models import build_model
    from selfy_lab.engine.weights import load_pretrained

    with pytest.raises(ValueError, match="no contrastive loss to add"):
        resolve("smoke", overrides=dict(model=dict(pretrained="runs/x"), train=dict(freeze_backbone=True, aux="hcml")))
    run = resolve("smoke", overrides=dict(model=dict(block="none")))
    model = build_model(run.model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    (tmp_path / "plain").mkdir()
    save_checkpoint(tmp_path / "plain" / "checkpoint.pt", model, opt, torch.amp.GradScaler("cuda", enabled=False), 1, [], run)
    target = build_model(replace(run.model, hierarchy="diff"))
    with pytest.raises(SelfyError, match="has not finished"):
        load_pretrained(target, str(tmp_path / "plain"), 18, 8)
    from selfy_lab.store import results as R

    R.write_metrics(tmp_path / "plain", R.result_rows(run, {"top1": 0.5}))  # now it has finished
    report = load_pretrained(target, str(tmp_path / "plain"), 18, 8)  # a plain run: the backbone, a new hierarchy
    assert report["prefixes"] == ["backbone."] and any(n.startswith("hierarchy.") for n in report["new"])


@pytest.mark.slow
def test_negatives_are_gathered_across_processes_like_one_process_with_the_whole_batch(tmp_path):
    """torchrun with 2 processes, each holding half the batch: the same loss and prediction gradients as one
    process with the whole batch (every process's targets are negatives; the local ones keep their gradient)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from helpers import free_port

    port = free_port()
    out = tmp_path / "ddp.json"
    worker = Path(__file__).with_name("ddp_info_nce_worker.py")
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                        "127.0.0.1", "--master-port", str(port), str(worker), str(out)], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(out.read_text())
    torch.manual_seed(0)
    pred, target = torch.randn(12, 5, dtype=torch.float64), torch.randn(12, 5, dtype=torch.float64)
    pred.requires_grad_(True)
    loss = info_nce(pred, target, 0.2)
    loss.backward()
    assert got["loss"] == pytest.approx(loss.item(), rel=1e-12)
    assert torch.allclose(torch.tensor(got["grad"], dtype=torch.float64), pred.grad, atol=1e-12)


@pytest.mark.slow
def test_a_pretraining_without_its_checkpoint_trains_again_and_a_fine_tune_says_what_to_run(tmp_path):
    """As on a fresh clone, where a pretraining folder holds its metrics but no checkpoint (none is committed)."""
    from selfy_lab.store import results as R
    from selfy_lab.core.errors import SelfyError
    from selfy_lab.engine.train import fit

    pre = tmp_path / "pre"
    run = resolve("smoke", overrides=PRETRAIN)
    fit(run, pre)
    R.checkpoint_path(pre).unlink()
    ft = resolve("smoke", overrides={"model": {"block": "none", "hierarchy": "diff", "pretrained": str(pre)}})
    with pytest.raises(SelfyError, match=f"holds no checkpoint.pt: its checkpoint was not kept; train it again "
                                         f"\\(selfy-lab pretrain --method hcml --seed 0 --out {pre}\\)"):
        fit(ft, tmp_path / "ft")
    events = []
    fit(run, pre, lambda e, **k: events.append(e))
    assert "retrain" in events and R.checkpoint_path(pre).is_file() and R.is_finished(pre)
    assert fit(ft, tmp_path / "ft2")["top1"] >= 0  # now it fine-tunes


@pytest.mark.slow
def test_pretraining_on_a_folder_of_your_own_videos_then_fine_tuning(tmp_path):
    """--dataset videos: every video file and frame folder under --data-root, recursively, no list, no labels;
    an unreadable file is skipped and counted, an empty folder is one line; the result fine-tunes."""
    import numpy as np
    from helpers import cli_inproc, one_line_error, write_video
    from PIL import Image

    root = tmp_path / "mine"
    write_video(root / "day1" / "a.mp4", 20)
    write_video(root / "day2" / "deep" / "b.mp4", 14)
    (root / "day2" / "broken.mp4").write_bytes(b"not a video")
    (root / "notes.txt").write_text("not a clip")
    frames = root / "extracted" / "clip7"
    frames.mkdir(parents=True)
    for i in range(10):
        Image.fromarray(np.full((40, 50, 3), 20 * i, np.uint8)).save(frames / f"img_{i:04d}.png")
    p = cli_inproc("pretrain", "--preset", "smoke", "--dataset", "videos", "--data-root", root,
                   "--out", tmp_path / "pre")
    assert p.returncode == 0, p.stderr
    assert "data: 3 training clips, labels unread, 1 clip skipped (not on disk, or unreadable)" in p.stdout
    p = cli_inproc("train", "--preset", "smoke", "--block", "none", "--hierarchy", "diff", "--epochs", "1",
                   "--pretrained", tmp_path / "pre", "--out", tmp_path / "ft")
    assert p.returncode == 0, p.stderr
    assert "loaded" in p.stdout and (tmp_path / "ft" / "metrics.csv").exists()
    (tmp_path / "empty").mkdir()
    assert one_line_error(cli_inproc("pretrain", "--preset", "smoke", "--dataset", "videos", "--data-root",
                                     tmp_path / "empty", "--out", tmp_path / "e"), "holds no readable videos")
    assert one_line_error(cli_inproc("train", "--preset", "smoke", "--dataset", "videos", "--data-root", root,
                                     "--out", tmp_path / "t"), "--dataset videos holds no labels")


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_shipped_pretraining_experiment_resolves_and_reaches_every_stage(preset):
    """Each file of experiments/pretrain resolves as `selfy-lab pretrain --experiment` reads it (the hierarchy
    alone, no block) and builds; its levels reach res5, so a linear probe reads a fully pretrained network."""
    from helpers import ROOT

    from selfy_lab.config.experiments import run_from_flags
    from selfy_lab.models.flops import count_macs

    files = sorted((ROOT / "experiments" / "pretrain").glob("*.yaml"))
    assert files
    for f in files:
        run, _ = run_from_flags({"experiment": f, "preset": preset, "objective": "hcml", "block": "none"}, "pretrain")
        assert run.train.objective == "hcml" and run.model.block == "none" and run.model.hierarchy != "none"
        assert run.model.hierarchy_levels[-1] == "res5" and ("-w" in run.model.backbone) == (preset == "quick")
        with torch.device("meta"):
            m = build_model(run.model).eval()
            assert count_macs(m, torch.empty(1, run.model.frames, 3, run.data.size, run.data.size)) > 0
