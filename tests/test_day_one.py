"""What a researcher expects on day one: any configuration field from the command line, and the resolved
configuration printed before anything trains."""
from pathlib import Path

import pytest
import yaml
from helpers import cli_inproc, one_line_error

from selfy_lab.core.errors import SelfyError
from selfy_lab.config.experiments import run_from_flags, set_overrides


def test_set_reaches_any_field_typed_and_last():
    run, _ = run_from_flags({"preset": "quick", "lr": 0.1, "settings": [
        "train.weight_decay=0.01", "model.dropout=0.5", "data.size=48", "train.lr=0.002", "model.position=[res2, res3]"]})
    assert run.train.weight_decay == 0.01 and run.model.dropout == 0.5 and run.data.size == 48
    assert run.train.lr == 0.002  # --set is applied last, over the flags
    assert run.model.position == ("res2", "res3")
    plain, _ = run_from_flags({"preset": "quick"})
    assert run.run_hash != plain.run_hash


@pytest.mark.parametrize("item,expected", [
    ("train.wd=1", "train has no field wd"),
    ("optimizer.lr=1", "expected SECTION.FIELD=VALUE, SECTION one of model, data, train"),
    ("weight_decay", "expected SECTION.FIELD=VALUE"),
])
def test_a_wrong_set_item_names_the_choices(item, expected):
    with pytest.raises(SelfyError, match=expected):
        set_overrides([item])


def test_a_wrong_set_value_is_checked_like_an_experiment_file():
    with pytest.raises(SelfyError, match="weight_decay must be a number"):
        run_from_flags({"preset": "quick", "settings": ["train.weight_decay=abc"]})


def test_config_prints_the_resolved_configuration_and_its_run_id():
    p = cli_inproc("config", "--preset", "quick", "--offsets=-3..3", "--set", "train.weight_decay=0.01")
    assert p.returncode == 0, p.stderr
    body, last = p.stdout.rsplit("\n# run id: ", 1)
    cfg = yaml.safe_load(body)
    assert cfg["train"]["weight_decay"] == 0.01 and cfg["model"]["offsets"] == [-3, -2, -1, 0, 1, 2, 3]
    run, _ = run_from_flags({"preset": "quick", "offsets": "-3..3", "settings": ["train.weight_decay=0.01"]})
    assert last.strip() == run.run_hash
    assert one_line_error(cli_inproc("config", "--set", "model.nope=1"), "model has no field nope")


def test_models_by_name():
    import selfy_lab

    names = selfy_lab.list_models()
    assert "selfynet-tsm-r50" in names and "tsn-r18" in names and "tea-tsn-r50" in names
    assert selfy_lab.list_models("selfynet-*") == [n for n in names if n.startswith("selfynet-")]
    m = selfy_lab.create_model("selfynet-tsm-r18", num_classes=174, frames=8)
    cfg = m.selfy_config
    assert (cfg.backbone, cfg.block, cfg.num_classes) == ("tsm-r18", "selfy", 174)
    from selfy_lab.config.run import ModelConfig
    from selfy_lab.models import build_model
    ref = build_model(ModelConfig(backbone="tsm-r18", block="selfy", num_classes=174, frames=8))
    assert [(k, v.shape) for k, v in m.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    with pytest.raises(SelfyError, match="no model named 'selfynet-tsm-r99'"):
        selfy_lab.create_model("selfynet-tsm-r99")
    with pytest.raises(SelfyError, match="ModelConfig has no field colour"):
        selfy_lab.create_model("tsn-r18", colour="red")


@pytest.mark.slow
def test_from_pretrained_loads_an_export_ready_for_eval(smoke_run, tmp_path):
    import torch

    import selfy_lab
    from selfy_lab.studies.export import export_run

    run = smoke_run
    export_run(run, tmp_path / "model")
    model = selfy_lab.from_pretrained(tmp_path / "model")
    assert not model.training and model.class_names[:2] and len(model.class_names) == model.selfy_config.model.num_classes
    cfg = model.selfy_config
    clip = torch.rand(1, cfg.model.frames, 3, cfg.data.size, cfg.data.size)
    with torch.no_grad():
        assert model(clip).shape == (1, cfg.model.num_classes)


def test_predict_gives_the_top_k_classes_of_each_video_and_skips_a_broken_one(smoke_run, tmp_path):
    import csv
    import io
    import json

    import numpy as np
    from PIL import Image

    videos = tmp_path / "videos"
    frames = videos / "clip_a"
    frames.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(frames / f"{i:05d}.jpg")
    (videos / "broken.mp4").write_bytes(b"not a video")
    model = smoke_run
    p = cli_inproc("predict", videos, "--checkpoint", model, "--top-k", "3", "--format", "csv", "--device", "cpu")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and {r["video"] for r in rows} == {str(frames)}
    probs = [float(r["probability"]) for r in rows]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert "skipped" in p.stderr and "broken.mp4" in p.stderr
    j = cli_inproc("predict", frames, "--checkpoint", model, "--top-k", "1", "--format", "json", "--device", "cpu")
    assert json.loads(j.stdout)[0]["class"] == rows[0]["class"]
    assert one_line_error(cli_inproc("predict", frames, "--checkpoint", model, "--format", "xml"), "use table, csv or json")
    assert one_line_error(cli_inproc("predict", tmp_path / "nothing", "--checkpoint", model), "does not exist")
    six = cli_inproc("predict", frames, "--checkpoint", model, "--clips", "2", "--crops", "3", "--format", "json",
              "--device", "cpu", "--top-k", "1000")  # every class: the probabilities sum to 1
    assert six.returncode == 0 and abs(sum(r["probability"] for r in json.loads(six.stdout)) - 1) < 1e-5
    assert one_line_error(cli_inproc("predict", frames, "--checkpoint", model, "--crops", "2"), "--crops 1 or 3")


def test_a_user_clip_s_views_are_the_test_protocol_s(tmp_path):
    """predict --clips 2 --crops 3 sees a user's clip as a list dataset's test item holds it: the same six views,
    clip-major, pixel for pixel."""
    import numpy as np
    import torch
    from PIL import Image

    from selfy_lab.config.run import DataConfig
    from selfy_lab.data.datasets import ListClips, load_user_views
    from selfy_lab.data.lists import ListEntry

    folder = tmp_path / "clip"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(1, 13):
        Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    cfg = DataConfig(dataset="custom", resize=(36, 60), size=32, test_clips=2, test_crops=3)
    ds = ListClips(cfg, frames=4, entries=[ListEntry(folder, 12, 0, "list:1")], template="{:05d}.png", train=False,
                   class_names=["a"])
    expected = ds._views(0, None)
    views = load_user_views(folder, 4, 32, (36, 60), clips=2, crops=3)
    assert len(views) == len(expected) == 6
    for got, want in zip(views, expected):
        assert torch.equal(got, want)


MODEL_COMMANDS = {"eval", "export", "cam", "stss", "corrupt", "predict"}


def test_every_command_follows_the_cli_s_rules():
    """Outputs default to runs/, never the committed results/; a time flag names its unit; corrupt's frame choice
    has its own name; a flag's help is never empty; every command that takes a trained model takes it as
    --checkpoint, with the same help naming the three forms; every flag that lists things takes a comma list or
    the flag repeated, and says so (an offset set and a --set item keep their own commas: those repeat only)."""
    import typer
    from typer.core import TyperArgument, TyperOption

    from selfy_lab.cli import app
    from selfy_lab.cli.common import LIST, MODEL_HELP

    group = typer.main.get_command(app)
    seen, lists = 0, 0
    for name, cmd in group.commands.items():
        flags = {o for p in cmd.params for o in p.opts}
        assert ("--checkpoint" in flags) == (name in MODEL_COMMANDS), name
        for p in cmd.params:
            if isinstance(p, TyperArgument) and name in ("eval", "export"):
                assert "The same as --checkpoint" in (p.help or ""), name
            if not isinstance(p, TyperOption) or p.name == "help":
                continue
            seen += 1
            flag, text = p.opts[0], " ".join((p.help or "").split())
            if flag == "--out" and p.default is not None:
                assert not str(p.default).startswith("results"), f"{name} {flag} defaults to {p.default}"
            if "time" in flag:
                assert flag.endswith(("-min", "-s")), f"{name} {flag}: name its unit"
            assert text, f"{name} {flag}"
            if flag == "--checkpoint" and name != "export":  # export takes runs only: an export is exported already
                assert text.startswith(MODEL_HELP), f"{name} --checkpoint: {text}"
            if flag == "--pretrained":
                assert "run folder" in text and "export folder" in text, name
            if p.multiple:
                lists += 1
                if flag in ("--offsets", "--set"):
                    assert "repeat" in text, f"{name} {flag}"
                else:
                    assert LIST in text, f"{name} {flag}: say '{LIST}'"
            else:
                assert "comma list" not in text.lower() and "repeatable" not in text.lower(), \
                    f"{name} {flag} describes a list but takes one value"
        if name == "corrupt":
            assert "--frames" not in flags and "--corrupted-frames" in flags
    assert seen > 100 and lists >= 15


def test_one_list_syntax_reaches_the_library(tmp_path):
    """A comma list and the repeated flag mean the same; paths split on commas unless the path exists as given;
    ranges are a..b (a-b for positive counts too), bounded before they are expanded."""
    from selfy_lab.cli.common import path_list
    from selfy_lab.config.grammar import parse_int_list, parse_list

    assert parse_list(["a,b", "c"]) == parse_list("a,b,c") == ["a", "b", "c"]
    odd = tmp_path / "my,run"
    odd.mkdir()
    assert path_list([odd, Path("x,y")]) == [odd, Path("x"), Path("y")]
    assert parse_int_list("1..3,5", "severity", 1, 6) == parse_int_list("1-3,5", "severity", 1, 6) == (1, 2, 3, 5)
    with pytest.raises(ValueError, match="at most 10000"):
        parse_int_list("0..99999999", "clip", 0)
    assert one_line_error(cli_inproc("eval"), "needs a model")
    assert one_line_error(cli_inproc("export", "--out", tmp_path / "e", "--checkpoint", tmp_path / "a", tmp_path / "b"),
                          "got two models")
    assert one_line_error(cli_inproc("cam", "--clip", "0..99999999"), "at most 10000")


def _labelled_folder(root, names, per_class=2):
    """A labelled dataset of one's own under ``root``: ``per_class`` frame folders of 8 JPEGs per class name,
    categories.txt and train.txt (TSN lines); returns the list lines."""
    import numpy as np
    from PIL import Image

    lines = []
    for label, name in enumerate(names):
        for k in range(per_class):
            folder = root / f"{name}_{k}"
            folder.mkdir(parents=True)
            for i in range(1, 9):
                Image.fromarray(np.full((36, 40, 3), 40 * label + k, np.uint8)).save(folder / f"{i:05d}.jpg")
            lines.append(f"{name}_{k} 8 {label}")
    (root / "categories.txt").write_text("\n".join(names) + "\n")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    return lines


def test_a_labelled_dataset_of_one_s_own(tmp_path):
    """--dataset custom: a list file in the formats the others read and a class-name file whose length sets the
    model's class count."""
    from selfy_lab.data.datasets import build_dataset

    root = tmp_path / "mine"
    names = ["wave", "clap", "jump"]
    lines = _labelled_folder(root, names)
    (root / "val.txt").write_text("\n".join(lines[::2]) + "\n")
    run, _ = run_from_flags({"dataset": "custom", "data_root": str(root), "preset": "smoke"})
    assert run.model.num_classes == 3
    train, val = build_dataset(run, "train"), build_dataset(run, "val")
    assert len(train) == 6 and len(val) == 3 and train.class_names == names
    with pytest.raises(SelfyError, match="--dataset custom takes its classes from a file"):
        run_from_flags({"dataset": "custom", "preset": "smoke"})
    (tmp_path / "one.txt").write_text("only\n")
    with pytest.raises(SelfyError, match="names 1 class"):
        run_from_flags({"dataset": "custom", "categories": str(tmp_path / "one.txt"), "preset": "smoke"})


def test_a_missing_clip_stops_or_is_counted_and_skipped(tmp_path):
    """--on-missing stop (the default) names the list's line and the way out; skip leaves the clip out and counts
    it, and is part of the run key (the clips trained on depend on the disk); the default keeps every key."""
    from selfy_lab.data.datasets import build_dataset
    from selfy_lab.core.errors import DataError

    root = tmp_path / "mine"
    lines = _labelled_folder(root, ["wave", "clap"])
    (root / "val.txt").write_text("\n".join(lines + ["gone_0 8 1"]) + "\n")
    flags = {"dataset": "custom", "data_root": str(root), "preset": "smoke"}
    run, _ = run_from_flags(flags)
    with pytest.raises(DataError, match=r"val.txt:5: frame folder .*gone_0 does not exist \(--on-missing skip"):
        build_dataset(run, "val")
    skipping, _ = run_from_flags({**flags, "on_missing": "skip"})
    val = build_dataset(skipping, "val")
    assert len(val) == 4 and val.skipped == 1
    assert skipping.run_hash != run.run_hash
    assert run.run_hash == run_from_flags({**flags, "on_missing": "stop"})[0].run_hash
    (root / "val.txt").write_text("gone_0 8 1\n")
    with pytest.raises(DataError, match="none of the 1 listed clips is on disk"):
        build_dataset(skipping, "val")
    with pytest.raises(SelfyError, match="on_missing"):
        run_from_flags({**flags, "on_missing": "ignore"})


def test_kinetics_as_its_official_csvs_ship(tmp_path):
    from selfy_lab.data.datasets import build_dataset
    from selfy_lab.data.lists import detect_format, read_class_names, read_clips

    root = tmp_path / "k400"
    header = "label,youtube_id,time_start,time_end,split\n"
    (root / "train").mkdir(parents=True)
    (root / "train.csv").write_text(header + "abseiling,aaa111,12,22,train\nzumba,bbb222,0,10,train\n"
                                    "air drumming,ccc333,5,15,train\n")
    (root / "validate.csv").write_text(header + "zumba,ddd444,30,40,val\n")
    (root / "air drumming").mkdir()
    (root / "air drumming" / "ccc333_000005_000015.mp4").write_bytes(b"")  # saved under its class folder
    assert detect_format(root / "train.csv") == "kinetics-csv"
    names = read_class_names(root / "train.csv")
    assert names == ["abseiling", "air drumming", "zumba"]  # sorted, as MMAction2's label maps
    clips = read_clips(root / "train.csv", root=root, class_names=names)
    assert [c.label for c in clips] == [0, 2, 1]
    assert clips[0].path == root / "abseiling" / "aaa111_000012_000022.mp4"
    assert clips[2].path == root / "air drumming" / "ccc333_000005_000015.mp4"
    run, _ = run_from_flags({"dataset": "kinetics400", "data_root": str(root), "preset": "smoke",
                             "categories": str(root / "train.csv"), "num_classes": 3})
    assert len(build_dataset(run, "val", check=False)) == 1
    (root / "bad.csv").write_text(header + "unknown class,eee,1,2,train\n")
    with pytest.raises(SelfyError, match=r"bad.csv:2: class 'unknown class' is not among the 3 classes"):
        read_clips(root / "bad.csv", root=root, class_names=names)


def test_eval_set_takes_data_fields_only(smoke_run):
    run = smoke_run
    assert one_line_error(cli_inproc("eval", run, "--set", "train.lr=1"), "eval --set takes data fields only")
    assert one_line_error(cli_inproc("eval", run, "--set", "data.nope=1"), "data has no field nope")


def test_one_opencv_is_installed():
    """The core install brings one package that provides cv2 (two would write the same module over each other)."""
    from importlib.metadata import PackageNotFoundError, distribution

    present = []
    for name in ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"):
        try:
            distribution(name)
            present.append(name)
        except PackageNotFoundError:
            pass
    assert len(present) == 1, present
