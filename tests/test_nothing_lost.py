"""Nothing lost, nothing silently wrong: loads verify what they trust, writers keep to what they own, parsers
accept only what they understand."""
import shutil

import pytest
import yaml

from selfy_lab.store import results as R
from selfy_lab.core.errors import SelfyError


def _edited_run(smoke_run, tmp_path, **changes):
    src = smoke_run
    run = shutil.copytree(src, tmp_path / src.name)
    cfg = yaml.safe_load((run / R.CONFIG).read_text())
    for dotted, value in changes.items():
        section, field = dotted.split(".")
        cfg[section][field] = value
    (run / R.CONFIG).write_text(yaml.safe_dump(cfg))
    return run


def test_an_edited_config_is_not_evaluated_with_the_old_weights(smoke_run, tmp_path):
    from selfy_lab.engine.checkpoint import load_run, run_config_of

    run = _edited_run(smoke_run, tmp_path, **{"data.size": 48})
    for load in (lambda: load_run(run, "cpu"), lambda: run_config_of(run), lambda: load_run(run / "checkpoint.pt")):
        with pytest.raises(SelfyError, match=r"config.yaml is not the configuration checkpoint.pt was trained with "
                                             r"\(data.size: 32 -> 48\)"):
            load()
    untouched = smoke_run
    assert run_config_of(untouched).run_hash == untouched.name  # the run as trained loads as before


def test_an_edited_export_config_is_refused(smoke_run, tmp_path):
    from selfy_lab.engine.checkpoint import load_run
    from selfy_lab.studies.export import export_run

    out = tmp_path / "export"
    export_run(smoke_run, out)
    assert load_run(out, "cpu")[0].run_hash == smoke_run.name
    cfg = yaml.safe_load((out / R.CONFIG).read_text())
    cfg["model"]["backbone"] = "tsm-r18-w8"
    (out / R.CONFIG).write_text(yaml.safe_dump(cfg))
    with pytest.raises(SelfyError, match="is not the configuration model.safetensors was exported with"):
        load_run(out, "cpu")


def test_export_never_replaces_a_file_it_did_not_write(smoke_run, tmp_path):
    from selfy_lab.studies.export import export_run

    run = smoke_run
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes\n")
    with pytest.raises(SelfyError, match="README.md exists and was not written by selfy-lab export"):
        export_run(run, out)
    assert (out / "README.md").read_text() == "my notes\n" and sorted(p.name for p in out.iterdir()) == ["README.md"]
    with pytest.raises(SelfyError, match="README.md exists and was not written"):
        export_run(run, out, force=True)  # --force replaces only what an export wrote
    fresh = tmp_path / "fresh"
    export_run(run, fresh)
    with pytest.raises(SelfyError, match="already holds an export: pass --force"):
        export_run(run, fresh)
    export_run(run, fresh, force=True)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SelfyError, match="is a file"):
        export_run(run, tmp_path / "afile")


def test_written_files_follow_the_umask(tmp_path):
    import os

    from selfy_lab.core.textfiles import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.csv", "x\n")
        assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.csv", "x\n")
        assert (tmp_path / "b.csv").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_a_results_table_never_replaces_a_user_file(tmp_path):
    from selfy_lab.core.textfiles import write_csv

    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\nimportant\n")
    with pytest.raises(SelfyError, match="notes.md exists and is not a selfy-lab results table"):
        R.append_rows(notes, [{"run_id": "a", "metric": "top1", "value": 0.5}], ("run_id", "metric"), R.EVAL_COLUMNS)
    with pytest.raises(SelfyError, match="not a selfy-lab results table"):
        write_csv(notes, [{"run_id": "a"}], R.EVAL_COLUMNS)
    assert notes.read_text() == "# my notes\nimportant\n"
    with pytest.raises(SelfyError, match="is a folder, where a file is written"):
        write_csv(tmp_path, [{"a": 1}])


def test_a_full_disk_leaves_the_old_file_whole_and_ends_in_one_line(tmp_path, monkeypatch):
    import errno
    import os

    from selfy_lab.core.textfiles import atomic_write_text

    target = tmp_path / "runs.csv"
    atomic_write_text(target, "old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(SelfyError, match=r"cannot write .*runs.csv \(No space left on device\): free some space"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["runs.csv"]


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_last_one(tmp_path, monkeypatch):
    import torch

    from selfy_lab.engine import checkpoint as C
    from selfy_lab.config.presets import resolve

    run = resolve("smoke")
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    path = tmp_path / "checkpoint.pt"
    C.save_checkpoint(path, model, opt, scaler, 1, [], run)
    before = path.read_bytes()

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(SelfyError, match="cannot write checkpoint .* free some space and run the same command again"):
        C.save_checkpoint(path, model, opt, scaler, 2, [], run)
    assert path.read_bytes() == before and not (tmp_path / "checkpoint.pt.tmp").exists()


def test_yaml_keys_given_twice_and_alias_bombs_are_refused(tmp_path):
    from selfy_lab.config.experiments import load_experiment

    twice = tmp_path / "twice.yaml"
    twice.write_text("model:\n  block: selfy\ntrain:\n  lr: 0.1\nmodel:\n  block: tea\n")
    with pytest.raises(SelfyError, match=r"twice.yaml:5: 'model' is given twice in one section"):
        load_experiment(twice)
    bomb = tmp_path / "bomb.yaml"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(12)]
    bomb.write_text("\n".join(lines) + "\n")
    import time
    t0 = time.time()
    with pytest.raises(SelfyError, match="more than 100 YAML aliases") as e:
        load_experiment(bomb)
    assert time.time() - t0 < 1.0 and len(str(e.value)) < 200


def test_block_option_switches_take_only_what_they_mean():
    from selfy_lab.config.grammar import block_options_dict, parse_block_options
    from selfy_lab.models.blocks import create_block

    def nonlocal_block(spec):
        options = block_options_dict(parse_block_options(spec))
        return create_block("nonlocal", 16, frames=8, stage="res3", options=options)

    assert parse_block_options("subsample=no") == ("subsample=false",)  # no means false, never true
    assert nonlocal_block("subsample=no").subsample is False
    assert nonlocal_block("subsample=yes").subsample is True
    for bad, expected in (("subsample=maybe", "expected true or false"), ("init_std=big", "expected a number")):
        with pytest.raises(ValueError, match=expected):
            nonlocal_block(bad)


def test_a_window_beyond_the_stss_map_stops_before_any_allocation():
    import time

    from selfy_lab.config.presets import resolve

    t0 = time.time()
    with pytest.raises(ValueError, match=r"window 41x41 is larger than the STSS at res3 can use: 64x64 input makes "
                                         r"it 4x4 cells, where 7x7 reaches every displacement"):
        resolve("quick", overrides={"model": {"block": "selfy", "window": "41x41"}})
    assert time.time() - t0 < 1.0
    assert resolve("quick", overrides={"model": {"block": "selfy", "window": "7x7"}}).model.window == (7, 7)
    assert resolve("paper", overrides={"model": {"window": "17x17"}}).model.window == (17, 17)  # Table 7d's widest
    # the STSS of raw pixels: a cell larger than the frame, a window wider than its map
    import torch

    from selfy_lab.studies.explain import stss_from_pixels

    clip = torch.zeros(8, 3, 64, 64, dtype=torch.uint8)
    with pytest.raises(SelfyError, match=r"--cell 100 is larger than the frame \(64x64 pixels\): use at most 64"):
        stss_from_pixels(clip, cell=100)
    t0 = time.time()
    with pytest.raises(SelfyError, match=r"window 99x99 is larger than the STSS can use: .* 16x16 cells \(at most 33x33"):
        stss_from_pixels(clip, window=(99, 99), cell=4)
    assert time.time() - t0 < 1.0
    assert stss_from_pixels(clip, window=(33, 33), cell=4)["S"].shape[2:4] == (33, 33)


def test_an_unsupported_device_is_one_line():
    from selfy_lab.core.runtime import select_device

    for name, expected in (("mps", "unknown device 'mps'"), ("cuda:x", "unknown device"),
                           ("tpu" * 50, "unknown device 'tputputpu")):
        with pytest.raises(SelfyError, match=expected) as e:
            select_device(name)
        assert len(str(e.value)) < 120
    assert str(select_device("cpu")) == "cpu"


def test_a_damaged_results_table_is_never_published(tmp_path):
    """A hand-edited share above 1, a torn last row, a missing column, text for a number, an empty file: one
    line naming the file and the line, never a number in a table."""
    from selfy_lab.reports.tables import load_runs

    good = tmp_path / "good.csv"
    row = "e,r1,tsn,8,none,none,none,none,none,none,none,none,none,none,none,scratch,1,0.1,1.0,0,val,{metric},{value},0.1.0,abc,t"
    header = ",".join(R.RUN_COLUMNS[:-3])
    good.write_text(header + "\n" + row.format(metric="top1", value="0.5") + "\n")
    assert load_runs(good)["value"].iloc[0] == 0.5
    cases = {
        "share.csv": (header + "\n" + row.format(metric="top1", value="1.5") + "\n", r"share.csv:2: top1 = 1.5 is not a share"),
        "torn.csv": (header + "\n" + row.format(metric="top1", value="0.5") + "\n" + row.format(metric="top5", value="0.9")[:40] + "\n",
                     r"torn.csv:3: an incomplete row"),
        "text.csv": (header + "\n" + row.format(metric="loss", value="abc") + "\n", r"text.csv:2: .*not a number"),
        "nocol.csv": (header.replace(",value", ",val") + "\n" + row.format(metric="top1", value="0.5") + "\n",
                      r"nocol.csv: no column value"),
        "empty.csv": ("", r"empty.csv: not a results table"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(SelfyError, match=expected):
            load_runs(tmp_path / name)


def test_a_start_that_failed_before_training_does_not_block_the_corrected_command(tmp_path):
    from dataclasses import replace

    from selfy_lab.engine import train as T
    from selfy_lab.config.presets import resolve

    first = resolve("smoke")
    corrected = replace(first, train=replace(first.train, lr=first.train.lr * 2))
    run_dir = tmp_path / "run"
    R.write_run_config(run_dir, first)  # what a start leaves before its data or model stopped it
    assert T._is_finished(corrected, run_dir, lambda *a, **k: None) is False
    assert not (run_dir / R.CONFIG).exists()
    R.write_run_config(run_dir, first)
    R.write_history(run_dir, [{"epoch": 1, "train_loss": 1.0}])  # a run that trained: never taken over
    with pytest.raises(SelfyError, match=r"holds a run of another configuration \(history.csv\)"):
        T._is_finished(corrected, run_dir, lambda *a, **k: None)


def test_an_unfinished_run_is_evaluated_only_with_a_note(smoke_run, tmp_path):
    from selfy_lab.engine.evaluate import evaluate_run

    src = smoke_run
    run = shutil.copytree(src, tmp_path / src.name)
    assert R.unfinished_note(run) == ""
    (run / R.METRICS).unlink()  # killed after its last checkpoint, before its final rows
    note = R.unfinished_note(run)
    assert "has not finished" in note and "after 1 of 1 epochs" in note and "not the run's" in note
    events = []
    evaluate_run(run, callback=lambda e, **k: events.append((e, k.get("message"))))
    assert ("unfinished", note) in events
    rows = R.read_csv(run / R.EVAL)
    assert rows and {r["experiment"] for r in rows} == {"eval-unfinished"}
    # explaining and predicting say it first, and their outputs say it too
    from selfy_lab.studies.explain import _cam_models
    from selfy_lab.studies.predict import predict

    notes = []
    models, _ = _cam_models([run], tmp_path, "cpu", notes.append)
    assert notes == [f"note: {note}"] and models[0][0].endswith("(unfinished: after 1 of 1 epochs)")
    frames = tmp_path / "frames"
    frames.mkdir()
    import numpy as np
    from PIL import Image

    for i in range(8):
        Image.fromarray(np.full((32, 32, 3), 30 * i, np.uint8)).save(frames / f"{i:05d}.jpg")
    notes.clear()
    out = predict([frames], run, 2, "cpu", on_note=notes.append)
    assert notes == [f"note: {note}"] and {r["weights"] for r in out} == {"after 1 of 1 epochs"}


def test_corruption_cells_are_keyed_by_the_weights_they_came_from(smoke_run, tmp_path):
    """An unfinished run's cells are filed under its checkpoint's epochs; once the run has finished, the same
    command evaluates them again from the final weights and replaces them, never serving the old numbers."""
    from selfy_lab.studies import robustness as Rb

    src = smoke_run
    run = shutil.copytree(src, tmp_path / src.name)
    metrics = (run / R.METRICS).read_bytes()
    (run / R.METRICS).unlink()  # killed after its last checkpoint, before its final rows
    out = tmp_path / "robustness"
    events = []
    Rb.evaluate_robustness([run], ["blur"], [1], "center", out, split="val",
                           on_event=lambda e, **k: events.append((e, k.get("skipped"))))
    rows = R.read_robustness(out)
    assert {r["weights"] for r in rows} == {"after 1 of 1 epochs"}
    assert {r["experiment"] for r in rows} == {"robustness-unfinished"}
    assert ("unfinished", None) in events
    (run / R.METRICS).write_bytes(metrics)  # the run finishes
    events.clear()
    Rb.evaluate_robustness([run], ["blur"], [1], "center", out, split="val",
                           on_event=lambda e, **k: events.append((e, k.get("skipped"))))
    assert [s for e, s in events if e == "cell"] == [False, False]  # clean and severity 1, evaluated again
    rows = R.read_robustness(out)
    assert {r["weights"] for r in rows} == {"final"} and {r["experiment"] for r in rows} == {"robustness"}
    events.clear()
    Rb.evaluate_robustness([run], ["blur"], [1], "center", out, split="val",
                           on_event=lambda e, **k: events.append((e, k.get("skipped"))))
    assert [s for e, s in events if e == "cell"] == [True, True]  # the final weights' cells are kept


def test_a_list_item_of_the_wrong_type_is_one_line():
    from selfy_lab.config.presets import resolve

    with pytest.raises(ValueError, match="position item '5' is not a stage name"):
        resolve("quick", overrides={"model": {"position": ["res3", 5]}})
    with pytest.raises(ValueError, match="hierarchy levels"):
        resolve("quick", overrides={"model": {"hierarchy_levels": [3, "res4"]}})


def test_a_long_value_is_cut_in_the_message():
    from selfy_lab.core.errors import user_message

    msg = user_message(SelfyError(f"unknown dataset '{'x' * 5000}': choose from synthetic, custom"))
    assert len(msg) < 200 and msg.endswith("choose from synthetic, custom") and "(5003 characters)" in msg


def test_an_export_s_weights_file_passed_as_pretrained_is_its_folder(smoke_run, tmp_path):
    from selfy_lab.studies.export import export_run
    from selfy_lab.models import build_model
    from selfy_lab.engine.weights import load_pretrained

    run = smoke_run
    out = tmp_path / "model"
    export_run(run, out)
    cfg = R.read_run_config(out).model
    by_folder = load_pretrained(build_model(cfg), str(out), cfg.depth, cfg.width)
    by_file = load_pretrained(build_model(cfg), str(out / R.WEIGHTS), cfg.depth, cfg.width)
    assert by_file["loaded"] == by_folder["loaded"] > 0
    lone = tmp_path / "lone.safetensors"
    shutil.copy(out / R.WEIGHTS, lone)
    with pytest.raises(SelfyError, match="without the config.yaml of a selfy-lab export beside it; pass the export folder"):
        load_pretrained(build_model(cfg), str(lone), cfg.depth, cfg.width)


def test_more_example_clips_than_the_split_holds_is_one_line(smoke_run, tmp_path):
    from selfy_lab.studies.robustness import example_clips

    run = smoke_run
    with pytest.raises(SelfyError, match=r"--examples 100000: the validation split holds \d+ clips"):
        example_clips(run, ["blur"], [1], "center", 0, 100000)


def _main(args, capsys, monkeypatch, cwd):
    """``selfy-lab ARGS`` in this process, as the console entry point runs it: (exit status, stderr)."""
    import sys

    from selfy_lab.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["selfy-lab", *map(str, args)])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def _read_only(monkeypatch, folder):
    """``folder`` refuses writes: by its mode, or (for root, whom modes do not stop) by the error the system
    gives an unprivileged user there, raised where a file or folder would be created inside it."""
    import os
    import tempfile
    from pathlib import Path

    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return
    inside = lambda p: Path(p).resolve().is_relative_to(folder.resolve())  # noqa: E731
    real_mkstemp, real_mkdir = tempfile.mkstemp, Path.mkdir

    def mkstemp(*a, dir=None, **k):
        if dir is not None and inside(dir):
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*a, dir=dir, **k)

    def mkdir(self, *a, **k):
        if inside(self.parent) and not self.exists():
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(Path, "mkdir", mkdir)


def test_every_command_s_out_never_touches_what_it_does_not_own(smoke_run, tmp_path, capsys, monkeypatch):
    """Every command that writes, pointed at an existing file of the user's, a folder of the user's and a
    read-only folder: one line, status 2, and the user's files as they were."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    model = repo / "results" / "models" / "tsn-r18-w16-baseline"  # an export that ships with the repository
    run = smoke_run
    folder_commands = {
        "train": ["train", "--preset", "smoke"],
        "pretrain": ["pretrain", "--preset", "smoke"],
        "ablate": ["ablate", "--preset", "smoke", "--offsets", "1"],
        "corrupt": ["corrupt", "--checkpoint", model, "--kind", "blur", "--severity", "1"],
        "cam": ["cam", "--checkpoint", model],
        "stss": ["stss"],
        "bench": ["bench", "--only", "stss", "--sizes", "14", "--repeats", "1"],
        "report": ["report", "--only", "flops", "--notebooks", repo / "notebooks", "--results-root", repo / "results"],
        "flops": ["flops", "--paper"],
        "describe": ["describe"],
        "export": ["export", "--checkpoint", run],
    }
    for name, args in folder_commands.items():
        case = tmp_path / name
        case.mkdir()
        notes = case / "notes.md"
        notes.write_text("my notes\n")
        mine = case / "mine"
        mine.mkdir()
        (mine / "todo.txt").write_text("keep me\n")
        for out, expected in ((notes, "is a file, where a folder is written"),
                              (mine, "holds files selfy-lab did not write (todo.txt)")):
            code, err = _main([*args, "--out", out], capsys, monkeypatch, case)
            assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, (name, out, err)
        assert notes.read_text() == "my notes\n" and sorted(p.name for p in mine.iterdir()) == ["todo.txt"], name
        with monkeypatch.context() as m:
            _read_only(m, case / "locked")
            code, err = _main([*args, "--out", case / "locked" / "out"], capsys, m, case)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot write to" in err, (name, err)
        (case / "locked").chmod(0o755)
        assert list((case / "locked").iterdir()) == [], name
    # eval writes one CSV file: a user's file, a folder, a read-only folder
    case = tmp_path / "eval"
    case.mkdir()
    notes = case / "notes.md"
    notes.write_text("my notes\n")
    for out, expected in ((notes, "is not a selfy-lab results table"), (case, "is a folder, where eval writes")):
        code, err = _main(["eval", model, "--out", out], capsys, monkeypatch, case)
        assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, (out, err)
    assert notes.read_text() == "my notes\n"
    with monkeypatch.context() as m:
        _read_only(m, case / "locked")
        code, err = _main(["eval", model, "--out", case / "locked" / "eval.csv"], capsys, m, case)
    assert code == 2 and "cannot write to" in err, err


@pytest.mark.slow
def test_a_full_disk_in_every_writer_is_one_line_and_keeps_what_was_finished(smoke_run, tmp_path, capsys,
                                                                                monkeypatch):
    """The disk fills at each write of ablate (its lock, records, run files), eval, corrupt and export in turn:
    each stops with one line, and what was written before stays whole."""
    import errno
    import os

    from selfy_lab.studies import export  # writes its weights through safetensors' save_file

    run = shutil.copytree(smoke_run, tmp_path / "run")
    real_fsync = os.fsync

    def disk_full_after(n):
        calls = [0]

        def fsync(fd):
            calls[0] += 1
            if calls[0] > n:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_fsync(fd)
        return fsync

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    def stops(args, inject):
        with monkeypatch.context() as m:
            inject(m)
            code, err = _main(args, capsys, monkeypatch, tmp_path)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "No space left on device" in err, (args, err)

    sweep = tmp_path / "sweep"
    stops(["ablate", "--preset", "smoke", "--offsets", "1", "--no-baseline", "--out", sweep, "--allow-dirty"],
          lambda m: m.setattr("builtins.open", _open_failing_at(R.LOCK)))
    for n in (0, 2, 4):
        stops(["ablate", "--preset", "smoke", "--offsets", "1", "--no-baseline", "--out", sweep, "--allow-dirty"],
              lambda m: m.setattr(os, "fsync", disk_full_after(n)))
        for table in (R.RUNS_TABLE, R.STATUS_TABLE):  # every table written so far is whole: it reads as rows
            if (sweep / table).exists():
                R.read_csv(sweep / table)
    before = (run / R.METRICS).read_bytes()
    stops(["eval", run, "--allow-dirty"], lambda m: m.setattr(os, "fsync", disk_full_after(0)))
    assert (run / R.METRICS).read_bytes() == before
    stops(["corrupt", "--checkpoint", run, "--kind", "blur", "--severity", "1", "--split", "val",
           "--out", tmp_path / "robustness", "--allow-dirty"], lambda m: m.setattr(os, "fsync", disk_full_after(0)))
    stops(["export", run, "--out", tmp_path / "export"], lambda m: m.setattr(export, "save_file", full))
    assert [p.name for p in (tmp_path / "export").iterdir()] == []  # no half-written weights


def _open_failing_at(name):
    import builtins
    import errno

    real_open = builtins.open

    def opener(file, *a, **k):
        if str(file).endswith(name):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, *a, **k)
    return opener
