"""What a researcher expects on day one: any configuration field from the command line, and the resolved
configuration printed before anything trains."""
import pytest
import yaml
from helpers import cli, one_line_error

from selfy_lab.errors import SelfyError
from selfy_lab.experiments import run_from_flags, set_overrides


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
    p = cli("config", "--preset", "quick", "--offsets=-3..3", "--set", "train.weight_decay=0.01")
    assert p.returncode == 0, p.stderr
    body, last = p.stdout.rsplit("\n# run id: ", 1)
    cfg = yaml.safe_load(body)
    assert cfg["train"]["weight_decay"] == 0.01 and cfg["model"]["offsets"] == [-3, -2, -1, 0, 1, 2, 3]
    run, _ = run_from_flags({"preset": "quick", "offsets": "-3..3", "settings": ["train.weight_decay=0.01"]})
    assert last.strip() == run.run_hash
    assert one_line_error(cli("config", "--set", "model.nope=1"), "model has no field nope")


def test_models_by_name():
    import selfy_lab

    names = selfy_lab.list_models()
    assert "selfynet-tsm-r50" in names and "tsn-r18" in names and "tea-tsn-r50" in names
    assert selfy_lab.list_models("selfynet-*") == [n for n in names if n.startswith("selfynet-")]
    m = selfy_lab.create_model("selfynet-tsm-r18", num_classes=174, frames=8)
    cfg = m.selfy_config
    assert (cfg.backbone, cfg.block, cfg.num_classes) == ("tsm-r18", "selfy", 174)
    from selfy_lab.config import ModelConfig
    from selfy_lab.models import build_model
    ref = build_model(ModelConfig(backbone="tsm-r18", block="selfy", num_classes=174, frames=8))
    assert [(k, v.shape) for k, v in m.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    with pytest.raises(SelfyError, match="no model named 'selfynet-tsm-r99'"):
        selfy_lab.create_model("selfynet-tsm-r99")
    with pytest.raises(SelfyError, match="ModelConfig has no field colour"):
        selfy_lab.create_model("tsn-r18", colour="red")


def test_from_pretrained_loads_an_export_ready_for_eval(smoke_sweep, tmp_path):
    import torch

    import selfy_lab
    from selfy_lab import results as R
    from selfy_lab.export import export_run

    run = R.sweep_run_dirs(smoke_sweep)[0]
    export_run(run, tmp_path / "model")
    model = selfy_lab.from_pretrained(tmp_path / "model")
    assert not model.training and model.class_names[:2] and len(model.class_names) == model.selfy_config.model.num_classes
    cfg = model.selfy_config
    clip = torch.rand(1, cfg.model.frames, 3, cfg.data.size, cfg.data.size)
    with torch.no_grad():
        assert model(clip).shape == (1, cfg.model.num_classes)


def test_predict_gives_the_top_k_classes_of_each_video_and_skips_a_broken_one(smoke_sweep, tmp_path):
    import csv
    import io
    import json

    import numpy as np
    from PIL import Image

    from selfy_lab import results as R

    videos = tmp_path / "videos"
    frames = videos / "clip_a"
    frames.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(frames / f"{i:05d}.jpg")
    (videos / "broken.mp4").write_bytes(b"not a video")
    model = R.sweep_run_dirs(smoke_sweep)[0]
    p = cli("predict", videos, "--checkpoint", model, "--top-k", "3", "--format", "csv", "--device", "cpu")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and {r["video"] for r in rows} == {str(frames)}
    probs = [float(r["probability"]) for r in rows]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert "skipped" in p.stderr and "broken.mp4" in p.stderr
    j = cli("predict", frames, "--checkpoint", model, "--top-k", "1", "--format", "json", "--device", "cpu")
    assert json.loads(j.stdout)[0]["class"] == rows[0]["class"]
    assert one_line_error(cli("predict", frames, "--checkpoint", model, "--format", "xml"), "use table, csv or json")
    assert one_line_error(cli("predict", tmp_path / "nothing", "--checkpoint", model), "does not exist")


def test_every_command_follows_the_cli_s_rules():
    """Outputs default to runs/, never the committed results/; a time flag names its unit; corrupt's frame choice
    has its own name; a flag's help is never empty."""
    import typer
    from typer.core import TyperOption

    from selfy_lab.cli import app

    group = typer.main.get_command(app)
    seen = 0
    for name, cmd in group.commands.items():
        for p in cmd.params:
            if not isinstance(p, TyperOption) or p.name == "help":
                continue
            seen += 1
            flag = p.opts[0]
            if flag == "--out" and p.default is not None:
                assert not str(p.default).startswith("results"), f"{name} {flag} defaults to {p.default}"
            if "time" in flag:
                assert flag.endswith(("-min", "-s")), f"{name} {flag}: name its unit"
            assert (p.help or "").strip(), f"{name} {flag}"
        if name == "corrupt":
            assert "--frames" not in {o for p in cmd.params for o in p.opts}
            assert "--corrupted-frames" in {o for p in cmd.params for o in p.opts}
    assert seen > 100


def test_a_labelled_dataset_of_one_s_own(tmp_path):
    """--dataset custom: a list file in the formats the others read and a class-name file whose length sets the
    model's class count."""
    import numpy as np
    from PIL import Image

    from selfy_lab.data.datasets import build_dataset

    root = tmp_path / "mine"
    names = ["wave", "clap", "jump"]
    lines = []
    for label, name in enumerate(names):
        for k in range(2):
            folder = root / f"{name}_{k}"
            folder.mkdir(parents=True)
            for i in range(1, 9):
                Image.fromarray(np.full((36, 40, 3), 40 * label + k, np.uint8)).save(folder / f"{i:05d}.jpg")
            lines.append(f"{name}_{k} 8 {label}")
    (root / "categories.txt").write_text("\n".join(names) + "\n")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
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


def test_eval_set_takes_data_fields_only(smoke_sweep):
    from selfy_lab import results as R

    run = R.sweep_run_dirs(smoke_sweep)[0]
    assert one_line_error(cli("eval", run, "--set", "train.lr=1"), "eval --set takes data fields only")
    assert one_line_error(cli("eval", run, "--set", "data.nope=1"), "data has no field nope")
