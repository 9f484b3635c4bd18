"""RFC 8785 canonical JSON."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redress.evidence.canonical import canonical_json, format_number
from redress.evidence.errors import CanonicalJsonError


def test_members_sorted_by_utf16_code_units_and_no_whitespace() -> None:
    # RFC 8785 3.2.3's own example of sort order: "\u20ac" sorts before "\U0001f600"
    # in UTF-16 although its code point is smaller too; the carriage return first.
    value = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\U0001f600": "Emoji", "1": "One"}
    assert (
        canonical_json(value)
        == (
            '{"\\r":"Carriage Return","1":"One","\u20ac":"Euro Sign","\U0001f600":"Emoji"}'
        ).encode()
    )


def test_keys_above_the_surrogate_range_sort_after_astral_ones() -> None:
    # U+FB33 is above the surrogates: UTF-16 puts an astral key (D83D ...) first.
    assert canonical_json({"\ufb33": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb33":1}'.encode()


def test_strings_escape_like_json_stringify() -> None:
    assert (
        canonical_json('a"b\\c\n\t\x01\x7f\u2028é')
        == b'"a\\"b\\\\c\\n\\t\\u0001\x7f\xe2\x80\xa8\xc3\xa9"'
    )


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (1.5, "1.5"),
        (-1.5e-7, "-1.5e-7"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (123456789.125, "123456789.125"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740992.0, "9007199254740992"),
        (333333333.3333333, "333333333.3333333"),
    ],
)
def test_numbers_print_as_ecmascript(number: float, text: str) -> None:
    assert format_number(number) == text


def test_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(CanonicalJsonError, match="NaN"):
        canonical_json({"x": math.nan})
    with pytest.raises(CanonicalJsonError, match="safe range"):
        canonical_json({"id": 2**60})
    with pytest.raises(CanonicalJsonError, match="surrogate"):
        canonical_json("\ud800")
    with pytest.raises(CanonicalJsonError, match="no JSON form"):
        canonical_json({"x": b"bytes"})  # type: ignore[dict-item]


def test_nested_values_and_floats_take_the_careful_path_identically() -> None:
    value = {"b": [1, None, True, {"z": 2.5, "a": "x"}], "a": -3}
    assert canonical_json(value) == b'{"a":-3,"b":[1,null,true,{"a":"x","z":2.5}]}'


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_round_trips_through_its_ecmascript_form(number: float) -> None:
    text = format_number(number)
    assert float(text) == number or (number == 0 and float(text) == 0)
    assert "e" not in text or text[text.index("e") + 1] in "+-"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_canonical_form_parses_back_and_is_stable(value: object) -> None:
    encoded = canonical_json(value)  # type: ignore[arg-type]
    assert json.loads(encoded) == value
    assert canonical_json(json.loads(encoded)) == encoded
