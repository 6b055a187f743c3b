"""Data: list files in the formats users have, sampling, transforms, flips, the built-in benchmark."""
import numpy as np
import pytest
import torch
from helpers import SHARED

from selfy_lab.config.run import DataConfig
from selfy_lab.data import synthetic as syn
from selfy_lab.data.datasets import build_dataset, check_entries
from selfy_lab.data.flip import flip_table, mirror_pairs
from selfy_lab.data.lists import read_categories, read_list
from selfy_lab.data.loader import EpochBatchSampler
from selfy_lab.data.sampling import segment_indices
from selfy_lab.data.transforms import IMAGENET_MEAN, IMAGENET_STD, clip_from_frames, normalize, resize
from selfy_lab.core.errors import DataError
from selfy_lab.config.presets import resolve


def test_category_file_without_trailing_newline():
    names = read_categories(SHARED / "category.txt")
    assert len(names) == 174
    assert (SHARED / "category.txt").read_text().count("\n") == 173


def test_flip_policies_on_the_real_class_list():
    names = read_categories(SHARED / "category.txt")
    assert mirror_pairs(names) == {86: 87, 87: 86, 93: 94, 94: 93, 166: 167, 167: 166}
    skip = flip_table(names, "skip")
    assert [i for i, t in enumerate(skip) if t is None] == [86, 87, 93, 94, 166, 167]
    for not_direction in (21, 50, 117, 119):  # "upright", "pulling it right out"
        assert skip[not_direction] == not_direction
    swap = flip_table(names, "swap")
    assert swap[86] == 87 and swap[167] == 166 and swap[50] == 50
    assert flip_table(names, "none") == [None] * 174


def test_real_list_lines_parse_and_reroot(tmp_path):
    entries = read_list(SHARED / "v1_val_list_excerpt.txt", root=tmp_path, num_classes=174)
    assert len(entries) == 300
    first = entries[0]
    assert first.path == tmp_path / "85" and first.num_frames == 46 and first.label == 30
    assert first.source.endswith("v1_val_list_excerpt.txt:1")
    v2 = read_list(SHARED / "v2_val_list_excerpt.txt", root=tmp_path, num_classes=174)
    assert v2[0].path == tmp_path / "207518"


@pytest.mark.parametrize("line,msg", [
    ("a 10", "expected 3 columns"), ("a 10 3 x", "expected 3 columns"), ("a ten 3", "must be integers"),
    ("a 10 174", "out of range"), ("a 10 -1", "out of range"), ("a 0 3", "at least 1"),
])
def test_bad_list_lines_name_file_and_line(tmp_path, line, msg):
    lst = tmp_path / "list.txt"
    lst.write_text("ok 5 1\n" + line + "\n")
    with pytest.raises(DataError, match=msg) as e:
        read_list(lst, num_classes=174)
    assert f"{lst}:2:" in str(e.value)


def test_segment_sampling():
    rng = np.random.default_rng(0)
    tr = segment_indices(80, 8, train=True, rng=rng)
    assert tr.shape == (1, 8) and all(10 * i <= tr[0, i] < 10 * (i + 1) for i in range(8))
    te = segment_indices(80, 8, train=False)
    assert te.tolist() == [[5, 15, 25, 35, 45, 55, 65, 75]]
    two = segment_indices(80, 8, train=False, clips=2)
    assert two[1].tolist() == [0, 10, 20, 30, 40, 50, 60, 70]
    short = segment_indices(3, 8, train=False)  # fewer frames than segments: repeats, within range
    assert short.min() >= 0 and short.max() <= 2 and (np.diff(short[0]) >= 0).all()


def test_batch_sampler_shards_equal_the_single_process_batches():
    single = list(EpochBatchSampler(20, batch_size=4, seed=3, shuffle=True))
    ranks = [list(EpochBatchSampler(20, batch_size=4, seed=3, shuffle=True, rank=r, world=2)) for r in range(2)]
    for b, batch in enumerate(single):
        assert sorted(batch) == sorted(ranks[0][b] + ranks[1][b])
    s = EpochBatchSampler(20, batch_size=4, seed=3, shuffle=True)
    s.set_epoch(1)
    assert list(s) != single  # a new order every epoch ...
    s.set_epoch(0)
    assert list(s) == single  # ... that depends only on (seed, epoch)


def test_frame_folder_dataset(fake_ssv1):
    run = resolve("smoke", "something-v1", {"data": {"data_root": str(fake_ssv1), "size": 32, "resize": [40, 52]}})
    train = build_dataset(run, "train")
    clip, label = train[(0, 123)]
    assert clip.shape == (4, 3, 32, 32) and clip.dtype == torch.uint8
    assert torch.equal(train[(0, 123)][0], clip)  # the item seed fixes every random choice
    val = build_dataset(run, "val")
    assert val[(0, 0)][0].shape == (4, 3, 32, 32)
    two = build_dataset(resolve("smoke", "something-v1", {"data": {"data_root": str(fake_ssv1), "size": 32,
                                                                   "resize": [40, 52], "test_clips": 2}}), "val")
    assert two[(0, 0)][0].shape == (2, 4, 3, 32, 32)
    three = build_dataset(resolve("smoke", "something-v1", {"data": {"data_root": str(fake_ssv1), "size": 32,
                                                                     "resize": [40, 52], "test_crops": 3}}), "val")
    crops = three[(0, 0)][0]
    assert crops.shape == (3, 4, 3, 32, 32) and torch.equal(crops[1], val[(0, 0)][0])  # the middle crop is the centre one
    picked = segment_indices(three.entries[0].num_frames, 4, train=False, rng=np.random.default_rng(0))[0]
    full = resize(clip_from_frames(np.stack([three._frame(three.entries[0], int(i) + 1) for i in picked])), (40, 52))
    assert torch.equal(crops[0], full[..., 4:36, :32]) and torch.equal(crops[2], full[..., 4:36, 20:])  # left, right
    six = build_dataset(resolve("smoke", "something-v1", {"data": {"data_root": str(fake_ssv1), "size": 32, "resize": [40, 52],
                                                                   "test_clips": 2, "test_crops": 3}}), "val")
    assert six[(0, 0)][0].shape == (6, 4, 3, 32, 32)


def test_missing_frames_are_caught_before_training(fake_ssv1):
    folder = sorted(p for p in fake_ssv1.iterdir() if p.is_dir())[0]
    last = sorted(folder.iterdir())[-1]
    last.unlink()
    run = resolve("smoke", "something-v1", {"data": {"data_root": str(fake_ssv1)}})
    with pytest.raises(DataError, match=r"train_videofolder.txt:\d+: .* has no frame .* \(the list says 12 frames\)"):
        build_dataset(run, "train")


def test_missing_folder_and_unreadable_image(fake_ssv1):
    run = resolve("smoke", "something-v1", {"data": {"data_root": str(fake_ssv1), "check": False}})
    ds = build_dataset(run, "val")
    (ds.entries[1].path / "00002.jpg").write_bytes(b"not a jpeg")  # 12 frames, 4 segments: centres 2, 5, 8, 11
    with pytest.raises(DataError, match=r"val_videofolder.txt:2: cannot read image .*00002.jpg"):
        ds[(1, 0)]
    import shutil

    shutil.rmtree(ds.entries[0].path)
    with pytest.raises(DataError, match="val_videofolder.txt:1: frame folder .* does not exist"):
        check_entries(ds.entries, "{:05d}.jpg")
    with pytest.raises(DataError, match="val_videofolder.txt:1: frame folder .* does not exist"):
        ds[(0, 0)]


def test_template_and_paths_are_validated(fake_ssv1):
    with pytest.raises(DataError, match="frame template"):
        build_dataset(resolve("smoke", "something-v1", {"data": {"data_root": str(fake_ssv1), "frame_template": "x.jpg{"}}), "val")
    with pytest.raises(DataError, match="needs --data-root"):
        build_dataset(resolve("smoke", "something-v1"), "val")


def test_synthetic_clips_are_deterministic_and_splits_disjoint():
    a, la = syn.render_clip(0, "train", 5)
    b, lb = syn.render_clip(0, "train", 5)
    c, _ = syn.render_clip(0, "val", 5)
    assert np.array_equal(a, b) and la == lb == 5
    assert not np.array_equal(a, c)
    assert a.shape == (8, 64, 64, 3) and a.dtype == np.uint8


@pytest.mark.parametrize("pair", [(0, 1), (2, 3), (4, 5), (6, 7)])
def test_reverse_pairs_are_time_reversals(pair):
    """A clip of the second class shows the trajectory of the first one played backwards: with the same
    random draws, its frames are the first class's frames in reverse order (up to sensor noise)."""
    a, b = pair
    rng_a = np.random.default_rng(7)
    rng_b = np.random.default_rng(7)
    bg, floor = syn._background(np.random.default_rng(1), 64)
    actor = syn._random_object(np.random.default_rng(2), 64, bg)
    ta, _ = syn._trajectory(a, rng_a, 8, 64, actor, actor, floor)
    tb, _ = syn._trajectory(b, rng_b, 8, 64, actor, actor, floor)
    for xa, xb in zip(ta, tb):
        assert np.allclose(xa[::-1], xb)


@pytest.mark.slow
def test_synthetic_appearance_is_label_free():
    """Per-frame appearance statistics do not depend on the class (what makes TSN blind to order)."""
    stats = {k: [] for k in range(16)}
    for i in range(16 * 40):
        clip, k = syn.render_clip(0, "train", i, 8, 32)
        stats[k].append([*clip.reshape(-1, 3).mean(0), clip.std()])  # colour and contrast of the frames
    x = np.array([stats[k] for k in range(16)])  # (K, clips, 4)
    grand = x.reshape(-1, 4).mean(0)
    z = (x.mean(1) - grand) / (x.std(1) / np.sqrt(x.shape[1]))  # class mean vs its standard error
    assert (z**2).mean() < 3  # ~1 when appearance does not depend on the class


def test_synthetic_cache_is_generated_once(tmp_path, monkeypatch):
    """The first call renders every clip and caches the array; later calls read it back without rendering."""
    from selfy_lab.data.benchmark import synthetic_array

    monkeypatch.setenv("SELFY_LAB_CACHE", str(tmp_path))
    rendered = []
    real = syn.render_clip
    monkeypatch.setattr(syn, "render_clip", lambda *a, **k: rendered.append(a) or real(*a, **k))
    arr = synthetic_array("train", 40, 8, 32, 0, 2)
    assert arr.shape == (40, 8, 32, 32, 3) and len(rendered) == 40
    again = synthetic_array("train", 40, 8, 32, 0, 2)
    assert len(rendered) == 40 and np.array_equal(arr, again)
    assert len(list(tmp_path.glob("synthetic-train-*.npy"))) == 1
    synthetic_array("train", 40, 8, 32, 1, 2)  # another benchmark seed: another cache file
    assert len(rendered) == 80 and len(list(tmp_path.glob("synthetic-train-*.npy"))) == 2


def _killed_while_rendering(job) -> int:
    """A render worker that dies as one does on a full disk (SIGBUS) or out of memory."""
    import os

    os._exit(1)


def test_rendering_the_benchmark_without_room_or_with_a_dead_worker_stops_with_one_line(tmp_path, monkeypatch):
    """A full disk would kill the process writing into the memory-mapped cache (SIGBUS) or one of its render
    workers: both end in a one-line DataError naming the cache folder, and no partial file stays behind."""
    import collections

    from selfy_lab.data import benchmark as D

    monkeypatch.setenv("SELFY_LAB_CACHE", str(tmp_path))
    usage = collections.namedtuple("usage", "total used free")
    with monkeypatch.context() as m:
        m.setattr(D.shutil, "disk_usage", lambda p: usage(1 << 30, (1 << 30) - (1 << 20), 1 << 20))
        with pytest.raises(DataError, match=r"train clips need 4 MiB in .* and 1 MiB are free there: free some"):
            D.synthetic_array("train", 40, 8, 64, 0, 2)  # 40 x 8 x 64 x 64 x 3 bytes = 3.75 MiB
    monkeypatch.setattr(D, "_render_into", _killed_while_rendering)
    with pytest.raises(DataError, match="a render process died"):
        D.synthetic_array("train", D.PARALLEL_MIN_CLIPS, 8, 16, 0, 0, workers=2)
    assert list(tmp_path.iterdir()) == []


def test_data_config_validation():
    with pytest.raises(ValueError, match="unknown dataset"):
        DataConfig(dataset="kinetics")
    with pytest.raises(ValueError, match="flip policy"):
        DataConfig(flip="sometimes")
    with pytest.raises(ValueError, match="test_clips"):
        DataConfig(test_clips=3)


def test_normalize_reuses_its_constants_and_keeps_the_formula():
    """Normalisation runs on the device every step: its mean and std are made there once (on a GPU, a tensor
    built from Python numbers is a copy the host waits for), and the result is the plain formula's."""
    from selfy_lab.core.runtime import device_constant

    batch = torch.randint(0, 256, (2, 3, 3, 5, 5), dtype=torch.uint8)
    m, s = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert torch.equal(normalize(batch), (batch.float() / 255.0 - m) / s)
    made = device_constant(IMAGENET_MEAN, "cpu", torch.float32)
    assert device_constant(IMAGENET_MEAN, torch.device("cpu"), torch.float32) is made
    assert device_constant((1, -2), "cpu").dtype == torch.int64


def test_frames_of_two_sizes_are_resized_like_every_clip():
    import numpy as np

    from selfy_lab.data.datasets import stack_frames

    a = np.zeros((60, 80, 3), np.uint8)
    b = np.full((120, 160, 3), 200, np.uint8)
    out = stack_frames([a, b, a])
    assert out.shape == (3, 60, 80, 3) and (out[1] == 200).all() and (out[0] == 0).all()


def test_too_few_frames_for_the_benchmark_is_one_line(tmp_path):
    from helpers import cli_inproc, one_line_error

    for frames in (1, 2):
        p = cli_inproc("train", "--preset", "smoke", "--block", "none", "--frames", frames, "--out", tmp_path / f"r{frames}")
        assert one_line_error(p, "need at least 3 frames")


@pytest.mark.slow
def test_train_and_eval_say_how_many_clips_and_classes_they_read(tmp_path):
    from helpers import cli_inproc

    p = cli_inproc("train", "--preset", "smoke", "--epochs", "1", "--out", tmp_path / "run")
    assert p.returncode == 0, p.stderr
    assert "data: 64 training clips, 32 validation clips, 16 classes" in p.stdout
    p = cli_inproc("eval", tmp_path / "run")
    assert p.returncode == 0, p.stderr
    assert "data: 32 validation clips, 16 classes" in p.stdout


def test_missing_pretrained_weights_stop_before_any_data_is_prepared(tmp_path, monkeypatch):
    """The paper preset on a machine without ImageNet weights: one line at once, not after rendering or
    checking the data (which took minutes)."""
    import selfy_lab.engine.train as T
    import selfy_lab.engine.weights as W
    from selfy_lab.core.errors import SelfyError
    from selfy_lab.config.presets import resolve
    from selfy_lab.engine.train import fit

    def offline(depth):
        raise SelfyError(f"ImageNet weights for ResNet-{depth} are not cached and cannot be downloaded")

    built = []
    monkeypatch.setattr(W, "fetch_imagenet", offline)
    monkeypatch.setattr(T, "build_dataset", lambda *a, **k: built.append(a) or None)
    run = resolve("paper", overrides={"model": {"frames": 4}, "train": {"epochs": 1}})
    with pytest.raises(SelfyError, match="not cached"):
        fit(run, tmp_path / "run")
    assert built == []
