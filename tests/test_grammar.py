"""The shared input grammar: offsets, windows, positions, integer lists."""
import pytest

from selfy_lab.config.run import ModelConfig
from selfy_lab.config.grammar import format_offsets, parse_int_list, parse_offsets, parse_positions, parse_window


@pytest.mark.parametrize("spec,expected", [
    ("0", (0,)), ("1", (1,)), ("-2,0,2", (-2, 0, 2)), ("-3..3", (-3, -2, -1, 0, 1, 2, 3)), (" -1 .. 1 ", (-1, 0, 1)),
    ("2,-2", (-2, 2)), ("{1}", (1,)), ("0..0", (0,)), ("+1", (1,)), (3, (3,)), ([1, -1], (-1, 1)),
])
def test_offsets_good(spec, expected):
    assert parse_offsets(spec) == expected


@pytest.mark.parametrize("spec,msg", [
    ("3..-3", "reversed"), ("", "empty"), ("1,x", "not an integer"), ("1.5", "not an integer"), ("1,1", "twice"),
    ("..3", "not an integer"), ("-3..", "not an integer"), ("1,,2", "not an integer"),
])
def test_offsets_bad(spec, msg):
    with pytest.raises(ValueError, match=msg):
        parse_offsets(spec)


@pytest.mark.parametrize("offs,text", [((), "none"), ((1,), "{1}"), ((0,), "{0}"), ((-1, 0, 1), "-1..1"),
                                       ((-2, 0, 2), "{-2,0,2}"), ((-3, -2, -1, 0, 1, 2, 3), "-3..3")])
def test_offsets_canonical_round_trip(offs, text):
    assert format_offsets(offs) == text
    if offs:
        assert parse_offsets(text) == offs


def test_windows():
    assert parse_window("9x9") == (9, 9) and parse_window("13") == (13, 13) and parse_window("7X5") == (7, 5)
    for bad in ("8x8", "1x1", "9x", "x9", "nine"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_positions_and_config_validation():
    assert parse_positions("res4+res2+res3") == ("res2", "res3", "res4")
    with pytest.raises(ValueError, match="unknown position"):
        parse_positions("res6")
    with pytest.raises(ValueError, match="beyond a 4-frame clip"):
        ModelConfig(frames=4, offsets=(-4, 0, 4))
    with pytest.raises(ValueError, match="unknown extractor"):
        ModelConfig(extractor="fft")
    assert ModelConfig(offsets="-3..3").offsets == (-3, -2, -1, 0, 1, 2, 3)


@pytest.mark.parametrize("spec,expected", [("3", (3,)), ("1-6", (1, 2, 3, 4, 5, 6)), ("1,3,5", (1, 3, 5)),
                                           ("1-2,5", (1, 2, 5))])
def test_int_lists(spec, expected):
    assert parse_int_list(spec, "severity", 1, 6) == expected


@pytest.mark.parametrize("spec,msg", [("0", "valid severity values are 1-6"), ("7", "out of range"), ("6-1", "reversed"),
                                      ("a", "not a number")])
def test_int_lists_bad(spec, msg):
    with pytest.raises(ValueError, match=msg):
        parse_int_list(spec, "severity", 1, 6)
