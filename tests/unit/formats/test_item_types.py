"""Column types from a JSON Schema: the digits of a DECIMAL are the declared bounds' own."""

from __future__ import annotations

import pytest

from changelake.formats.item_types import ScalarType, item_typing


@pytest.mark.parametrize(("maximum", "precision"), [(10**38 - 1, 38), (10**37 - 1, 37), (10**28 + 1, 29)])
def test_an_integer_bounded_by_n_digits_is_a_decimal_of_n_digits(maximum: int, precision: int) -> None:
    # GIVEN an integer attribute bounded by a number of more than 28 digits (decimal's default precision)
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": maximum}}}

    # WHEN it is typed
    typing = item_typing(schema)

    # THEN its DECIMAL has exactly the bound's digits (not the bound rounded to 28 digits)
    assert typing.struct is not None
    assert dict(typing.struct.fields)["n"] == ScalarType("decimal", precision, 0)
