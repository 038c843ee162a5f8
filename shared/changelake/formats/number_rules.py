"""The numeric keywords of a JSON Schema, read and checked exactly. Pure.

``type: integer``, ``multipleOf``, ``minimum``, ``maximum``, ``exclusiveMinimum`` and
``exclusiveMaximum`` decide both whether the stream consumer accepts a number (``ingest.schema``)
and the ``DECIMAL(p, s)`` its column gets (``formats.item_types``, for the Parquet snapshot and the
Athena typed tables). ``NumberRule`` is the one reading of them, so that whatever the consumer
accepts fits its column. As floats the two disagree: ``1.2300000000000000001`` is ``1.23`` as a
float, a multiple of 0.01, and ``1000000.000000000001`` is ``1000000.0``, not above a maximum of
1000000, yet no ``DECIMAL(p, 2)`` and no ``DECIMAL(7, 0)`` holds them.

Schema numbers are ``Decimal`` (``schema_files.parse_schema``) or ``int``; a float (a schema built
in code) is read as its shortest text (``0.01``, not the binary fraction). Values are ``int`` or
``Decimal``. Nothing rounds, and the work is bounded whatever the exponents: bounds are
comparisons, and a multiple is decided on the digits with modular arithmetic (``1E+125`` under
``multipleOf: 7E-1000000`` is ``pow(10, 1000125, 7)``, never a number of a million digits).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

#: DECIMAL's limit in Athena (Trino), Hive and DuckDB; also DynamoDB's significant digits.
MAX_PRECISION = 38


def schema_number(value: Any) -> Decimal | None:
    """A schema's number exactly; None for anything else (a boolean, a string, an infinite float)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value))
    return None


@dataclass(frozen=True, slots=True)
class Step:
    """A positive ``multipleOf``: ``value`` is ``coefficient * 10**exponent``."""

    value: Decimal
    coefficient: int
    exponent: int

    @classmethod
    def of(cls, value: Decimal) -> Step:
        if not value > 0:
            raise ValueError(f"multipleOf must be greater than 0, got {value}")
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite: schema_number gives no other
        return cls(value, int("".join(map(str, digits))), exponent)

    def divides(self, number: int | Decimal) -> bool:
        """``number / value`` is an integer. With ``number = a * 10**x``: ``b * 10**y`` divides it when
        ``b`` divides ``a * 10**(x - y)`` (x >= y), or when ``b * 10**(y - x)`` divides ``a``, which
        needs ``y - x`` below the digits of ``a``."""
        _, digits, x = Decimal(number).as_tuple()
        assert isinstance(x, int)  # finite: schema_number and the JSON parser give no other
        b, y = self.coefficient, self.exponent
        if b == 1 and x >= y:
            return True  # a power of ten divides any number with as many decimals or fewer: the usual case
        a = int("".join(map(str, digits)))
        if a == 0:
            return True
        if x >= y:
            return a % b * pow(10, x - y, b) % b == 0
        return y - x < len(digits) and a % (b * 10 ** (y - x)) == 0


#: Every integer is a multiple of 1.
_ONE = Step(Decimal(1), 1, 0)


@dataclass(frozen=True, slots=True)
class Bound:
    """One bound: ``keyword`` is the schema's (``minimum``, ..., ``exclusiveMaximum``)."""

    keyword: str
    value: Decimal
    lower: bool
    exclusive: bool

    def excludes(self, number: int | Decimal) -> bool:
        if self.lower:
            return number <= self.value if self.exclusive else number < self.value
        return number >= self.value if self.exclusive else number > self.value

    @property
    def requirement(self) -> str:
        """What a number must be, worded as fastjsonschema words it."""
        side = "bigger" if self.lower else "smaller"
        than = "than" if self.exclusive else "than or equal to"
        return f"must be {side} {than} {self.value}"


@dataclass(frozen=True, slots=True)
class NumberRule:
    """What one schema node requires of a number."""

    integer: bool
    step: Step | None
    bounds: tuple[Bound, ...]

    @classmethod
    def of(cls, schema: Any) -> NumberRule | None:
        """The rule of ``schema``; None when it requires nothing of a number, or has a ``$ref``
        (fastjsonschema ignores the keywords beside one). A ``multipleOf`` that is not a positive
        number is no step here: ``checked_schema`` refuses it. Draft 4's boolean ``exclusiveMinimum``
        and ``exclusiveMaximum`` make ``minimum`` and ``maximum`` exclusive; from draft 6 they are
        numbers, bounds of their own."""
        if not isinstance(schema, dict) or "$ref" in schema:
            return None
        kinds = schema.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        integer = "integer" in kinds and "number" not in kinds
        step = schema_number(schema.get("multipleOf"))
        bounds = []
        for keyword, flag, lower in (
            ("minimum", "exclusiveMinimum", True),
            ("maximum", "exclusiveMaximum", False),
            ("exclusiveMinimum", None, True),
            ("exclusiveMaximum", None, False),
        ):
            value = schema_number(schema.get(keyword))
            if value is not None:
                bounds.append(Bound(keyword, value, lower, flag is None or schema.get(flag) is True))
        positive = step if step is not None and step > 0 else None
        if not integer and positive is None and not bounds:
            return None
        return cls(integer, Step.of(positive) if positive is not None else None, tuple(bounds))

    @property
    def keywords(self) -> frozenset[str]:
        """The numeric keywords this rule checks (its node's other keywords are not its own)."""
        return frozenset(bound.keyword for bound in self.bounds) | ({"multipleOf"} if self.step else set())

    def violation(self, number: int | Decimal) -> str | None:
        """Why ``number`` breaks this rule (worded as fastjsonschema words it); None if it does not."""
        if self.integer and type(number) is not int and not _ONE.divides(number):
            return "must be integer"
        for bound in self.bounds:
            if bound.excludes(number):
                return bound.requirement
        if self.step is not None and not self.step.divides(number):
            return f"must be multiple of {self.step.value}"
        return None

    def decimal(self) -> tuple[int, int] | None:
        """``(precision, scale)`` of the DECIMAL that holds every number this rule allows: an integer
        (scale 0) or a multiple of 10**-s (scale s), bounded below and above, with at most 38 digits;
        None when no DECIMAL does."""
        scale = 0 if self.integer else _power_of_ten_scale(self.step)
        sides = {bound.lower for bound in self.bounds}
        if scale is None or sides != {True, False}:
            return None
        precision = max(_integer_digits(bound.value) for bound in self.bounds) + scale
        return (precision, scale) if precision <= MAX_PRECISION else None


def _power_of_ten_scale(step: Step | None) -> int | None:
    """s when the step is exactly 10**-s (0.01 -> 2, 1 -> 0), read from its digits (``normalize``
    would round a step of more than 28 digits to one)."""
    if step is None:
        return None
    digits = str(step.coefficient).rstrip("0")
    exponent = step.exponent + len(str(step.coefficient)) - len(digits)
    return -exponent if digits == "1" and exponent <= 0 else None


def _integer_digits(bound: Decimal) -> int:
    """The digits of the integer part of ``|bound|`` (at least 1: ``0.5`` has ``0``), without building it."""
    return max(bound.adjusted() + 1, 1) if bound else 1


class ExactFloat(float):
    """A JSON number with a fraction or an exponent: a float (to fastjsonschema) that keeps the text
    it was read from (for ``NumberChecks``). ``loads_keeping_digits`` makes them."""

    __slots__ = ("text",)
    text: str


def _exact_float(text: str, new: Any = float.__new__) -> ExactFloat:
    # A function, not ExactFloat.__new__: half the cost per number (0.15 us against 0.28).
    number: ExactFloat = new(ExactFloat, text)
    number.text = text
    return number


#: Built once: ``json.loads`` with a ``parse_float`` builds a decoder per call (1-2 us a line).
_KEEPING_DIGITS = json.JSONDecoder(parse_float=_exact_float)


def loads_keeping_digits(data: bytes) -> Any:
    """``data`` (UTF-8) parsed as ``json.loads`` does, each number with a fraction or an exponent an
    ``ExactFloat``: 1.3 us more than ``json.loads`` for a change line of two ~1 KB images."""
    return _KEEPING_DIGITS.decode(data.decode())


def _exact(value: Any) -> int | Decimal | None:
    """A parsed JSON value's exact number; None if it is not a number."""
    if type(value) is ExactFloat:
        return Decimal(value.text)
    if type(value) is int:
        return value
    if type(value) is float:  # parsed without keeping digits: its shortest text is the best there is
        return Decimal(repr(value))
    return None


@dataclass(frozen=True, slots=True)
class NumberChecks:
    """The rules of one schema node and of the nodes below it through ``properties`` and ``items``
    (those the columns are typed from), applied exactly to a value ``loads_keeping_digits`` parsed."""

    rule: NumberRule | None = None
    properties: tuple[tuple[str, NumberChecks], ...] = ()
    items: NumberChecks | None = None

    def violation(self, value: Any, path: str = "data") -> tuple[str, str] | None:
        """``(path, why)`` of the first number at or below ``value`` (at ``path``) that breaks its rule."""
        if self.rule is not None:
            number = _exact(value)
            if number is not None:
                why = self.rule.violation(number)
                if why is not None:
                    return path, f"{path} {why}"
        if self.properties and type(value) is dict:
            for name, checks in self.properties:
                if name in value:
                    found = checks.violation(value[name], f"{path}.{name}")
                    if found is not None:
                        return found
        if self.items is not None and type(value) is list:
            for index, element in enumerate(value):
                found = self.items.violation(element, f"{path}[{index}]")
                if found is not None:
                    return found
        return None


def checked_schema(schema: Any) -> tuple[Any, NumberChecks | None]:
    """``schema`` split in two: for fastjsonschema, with every number a float (as ``json.loads`` reads
    it) and without the numeric keywords ``NumberChecks`` checks; and those checks (None when there
    are none). ``ValueError`` for a ``multipleOf`` that is not greater than 0."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return _with_floats(schema), None
    _refuse_a_step_not_above_zero(schema)
    rule = NumberRule.of(schema)
    owned = rule.keywords if rule is not None else frozenset()
    rest: dict[str, Any] = {}
    properties: list[tuple[str, NumberChecks]] = []
    items = None
    for key, value in schema.items():
        if key in owned:
            continue
        if key == "properties" and isinstance(value, dict):
            rest[key] = {}
            for name, member in value.items():
                rest[key][name], checks = checked_schema(member)
                if checks is not None:
                    properties.append((name, checks))
        elif key == "items" and isinstance(value, dict):
            rest[key], items = checked_schema(value)
        else:
            rest[key] = _with_floats(value)
    if rule is None and not properties and items is None:
        return rest, None
    return rest, NumberChecks(rule, tuple(properties), items)


def _refuse_a_step_not_above_zero(schema: dict[str, Any]) -> None:
    """A ``multipleOf`` of 0 or less has no multiples (fastjsonschema would divide by it)."""
    step = schema_number(schema.get("multipleOf"))
    if step is not None and step <= 0:
        raise ValueError(f"multipleOf must be greater than 0, got {schema['multipleOf']}")


def _with_floats(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        _refuse_a_step_not_above_zero(value)
        return {key: _with_floats(member) for key, member in value.items()}
    if isinstance(value, list):
        return [_with_floats(member) for member in value]
    return value
