"""atrous_advisor.numbers: the one place raw text becomes a bounded number."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from atrous_advisor import numbers
from atrous_advisor.errors import InputError


@pytest.mark.parametrize("text", ["²", "٣", "３", "8８", "½", "", " ", "8,16", "1e3", "8.0", "0x10", "1_000", "nan", "\u200b8"])
def test_only_ascii_integers(text):
    with pytest.raises(InputError, match=r"^--stride "):
        numbers.parse_int(text, "--stride", numbers.STRIDE)


def test_huge_numbers_are_refused_before_conversion():
    started = time.perf_counter()
    for text in ("9" * 5000, "-" + "9" * 5000, "0" * 5000 + "8"):
        try:
            value = numbers.parse_int(text, "--crop", numbers.CROP)
        except InputError as exc:
            assert "out of range" in str(exc) and len(str(exc)) < 200
        else:
            assert value == 8  # leading zeros are still the number 8
    assert time.perf_counter() - started < 0.1


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_parse_int_is_int_within_the_cap(value):
    cap = numbers.STRIDE
    if cap.low <= value <= cap.high:
        assert numbers.parse_int(str(value), "--stride", cap) == value
    else:
        with pytest.raises(InputError, match="out of range: expected an output stride from 1 to 4096"):
            numbers.parse_int(str(value), "--stride", cap)


def test_pairs_and_lists():
    assert numbers.parse_pair("512", "--crop") == (512, 512)
    assert numbers.parse_pair("512x1024", "--crop") == (512, 1024)
    assert numbers.parse_pair(" 512 × 1024 ", "--crop") == (512, 1024)
    assert numbers.parse_pair("512,1024", "--crop") == (512, 1024)
    for bad in ("512x", "x512", "1x2x3", "0x512", "512x99999"):
        with pytest.raises(InputError, match="^--crop"):
            numbers.parse_pair(bad, "--crop")
    assert numbers.parse_int_list("12, 24 36", "--rates", numbers.RATE) == (12, 24, 36)
    with pytest.raises(InputError, match=r"--rates: 20000 values; at most 64"):
        numbers.parse_int_list(",".join(["6"] * 20000), "--rates", numbers.RATE)


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e999", "0", "-1", "٣", "1.5.2", ""])
def test_floats_are_finite_and_in_range(text):
    with pytest.raises(InputError, match="^--lr"):
        numbers.parse_float(text, "--lr", 0.0, 1e6, open_low=True)


def test_structured_values():
    assert numbers.check_int(np.int64(8), "stride", numbers.STRIDE) == 8
    for bad in (True, 8.0, "8", None, [8], 0, 10**30):
        assert numbers.int_problem(bad, numbers.STRIDE) is not None
    assert numbers.shown(10**5000).startswith("<an integer")


def test_load_json_bounds_integers_and_nesting():
    assert numbers.load_json('{"num_classes": 19}') == {"num_classes": 19}
    with pytest.raises(ValueError, match="more than 1000 digits"):
        numbers.load_json('{"a": ' + "9" * 5000 + "}")
    with pytest.raises(ValueError, match="nested too deeply"):
        numbers.load_json("[" * 100_000 + "]" * 100_000)
