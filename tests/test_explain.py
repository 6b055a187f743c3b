"""Grad-CAM for clip models and STSS maps: shapes, normalisation, figures, the cam / stss commands."""
import shutil

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from helpers import cli_inproc, one_line_error

from selfy_lab.config.run import ModelConfig
from selfy_lab.data import synthetic as syn
from selfy_lab.studies.explain import CAM_METHODS, clip_cam, stss_from_model, stss_from_pixels
from selfy_lab.models import build_model
from selfy_lab.models.extract import soft_argmax_flow
from selfy_lab.studies.explain import default_query
from selfy_lab.reports.viz import stss_flow_figure, stss_likelihood_figure, stss_query_figure


def moving_clip(T=8, size=64):
    arr, label = syn.render_clip(0, "val", 0, T, size)  # class 0: moving something left
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(), label


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model(ModelConfig(backbone="tsm-r18-w16", frames=8, num_classes=16, offsets=(-1, 0, 1), window=(5, 5),
                                reduce=1, dropout=0.0))
    for mod in m.modules():  # a trained-looking block: non-zero output BN
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.data.fill_(0.5)
    return m.eval()


@pytest.mark.parametrize("method", CAM_METHODS)
def test_cam_is_per_frame_and_normalised_per_clip(model, method):
    clip, label = moving_clip()
    cam = clip_cam(model, clip, label, method)
    assert cam.shape == (8, 64, 64) and np.isfinite(cam).all()
    assert cam.min() >= 0 and cam.max() == pytest.approx(1.0, abs=1e-4)  # one scale for the whole clip
    per_frame_max = cam.reshape(8, -1).max(1)
    assert not np.allclose(cam[0], cam[-1])  # frames differ on a moving clip
    if method == "gradcam":
        assert per_frame_max.min() < 0.999  # not every frame stretched to 1, as per-frame scaling would do


def test_cam_at_a_block_position_and_other_layers(model):
    clip, label = moving_clip()
    m2 = build_model(ModelConfig(backbone="tsn-r18-w8", frames=8, num_classes=16, offsets=(-1, 0, 1), window=(3, 3),
                                 reduce=1, position=("res5",))).eval()
    assert clip_cam(m2, clip, 0).shape == (8, 64, 64)  # the block at res5 outputs (B, T, C, h, w)
    for layer in ("res3", "res4"):
        assert np.isfinite(clip_cam(model, clip, label, "gradcam", layer)).all()
    with pytest.raises(ValueError, match="unknown CAM layer"):
        clip_cam(model, clip, label, "gradcam", "conv1")
    with pytest.raises(ValueError, match="unknown CAM method"):
        clip_cam(model, clip, label, "scorecam")


def test_stss_from_model_is_the_blocks_stss(model):
    clip, _ = moving_clip()
    st = stss_from_model(model, clip)
    assert st["S"].shape == (8, 3, 5, 5, 8, 8) and st["offsets"] == (-1, 0, 1)
    assert np.allclose(st["S"][:, 1, 2, 2], 1.0, atol=1e-3)  # l = 0, (u, v) = 0: each feature with itself
    with pytest.raises(ValueError, match="no SELFY block"):
        stss_from_model(build_model(ModelConfig(backbone="tsn-r18-w8", block="none", num_classes=16)).eval(), clip)


def test_soft_argmax_flow_follows_the_motion():
    clip, _ = moving_clip()
    st = stss_from_pixels(clip, (-1, 1), (5, 5), cell=4)
    t, y, x = default_query(st)
    flow = soft_argmax_flow(st["S"])[t, :, :, y, x]  # (L, 2): (du, dv) for l = -1, +1
    assert flow[0, 1] > 0.3 and flow[1, 1] < -0.3  # moving left: came from the right, goes to the left


@pytest.mark.parametrize("offsets", [(0,), (1,), (-1, 0, 1), (-2, 0, 2), (-3, -2, -1, 0, 1, 2, 3)])
def test_stss_figures_for_every_offset_set(offsets):
    clip, _ = moving_clip()
    st = stss_from_pixels(clip, offsets, (5, 5))
    q = default_query(st)
    frames = clip.permute(0, 2, 3, 1).numpy()
    for fig in (stss_query_figure(frames, st, q), stss_flow_figure(frames, st, q[0]), stss_likelihood_figure(frames, st, q)):
        assert len(fig.axes) >= len(offsets)
        plt.close(fig)


@pytest.mark.slow
def test_stss_command_with_no_flags_writes_pngs(tmp_path):
    p = cli_inproc("stss", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    for name in ("stss_query.png", "stss_flow.png", "stss_likelihood.png"):
        assert (tmp_path / name).stat().st_size > 5000
    assert one_line_error(cli_inproc("stss", "--out", tmp_path, "--query", "3,99,1"), "outside the STSS")
    assert one_line_error(cli_inproc("stss", "--out", tmp_path, "--query", "3,x"), "must be t,y,x")
    assert one_line_error(cli_inproc("stss", "--out", tmp_path, "--cell", "0"), "--cell must be at least 1")


@pytest.mark.slow
def test_cam_and_stss_commands_on_trained_models(smoke_sweep, tmp_path):
    from selfy_lab.store.results import read_run_config, sweep_run_dirs

    root = tmp_path / "results"
    shutil.copytree(smoke_sweep, root / "sweep")
    p = cli_inproc("cam", "--sweep", root / "sweep", "--clip", "0", "--clip", "3", "--out", tmp_path / "cam")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "cam" / "cam_clip0.png").stat().st_size > 5000 and (tmp_path / "cam" / "cam_clip3.png").exists()
    assert "l in {1}" in p.stdout and "l in -3..3" in p.stdout
    runs = {(c.model.offsets if c.model.block != "none" else None, c.train.seed): d
            for d in sweep_run_dirs(root / "sweep") for c in [read_run_config(d)]}
    p = cli_inproc("stss", "--checkpoint", runs[((1,), 0)], "--out", tmp_path / "st")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "st" / "stss_query.png").stat().st_size > 5000
    assert one_line_error(cli_inproc("stss", "--checkpoint", runs[(None, 0)], "--out", tmp_path / "st"), "no SELFY block")
    assert one_line_error(cli_inproc("cam", "--checkpoint", tmp_path / "nope"), "no checkpoint")
    assert one_line_error(cli_inproc("cam", "--out", "/proc/selfy-lab-cam"), "cannot write to /proc/selfy-lab-cam")


@pytest.mark.slow
def test_cam_and_stss_of_your_own_clip(smoke_sweep, tmp_path):
    """--video takes a video file or a frame folder; --class makes the CAM explain that class."""
    from helpers import write_video
    from PIL import Image

    from selfy_lab.studies.explain import cam_clips, stss_clip
    from selfy_lab.reports.viz import write_cam_figures, write_stss_figures
    from selfy_lab.store.results import read_run_config, sweep_run_dirs

    runs = {(c.model.offsets if c.model.block != "none" else None, c.train.seed): d
            for d in sweep_run_dirs(smoke_sweep) for c in [read_run_config(d)]}
    video = write_video(tmp_path / "mine.mp4", 30, size=(60, 80))
    shown = write_cam_figures(cam_clips([runs[((1,), 0)], runs[((-3, -2, -1, 0, 1, 2, 3), 0)]], video=video,
                                        class_name="moving something right"), tmp_path / "cam")
    assert len(shown) == 1 and shown[0]["path"].name == "cam_mine.png" and shown[0]["path"].stat().st_size > 5000
    assert all(r["correct"] is None and r["target"] == "moving something right" for r in shown[0]["rows"])
    assert shown[0]["frames"].shape == (8, 32, 32, 3)  # sampled and cropped like the test protocol
    own = cam_clips([runs[((1,), 0)]], video=video)
    assert own[0]["rows"][0]["target"] == own[0]["rows"][0]["pred"]  # no --class: the prediction is explained
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(np.full((40, 50, 3), 20 * i, np.uint8)).save(folder / f"img_{i:03d}.png")
    res = stss_clip(video=folder, frames=8, size=32, cell=4)
    assert res["name"] == "frames" and all(p.stat().st_size > 3000 for p in write_stss_figures(res, tmp_path / "st"))
    res = stss_clip(runs[((1,), 0)], video=video)
    assert res["name"] == "mine.mp4"
    assert one_line_error(cli_inproc("cam", "--checkpoint", runs[((1,), 0)], "--video", tmp_path / "none.mp4",
                                     "--out", tmp_path / "c3"), "none.mp4 does not exist")
    assert one_line_error(cli_inproc("stss", "--video", tmp_path / "mine.txt", "--out", tmp_path / "s3"),
                          "expected a video file")


@pytest.mark.parametrize("size", [32, 64, 97, 112, 224])
def test_stage_sizes_match_the_network_and_pick_the_cam_layer(size):
    from selfy_lab.studies.explain import auto_cam_layer
    from selfy_lab.models.backbones import stage_sizes, stages

    net = build_model(ModelConfig(backbone="tsn-r18-w8", block="none", frames=1, num_classes=3)).eval()
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.shape[-1]))
             for n, m in stages(net.backbone).items()]
    with torch.no_grad():
        net(torch.zeros(1, 1, 3, size, size))
    for h in hooks:
        h.remove()
    sides = stage_sizes(size)
    assert {n: sides[n] for n in seen} == seen
    layer = auto_cam_layer(size)
    assert sides[layer] >= 7 or layer == "res2"
    deeper = {"res2": "res3", "res3": "res4", "res4": "res5"}.get(layer)
    assert deeper is None or sides[deeper] < 7  # the deepest stage that is large enough
    assert auto_cam_layer(224) == "res5" and auto_cam_layer(64) == "res3"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """A trained smoke run on 3-frame clips, whose CAM figure is narrower than its title, trained on 8 clips, validated on 4."""
    from selfy_lab.config.presets import resolve
    from selfy_lab.engine.train import fit

    out = tmp_path_factory.mktemp("short") / "run"
    fit(resolve("smoke", overrides={"model": {"frames": 3}, "data": {"synthetic_train": 8, "synthetic_val": 4}}), out)
    return out


@pytest.mark.slow
def test_cam_of_models_that_agree_everywhere_shows_the_first_clips_and_says_so(short_run, tmp_path):
    p = cli_inproc("cam", "--checkpoint", short_run, "--checkpoint", short_run, "--out", tmp_path / "cam")  # one model twice
    assert p.returncode == 0, p.stderr
    said = [line for line in p.stdout.splitlines() if "showing the first" in line]
    assert said == ["no validation clip where the models' predictions differ and one is right: showing the first 2 clips"]
    assert sorted(f.name for f in (tmp_path / "cam").iterdir()) == ["cam_clip0.png", "cam_clip1.png"]
    assert "[run]" in p.stdout  # the models' labels name their run directories
    asked = cli_inproc("cam", "--checkpoint", short_run, "--checkpoint", short_run, "--disagree", "--out", tmp_path / "c2")
    assert one_line_error(asked, "no validation clip matches")  # asked for disagreement: no silent substitute


def test_cam_figure_title_fits_a_short_clip(short_run, tmp_path, monkeypatch):
    from selfy_lab.reports import viz
    from selfy_lab.studies.explain import cam_clips

    seen = []
    real = viz.save_figure

    def keep(fig, *a, **k):
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        title = next(t for t in fig.texts if t.get_text() == fig.get_suptitle())
        row_labels = [t for ax in fig.axes for t in ax.texts]
        seen.append((fig.bbox.bounds, title.get_window_extent(renderer),
                     max(t.get_window_extent(renderer).y1 for t in row_labels),
                     [ax.get_window_extent(renderer).height for ax in fig.axes]))
        return real(fig, *a, **k)

    monkeypatch.setattr(viz, "save_figure", keep)
    shown = viz.write_cam_figures(cam_clips([short_run], clips=[0]), tmp_path / "cam")
    assert shown[0]["frames"].shape[0] == 3
    (x0, y0, width, height), title, labels_top, panel_heights = seen[0]
    assert x0 <= title.x0 and title.x1 <= x0 + width and title.y1 <= y0 + height  # not cut off at either side
    assert title.y0 >= labels_top  # above the row titles, not over them
    assert min(panel_heights) > 0.25 * height  # the panels kept their size
