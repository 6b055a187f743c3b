"""Corruptions (pure functions) and the robustness evaluation built on them."""
import csv

import numpy as np
import pytest
from helpers import cli_inproc

from selfy_lab.data import corrupt as C
from selfy_lab.core.paper import MOTION_BLUR_RADIUS_SIGMA


def clip(T=8, H=64, W=64, seed=0):
    return np.random.default_rng(seed).integers(30, 226, (T, H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize("severity,side224,side64", [(1, 40, 11), (2, 80, 23), (3, 120, 34), (4, 160, 46),
                                                     (5, 200, 57), (6, 224, 64)])
def test_occlusion_side_lengths(severity, side224, side64):
    assert C.occlusion_side(severity, 224) == side224
    assert C.occlusion_side(severity, 64) == side64
    f = clip(1, 224, 224)[0]
    out = C.occlusion(f, severity)
    black = np.all(out == 0, axis=2)
    ys, xs = np.nonzero(black)
    assert black.sum() == side224 * side224
    assert ys.min() == (224 - side224) // 2 and xs.max() == (224 - side224) // 2 + side224 - 1  # centred
    assert np.array_equal(out[~black], f[~black])


@pytest.mark.parametrize("severity", range(1, 7))
def test_blur_kernel_parameters_per_level(severity):
    assert C.motion_blur_params(severity, 224) == MOTION_BLUR_RADIUS_SIGMA[severity - 1]
    r, s = C.motion_blur_params(severity, 112)
    assert r == max(1, round(MOTION_BLUR_RADIUS_SIGMA[severity - 1][0] / 2)) and s == MOTION_BLUR_RADIUS_SIGMA[severity - 1][1] / 2


def test_paper_blur_levels_grow_in_strength():
    f = clip(1, 224, 224)[0]
    diffs = [np.abs(C.motion_blur(f, s, 20.0).astype(float) - f).mean() for s in range(2, 7)]
    assert all(a < b for a, b in zip(diffs, diffs[1:]))  # levels 2-6: longer, wider kernels


def test_seeded_angle_is_reproducible_per_clip():
    c = clip()
    a = C.corrupt_clip(c, "blur", 4, (3,), seed=11)
    b = C.corrupt_clip(c, "blur", 4, (3,), seed=11)
    d = C.corrupt_clip(c, "blur", 4, (3,), seed=12)
    assert np.array_equal(a, b) and not np.array_equal(a, d)
    # ImageNet-C corruptions draw from numpy's global generator: seeded per clip, global state untouched
    np.random.seed(5)
    before = np.random.random()
    np.random.seed(5)
    x = C.corrupt_clip(c, "gaussian_noise", 3, (3,), seed=1)
    y = C.corrupt_clip(c, "gaussian_noise", 3, (3,), seed=1)
    assert np.array_equal(x, y) and np.random.random() == before


@pytest.mark.parametrize("kind", ["occlusion", "blur", "gaussian_noise", "jpeg_compression", "fog"])
def test_only_the_centre_frame_is_corrupted(kind):
    c = clip()
    assert C.centre_frame(8) == 3 and C.parse_frames("center", 8) == (3,)
    out = C.corrupt_clip(c, kind, 3, C.parse_frames("center", 8), seed=0)
    changed = [t for t in range(8) if not np.array_equal(out[t], c[t])]
    assert changed == [3]
    assert C.parse_frames("4,5", 8) == (3, 4) and C.parse_frames("all", 8) == tuple(range(8))


def test_temporal_corruptions():
    c = clip()
    held = C.corrupt_clip(c, "frame_rate_drop", 1, (), 0)
    assert [int(np.argmax([np.array_equal(held[t], c[s]) for s in range(8)])) for t in range(8)] == [0, 0, 2, 2, 4, 4, 6, 6]
    assert np.array_equal(C.frame_rate_drop(c, 3)[5], c[4])
    avg = C.corrupt_clip(c, "temporal_blur", 1, (), 0)
    assert np.allclose(avg[4], c[3:6].astype(float).mean(0), atol=1)
    assert np.allclose(avg[0], c[0:2].astype(float).mean(0), atol=1)  # clipped at the ends


@pytest.mark.slow
def test_every_imagenet_c_kind_runs_with_its_severities():
    kinds = C.kinds()
    f = clip(8, 64, 64)
    for name, k in kinds.items():
        out = C.corrupt_clip(f, name, k.severities, (3,), seed=0)
        assert out.shape == f.shape and out.dtype == np.uint8
        with pytest.raises(ValueError, match=f"valid severities are 1-{k.severities}"):
            C.corrupt_clip(f, name, k.severities + 1, (3,), seed=0)
    assert kinds["blur"].severities == kinds["occlusion"].severities == 6
    assert len([k for k in kinds.values() if k.temporal]) >= 2 and len(kinds) >= 19 + 4


def cli(*args):
    """``selfy-lab corrupt ARGS``, in this process."""
    return cli_inproc("corrupt", *args)


def test_list_shows_every_kind_with_its_range():
    p = cli("--list")
    assert p.returncode == 0
    for name, k in C.kinds().items():
        assert name in p.stdout
    assert "1-6" in p.stdout and "1-5" in p.stdout


@pytest.mark.parametrize("args,msg", [
    (["--kind", "blur", "--severity", "7"], "valid range per kind: blur 1-6"),
    (["--kind", "gaussian_noise", "--severity", "6"], "gaussian_noise 1-5"),
    (["--kind", "blur", "--severity", "5-2"], "reversed"),
    (["--kind", "blur", "--severity", "x"], "not a number"),
    (["--kind", "rain"], "unknown corruption 'rain'"),
    (["--kind", "blur", "--corrupted-frames", "a,b"], "--corrupted-frames"),
    (["--checkpoint", "/nonexistent/run"], "no model at"),
    (["--examples", "-1"], "--examples must be at least 0"),
    ([], "names no offsets sweep"),
])
def test_bad_input_is_one_line(args, msg, tmp_path):
    from helpers import one_line_error

    p = cli_inproc("corrupt", "--results-root", tmp_path, *args)
    assert one_line_error(p, msg), p.stderr


@pytest.mark.slow
def test_robustness_csv_schema_and_resume(smoke_sweep, tmp_path):
    from selfy_lab.studies import robustness as R
    from selfy_lab.store.results import ROBUSTNESS_COLUMNS, sweep_run_dirs

    models = sweep_run_dirs(smoke_sweep)[:2]
    out = tmp_path / "rob"
    calls = []
    R.evaluate_robustness(models, ["occlusion", "blur"], [1, 6], "center", out,
                          on_event=lambda e, **k: calls.append(k.get("skipped")) if e == "cell" else None)
    rows = list(csv.DictReader(open(out / "robustness.csv")))
    assert list(rows[0]) == list(ROBUSTNESS_COLUMNS)
    assert {(r["kind"], r["severity"]) for r in rows} == {(k, s) for k in ("occlusion", "blur") for s in ("0", "1", "6")}
    assert {r["corrupted_frames"] for r in rows if r["severity"] != "0"} == {"center"}
    assert {r["frames"] for r in rows} == {"8"}  # the variant field: clip length
    assert {r["split"] for r in rows} == {"test"}  # the built-in benchmark's held-out split, by default
    assert len(rows) == len({(r["run_id"], r["kind"], r["severity"], r["corrupted_frames"], r["metric"]) for r in rows})
    assert calls.count(False) == 2 * 2 * 3
    calls.clear()
    R.evaluate_robustness(models[:1], ["blur"], [1], "center", out, split="val",  # another split: its own cells
                          on_event=lambda e, **k: calls.append(k.get("skipped")) if e == "cell" else None)
    assert calls == [False, False]
    rows = list(csv.DictReader(open(out / "robustness.csv")))
    assert {r["split"] for r in rows} == {"test", "val"} and len(rows) == (2 * 2 * 3 + 2) * 4
    calls.clear()
    R.evaluate_robustness(models, ["occlusion", "blur"], [1, 6], "center", out,
                          on_event=lambda e, **k: calls.append(k.get("skipped")) if e == "cell" else None)
    assert calls and all(calls)  # every cell finished: nothing recomputed
    summary = list(csv.DictReader(open(out / "robustness_summary.csv")))
    assert {r["split"] for r in summary} == {"test", "val"}
    by = {(r["run_id"], r["kind"], r["metric"]): float(r["value"]) for r in summary if r["split"] == "test"}
    for (run_id, kind, metric), v in by.items():
        if metric == "rPC" and by[(run_id, kind, "clean_top1")] > 0:
            assert v == pytest.approx(by[(run_id, kind, "mPC")] / by[(run_id, kind, "clean_top1")])
    # full occlusion of the centre frame changes what the models see
    clean = {r["run_id"]: r["value"] for r in rows if r["severity"] == "0" and r["metric"] == "loss"}
    occl = {r["run_id"]: r["value"] for r in rows if r["kind"] == "occlusion" and r["severity"] == "6" and r["metric"] == "loss"}
    assert clean != occl


@pytest.mark.slow
def test_corrupt_command_default_models_and_outputs(smoke_sweep, tmp_path):
    import shutil

    root = tmp_path / "results"
    shutil.copytree(smoke_sweep, root / "sweep")  # the default: the Table 3a sweep the results README names
    (root / "README.md").write_text("# Results\n\n<!-- table paper 3a-tsn sweep -->\n<!-- end table -->\n")
    p = cli("--kind", "occlusion,temporal_blur", "--severity", "2", "--results-root", str(root), "--examples", "1",
            "--out", str(tmp_path / "rob"))
    assert p.returncode == 0, p.stderr
    assert "mPC" in p.stdout and "rPC" in p.stdout
    for f in ("robustness.csv", "robustness_summary.csv", "figures/robustness_occlusion.png",
              "figures/robustness_occlusion.pdf", "figures/robustness_temporal_blur.png"):
        assert (tmp_path / "rob" / f).exists(), f
    assert len(list((tmp_path / "rob" / "examples").glob("*.png"))) == 2
    rows = list(csv.DictReader(open(tmp_path / "rob" / "robustness.csv")))
    assert {r["corrupted_frames"] for r in rows if r["kind"] == "temporal_blur" and r["severity"] != "0"} == {"all"}
    p = cli("--results-root", str(tmp_path / "empty"))
    assert p.returncode == 2 and "names no offsets sweep" in p.stderr


def test_the_private_motion_blur_kernel_we_call_is_where_we_call_it():
    """corrupt.motion_blur calls imagecorruptions' private _motion_blur (ImageNet-C's kernel with explicit
    parameters); the dependency is pinned below 1.2, and this fails the day the function moves or changes."""
    import inspect

    from imagecorruptions.corruptions import _motion_blur

    assert list(inspect.signature(_motion_blur).parameters) == ["x", "radius", "sigma", "angle"]
    frame = np.full((32, 32, 3), 128, np.uint8)
    frame[12:20, 12:20] = 255
    out = _motion_blur(frame, radius=3, sigma=1.0, angle=0.0)
    assert out.shape == frame.shape and not np.array_equal(np.clip(out, 0, 255).astype(np.uint8), frame)
