"""A schema's numeric keywords, read and checked exactly: one rule for the consumer and the columns."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from changelake.formats.number_rules import NumberRule, Step, checked_schema
from changelake.formats.schema_files import parse_schema


def _decimal(coefficient: int, exponent: int) -> Decimal:
    return Decimal(f"{coefficient}E{exponent}")


@settings(max_examples=300)
@given(
    value=st.builds(_decimal, st.integers(-(10**38) + 1, 10**38 - 1), st.integers(-167, 125)),
    step=st.builds(_decimal, st.integers(1, 10**6), st.integers(-200, 200)),
)
def test_a_step_divides_exactly_the_numbers_it_divides(value: Decimal, step: Decimal) -> None:
    # GIVEN any DynamoDB number and any positive step WHEN asked whether the step divides it
    # THEN the answer is the exact one (fractions), whatever the digits and exponents
    assert Step.of(step).divides(value) == ((Fraction(value) / Fraction(step)).denominator == 1)


@pytest.mark.parametrize(
    ("schema", "decimal"),
    [
        ('{"type": "integer", "minimum": 0, "maximum": 999.5}', (3, 0)),
        ('{"type": ["integer", "null"], "minimum": -5, "exclusiveMaximum": 3}', (1, 0)),
        ('{"type": "number", "multipleOf": 0.01, "minimum": -0.5, "maximum": 0.5}', (3, 2)),
        ('{"type": "number", "multipleOf": 1.00, "minimum": 0, "maximum": 1E+2}', (3, 0)),
        ('{"type": "number", "multipleOf": 0.01, "maximum": 5}', None),  # no lower bound
        ('{"type": "number", "multipleOf": 0.02, "minimum": 0, "maximum": 5}', None),  # not 10**-s
        (
            '{"type": "number", "multipleOf": 0.100000000000000000000000000001, "minimum": 0, "maximum": 9}',
            None,
        ),
        ('{"type": "number", "multipleOf": 1E-38, "minimum": 0, "maximum": 1}', None),  # 39 digits
        ('{"type": "integer", "minimum": 0, "maximum": 1E+100000}', None),  # and no 100,001-digit int
        (
            '{"type": "integer", "minimum": 0, "maximum": 9, "$ref": "#/x"}',
            None,
        ),  # fastjsonschema ignores them
    ],
)
def test_the_decimal_holds_every_number_the_rule_allows(schema: str, decimal: tuple[int, int] | None) -> None:
    # GIVEN one property's schema WHEN its rule gives its DECIMAL THEN it is exactly the one that holds it
    rule = NumberRule.of(parse_schema(schema))
    assert (rule.decimal() if rule is not None else None) == decimal


def test_the_checks_take_the_numeric_keywords_where_the_columns_are_typed_and_leave_the_rest() -> None:
    # GIVEN a schema with numbers in properties, in items, under anyOf and beside a $ref
    schema: Any = parse_schema(
        '{"type": "object", "properties": {'
        '"a": {"type": "number", "multipleOf": 0.01, "maximum": 5, "enum": [1.5, 2]},'
        '"b": {"type": "array", "items": {"type": "integer", "exclusiveMinimum": 0}},'
        '"c": {"anyOf": [{"type": "number", "maximum": 1.5}]},'
        '"d": {"$ref": "#/definitions/d", "maximum": 7},'
        '"e": {"type": "string", "maxLength": 3}},'
        '"definitions": {"d": {"type": "number", "minimum": 0.5}}}'
    )

    # WHEN it is split for fastjsonschema and the exact checks
    rest, checks = checked_schema(schema)

    # THEN fastjsonschema keeps everything but the numeric keywords of properties and items, with floats
    properties = rest["properties"]
    assert properties["a"] == {"type": "number", "enum": [1.5, 2]}
    assert properties["b"] == {"type": "array", "items": {"type": "integer"}}
    assert properties["c"] == {"anyOf": [{"type": "number", "maximum": 1.5}]}
    assert properties["d"] == {"$ref": "#/definitions/d", "maximum": 7}
    assert properties["e"] == {"type": "string", "maxLength": 3}
    assert rest["definitions"] == {"d": {"type": "number", "minimum": 0.5}}
    assert type(properties["c"]["anyOf"][0]["maximum"]) is float
    # AND the checks hold those keywords, exactly
    assert checks is not None
    by_name = dict(checks.properties)
    assert set(by_name) == {"a", "b"}
    assert by_name["a"].rule is not None
    assert by_name["a"].rule.violation(Decimal("1.001")) == "must be multiple of 0.01"
    assert by_name["b"].items is not None
    assert by_name["b"].items.rule is not None
    assert by_name["b"].items.rule.violation(0) == "must be bigger than 0"


def test_a_schema_without_numbers_to_check_has_no_checks() -> None:
    # GIVEN a schema whose only numbers bound strings WHEN split THEN there are no exact checks to run
    assert (
        checked_schema({"type": "object", "properties": {"s": {"type": "string", "maxLength": 3}}})[1] is None
    )
