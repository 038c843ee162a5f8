"""The fast path of item_text must give exactly the checked path's text or error, at every boundary."""

from __future__ import annotations

import random
from typing import Any

import pytest

from changelake.exceptions import ConversionError
from changelake.formats.dynamodb_json import _BadValue, item_text, map_text


def _checked(image: dict[str, Any]) -> str:
    """What the checked path alone says: the text, or the error as item_text words it."""
    try:
        return map_text(image)
    except _BadValue as exc:
        path = "".join(part if part.startswith("[") else "." + part for part in reversed(exc.path))
        return f"image{path}: {exc.reason}"


def _fast(image: dict[str, Any]) -> str:
    try:
        return item_text("image", image)
    except ConversionError as exc:
        return str(exc)


BOUNDARY_NUMBERS = [
    "1" * 38,
    "1" * 39,
    "1" + "0" * 125,  # adjusted exponent 125: the largest magnitude
    "1" + "0" * 126,  # 126: out of range
    "-1" + "0" * 125,
    "0." + "0" * 129 + "1",  # 1E-130: the smallest
    "0." + "0" * 130 + "1",  # 1E-131: out of range
    "-0.000000000000000000000000000000000001",
    "1234567890123456789012345678.9012345678",
    "1234567890123456789012345678.90123456789",
    "12345678901234567890123456789012345678.000000",
    "0.00000000000000000000000000000000000000",
    "-0",
    "+1",
    ".5",
]


@pytest.mark.parametrize("number", BOUNDARY_NUMBERS)
def test_long_plain_numbers_match_the_checked_path(number: str) -> None:
    # GIVEN a number at a digit-count or magnitude boundary, alone, in a list and in a number set
    for image in ({"n": {"N": number}}, {"l": {"L": [{"N": number}]}}, {"s": {"NS": ["1", number]}}):
        # WHEN the fast path converts it THEN the text (or error) is the checked path's
        assert _fast(image) == _checked(image)


def test_random_plain_numbers_match_the_checked_path() -> None:
    # GIVEN seeded random plain decimals of 1 to ~280 characters, many past 38 digits or the range
    rng = random.Random(20261122)
    for _ in range(3000):
        integer = rng.choice(["0", "9" * rng.randrange(1, 3) + "0" * rng.randrange(0, 130)])
        digits = "0" * rng.randrange(0, 135) + rng.choice("123456789") + "0" * rng.randrange(5)
        fraction = rng.choice(["", "." + digits])
        image = {"n": {"N": rng.choice(["", "-"]) + integer + fraction}}
        # WHEN converted THEN fast and checked paths agree
        assert _fast(image) == _checked(image), image


@pytest.mark.parametrize(
    "attribute",
    [
        *({"BS": value} for value in ([], ["AA=="], ["AA==", "AAE"], ["AA==", 1])),
        *({"B": value} for value in ("", "AAE", 1)),
        *({tag: value} for tag in ("SS", "NS") for value in ([], ["1", 2])),
    ],
)
def test_binaries_and_sets_match_the_checked_path(attribute: dict[str, Any]) -> None:
    # GIVEN a binary or a set, well-formed or not WHEN converted THEN fast and checked paths agree
    assert _fast({"x": attribute}) == _checked({"x": attribute})
