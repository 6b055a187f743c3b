"""Malformed user input - experiment files, list and class-name files, flag values - ends in one line and a
non-zero status, never a traceback (examples from real use, then generated ones)."""
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfy_lab.studies import ablate as A
from selfy_lab.data.lists import read_categories, read_class_names, read_clips
from selfy_lab.core.errors import DataError, SelfyError

from helpers import cli_inproc, one_line_error


@pytest.mark.parametrize("text, message", [
    ("model: fast\n", "model: must be a mapping of model fields"),
    ("model: [tsm-r18, tea]\n", "model: must be a mapping of model fields"),
    ("model:\n  window: []\n", "model.window is an empty list"),
    ("model:\n  pretrained: 5\n", "model.pretrained must be text, got an integer (5)"),
    ("model:\n  backbone:\n", "model.backbone has no value"),
    ("train:\n  lr: fast\n", "train.lr must be a number, got text ('fast')"),
    ("train:\n  epochs: 2.5\n", "train.epochs must be an integer"),
    ("data:\n  scales: 0.5\n", "data.scales must be a list, got a number (0.5)"),
    ("sweep: [1, 2]\n", "sweep: must be a mapping"),
    ("sweep:\n  offsets: [[1, 2]]\n", "sweep.offsets must be offset sets"),
    ("sweep:\n  axes: window\n", "sweep.axes must be a mapping of axis: values"),
    ("sweep:\n  variants: {block: tea}\n", "sweep.variants must be a non-empty list of mappings"),
    ("sweep:\n  variants: [tea]\n", "sweep.variants[0] must be a mapping of fields"),
    ("sweep:\n  variants: [{colour: red}]\n", "sweep.variants[0]: unknown field 'colour'"),
    ("sweep:\n  ladder: yes please\n", "sweep.ladder must be true or false"),
    ("presets:\n  quick: fast\n", "presets.quick must be a mapping of sections"),
    ("presets:\n  quick:\n    model:\n      frames: eight\n", "presets.quick.model.frames must be an integer"),
    ("- model\n- data\n", "expected a mapping of sections"),
    ("name: [a]\n", "name must be text"),
])
def test_an_experiment_file_of_the_wrong_shape_names_the_field(tmp_path, text, message):
    f = tmp_path / "exp.yaml"
    f.write_text(text)
    with pytest.raises(SelfyError) as e:
        A.plan_sweep({"experiment": f, "preset": "smoke"})
    assert message in str(e.value) and str(f) in str(e.value)
    assert one_line_error(cli_inproc("ablate", "--experiment", f, "--preset", "smoke", "--out", tmp_path / "s"), message)


def test_one_offset_set_may_be_given_without_a_list(tmp_path):
    """sweep: {offsets: "-3..3"} is the ladder of that range, offsets: 1 the set {1}: not characters or a crash."""
    f = tmp_path / "exp.yaml"
    f.write_text('sweep:\n  offsets: "-3..3"\n')
    assert [r.run.model.variant()["offsets"] for r in A.plan_sweep({"experiment": f, "preset": "smoke"}).runs] == [
        "none", "{0}", "{1}", "-1..1", "-2..2", "-3..3"]
    f.write_text("sweep:\n  offsets: 1\n")
    assert [r.run.model.variant()["offsets"] for r in A.plan_sweep({"experiment": f, "preset": "smoke"}).runs] == [
        "none", "{1}"]


def test_a_file_that_is_not_utf8_is_one_line_naming_its_line(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_bytes("name: caf\xe9\nmodel:\n  backbone: tsm-r18\n".encode("latin-1"))
    assert one_line_error(cli_inproc("ablate", "--experiment", f, "--out", tmp_path / "s"), f"{f}:1: not UTF-8 text")
    lst = tmp_path / "train.txt"
    lst.write_bytes("frames/v0 8 0\nframes/caf\xe9 8 1\n".encode("latin-1"))
    with pytest.raises(DataError, match=f"{lst}:2: not UTF-8 text"):
        read_clips(lst)
    names = tmp_path / "category.txt"
    names.write_bytes("Pushing something\nTouching caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=f"{names}:2: not UTF-8"):
        read_categories(names)


def test_a_byte_order_mark_is_read_as_windows_editors_mean_it(tmp_path):
    lst = tmp_path / "train.txt"
    lst.write_bytes("\ufeffframes/v0 8 0\nframes/v1 8 1\n".encode("utf-8"))
    assert [e.path.name for e in read_clips(lst)] == ["v0", "v1"]  # not '\ufeffframes/v0'
    names = tmp_path / "category.txt"
    names.write_bytes("\ufeffPushing something\nTouching something\n".encode("utf-8"))
    assert read_categories(names)[0] == "Pushing something"
    exp = tmp_path / "exp.yaml"
    exp.write_bytes("\ufeffname: bom\nsweep:\n  offsets: ['1']\n".encode("utf-8"))
    assert A.plan_sweep({"experiment": exp, "preset": "smoke"}).name == "bom"


def test_a_class_named_twice_is_refused(tmp_path):
    names = tmp_path / "category.txt"
    names.write_text("Pushing something\nTouching something\nPushing something\n")
    with pytest.raises(DataError, match=f"{names}:3: class 'Pushing something' is named twice \\(also line 1\\)"):
        read_class_names(names)
    vocab = tmp_path / "vocab.json"
    vocab.write_text('[["back", "dive"], ["back", "dive"]]')
    with pytest.raises(DataError, match="named twice"):
        read_class_names(vocab)


# ---- generated input ----
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(string.printable, max_size=12))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(string.ascii_lowercase, max_size=8), inner, max_size=3)),
                       max_leaves=6)
_fields = st.sampled_from(["backbone", "frames", "block", "offsets", "window", "position", "pretrained", "block_options",
                           "lr", "epochs", "batch_size", "size", "scales", "flip", "seeds", "variants", "axes", "x"])
_sections = st.dictionaries(_fields, _values, max_size=3)
_files = st.dictionaries(st.sampled_from(["model", "data", "train", "sweep", "presets", "name", "preset", "colour"]),
                         st.one_of(_sections, _values), max_size=3)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_files)
def test_generated_experiment_files_plan_or_stop_with_a_user_error(tmp_path, doc):
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(doc))
    try:
        A.plan_sweep({"experiment": f, "preset": "smoke"})
    except SelfyError as e:
        assert str(e).strip() and "\n" not in str(e).strip()


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=120))
def test_generated_list_and_class_files_read_or_stop_with_a_data_error(tmp_path, data):
    for name, read in (("list.txt", read_clips), ("category.txt", read_categories)):
        f = tmp_path / name
        f.write_bytes(data)
        try:
            read(f)
        except DataError as e:
            assert str(e).strip()


_flag_text = st.text(string.ascii_letters + string.digits + "-.,:+x=_ ", min_size=1, max_size=10)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--offsets", "--window", "--block", "--position", "--block-options", "--frames",
                             "--backbone", "--extractor", "--reduce"]), value=_flag_text)
def test_generated_flag_values_work_or_stop_with_one_line(tmp_path, flag, value):
    p = cli_inproc("flops", "--size", "32", "--backbone", "tsn-r18-w8", flag, value, cwd=tmp_path)
    assert "Traceback" not in p.stderr
    assert p.returncode == 0 or (p.returncode == 2 and len(p.stderr.strip().splitlines()) >= 1), (flag, value, p.stderr)


# a results table as a hand, a full disk or another version leaves it: cells edited, columns lost, rows torn
_ROW = ("e,r1,tsn,8,none,none,none,none,none,none,none,none,none,none,none,scratch,1,0.1,1.0,0,val,{metric},{value},"
        "0.1.0,abc,t")
_edits = st.lists(st.tuples(st.sampled_from(["cell", "drop_column", "cut", "line"]), st.integers(0, 10_000),
                            st.text(string.printable, max_size=8)), max_size=4)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.text(string.printable, max_size=6),
                       min_size=1, max_size=4), edits=_edits)
def test_generated_results_tables_read_valid_or_stop_with_one_line(tmp_path, values, edits):
    """Whatever a runs.csv holds, the store returns only rows a table may publish (numbers, shares in [0, 1]) or
    stops with one line naming the file."""
    import csv
    import io
    import math

    from selfy_lab.store import results as R
    from selfy_lab.reports.tables import SHARES, load_runs

    header = list(R.RUN_COLUMNS[:-3])
    rows = [[str(v) if c == "{value}" else m if c == "{metric}" else c for c in _ROW.split(",")]
            for m, v in zip(("top1", "top5", "loss", "mean_class"), values)]
    for kind, at, text in edits:
        if kind == "cell" and rows:
            row = rows[at % len(rows)]
            if row:
                row[at % len(row)] = text
        elif kind == "drop_column" and len(header) > 1:
            i = at % len(header)
            header.pop(i)
            rows = [r[:i] + r[i + 1:] for r in rows]
        elif kind == "line":
            rows.append(text.split(","))
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    body = buf.getvalue()
    for kind, at, _ in edits:
        if kind == "cut" and body:
            body = body[: at % len(body)]
    f = tmp_path / R.RUNS_TABLE
    f.write_text(body)
    try:
        df = load_runs(f)
    except SelfyError as e:
        msg = str(e).strip()
        assert msg and "\n" not in msg and str(f) in msg
        return
    for metric, value in zip(df["metric"], df["value"]):
        assert isinstance(value, float) and not math.isnan(value)
        if metric in SHARES:
            assert 0.0 <= value <= 1.0, (metric, value)
