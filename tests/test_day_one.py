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
