"""DynamoDB JSON to plain JSON: every type, exact numbers, clear rejections with the path."""

from __future__ import annotations

import base64
import json
import random
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer

from changelake.exceptions import ConversionError, RecordRejected
from changelake.formats.dynamodb_json import item_text
from changelake_testing.stream_records import realistic_item


def convert(attribute: Any) -> Any:
    """The plain JSON value of one attribute, parsed back with numbers as Decimal."""
    text = item_text("new_image", {"a": attribute})
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)["a"]


def number_text_of(n: str) -> str:
    """The exact JSON text written for ``{"N": n}``."""
    text = item_text("new_image", {"a": {"N": n}})
    assert text.startswith('{"a":')
    assert text.endswith("}")
    return text[len('{"a":') : -1]


# ---------------------------------------------------------------- every type


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ({"S": "hello"}, "hello"),
        ({"S": ""}, ""),
        ({"N": "42"}, Decimal(42)),
        ({"N": "-3.25"}, Decimal("-3.25")),
        ({"B": "aGVsbG8="}, "aGVsbG8="),
        ({"B": ""}, ""),
        ({"BOOL": True}, True),
        ({"BOOL": False}, False),
        ({"NULL": True}, None),
        ({"M": {"x": {"N": "1"}, "y": {"S": "z"}}}, {"x": Decimal(1), "y": "z"}),
        ({"M": {}}, {}),
        ({"L": [{"N": "1"}, {"S": "two"}, {"L": []}, {"NULL": True}]}, [Decimal(1), "two", [], None]),
        ({"L": []}, []),
        ({"SS": ["red", "green"]}, ["red", "green"]),
        ({"NS": ["1", "2.5", "-7"]}, [Decimal(1), Decimal("2.5"), Decimal(-7)]),
        ({"BS": ["AAEC", "AwQF"]}, ["AAEC", "AwQF"]),
    ],
)
def test_every_type_converts_to_plain_json(attribute: Any, expected: Any) -> None:
    # GIVEN one attribute value of each DynamoDB type
    # WHEN it is converted
    actual = convert(attribute)
    # THEN it is the plain JSON value docs/contracts.md prescribes, with the same JSON type
    assert actual == expected
    assert type(actual) is type(expected)


def test_item_is_an_object_keyed_by_attribute_name_in_order() -> None:
    # GIVEN an item with several attributes
    item = {"pk": {"S": "a"}, "n": {"N": "1"}, "ok": {"BOOL": False}}
    # WHEN it is converted
    text = item_text("keys", item)
    # THEN the text is compact JSON with the attributes in their input order
    assert text == '{"pk":"a","n":1,"ok":false}'


def test_empty_item_is_empty_object() -> None:
    # GIVEN an item with no attributes WHEN converted THEN it is {}
    assert item_text("keys", {}) == "{}"


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "n",
    [
        "0",
        "-0",
        "7",
        "12345678901234567890123456789012345678",  # 38 digits, integer
        "-12345678901234567890123456789012345678",
        "0.1234567890123456789012345678901234567",  # 37 digits after the point
        "1234567890123456789012345678.9012345678",  # 38 digits with a point
        "-0.000000000000000000000000000000000001",
        "1E-130",  # DynamoDB's smallest magnitude
        "-1E-130",
        "9.9999999999999999999999999999999999999E+125",  # DynamoDB's largest
        "-9.9999999999999999999999999999999999999E+125",
        "1.5e10",
        "2E-5",
        "12345678901234567890123456789012345678000000",  # 38 significant digits, trailing zeros
        "0.000000000000000000000000000000000000000012",
    ],
)
def test_json_numbers_in_range_are_written_verbatim(n: str) -> None:
    # GIVEN an N that is already a JSON number within DynamoDB's range (up to 38 significant digits)
    # WHEN it is converted
    text = number_text_of(n)
    # THEN the text is exactly the input: no digit is rounded or reformatted
    assert text == n
    # AND its value is exactly the same number
    assert json.loads(text, parse_float=Decimal, parse_int=Decimal) == Decimal(n)


def test_38_digit_number_does_not_pass_through_float() -> None:
    # GIVEN a 38-digit number a float cannot hold
    n = "98765432109876543210987654321098765432"
    # WHEN converted and read back exactly
    value = convert({"N": n})
    # THEN every digit is kept (a float would have kept ~17)
    assert value == Decimal(n)
    assert Decimal(float(n)) != Decimal(n)


@pytest.mark.parametrize(
    "n",
    [
        "123456789012345678901234567890123456789",  # 39-digit integer
        "-123456789012345678901234567890123456789",
        "1.23456789012345678901234567890123456789",  # 39 digits with a point
        "0.123456789012345678901234567890123456789",
        "1234567890123456789012345678901234567891E+10",
        "99999999999999999999999999999999999999.9",  # 39 nines: rounding would hide them
        "1" + "0" * 40 + "1",
    ],
)
def test_more_than_38_significant_digits_is_rejected(n: str) -> None:
    # GIVEN an N with 39 or more significant digits (DynamoDB cannot produce it)
    # WHEN it is converted
    # THEN it is a ConversionError (a RecordRejected, so it goes to quarantine) naming the path
    with pytest.raises(ConversionError, match=r"^new_image\.a: N has \d+ significant digits") as info:
        convert({"N": n})
    assert isinstance(info.value, RecordRejected)


@pytest.mark.parametrize("n", ["1E-131", "-1E-131", "1E+126", "-1E+126", "1e500", "0.1E-130", "10E+125"])
def test_exponent_outside_dynamodb_range_is_rejected(n: str) -> None:
    # GIVEN an N whose magnitude is outside 1E-130 .. 9.99..E+125
    # WHEN converted THEN it is rejected as out of range
    with pytest.raises(ConversionError, match="outside DynamoDB's range"):
        convert({"N": n})


@pytest.mark.parametrize(
    ("n", "value"),
    [
        ("+1", "1"),
        ("+0.5", "0.5"),
        (".5", "0.5"),
        ("-.5", "-0.5"),
        ("1.", "1"),
        ("-7.", "-7"),
        ("01", "1"),
        ("-007.250", "-7.25"),
        ("00", "0"),
        ("+1E+3", "1000"),
        (".5e2", "50"),
        ("1.e2", "100"),
    ],
)
def test_non_json_number_forms_become_json_numbers_of_the_same_value(n: str, value: str) -> None:
    # GIVEN an N in a form Python's Decimal reads but JSON does not allow
    # WHEN it is converted
    text = number_text_of(n)
    # THEN the output parses as strict JSON (json.loads would raise on "+1", ".5", "1.", "01")
    parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    # AND it has exactly the same value
    assert parsed == Decimal(value)
    assert parsed == Decimal(n)


@pytest.mark.parametrize(
    "n",
    [
        "NaN",
        "nan",
        "-NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "",
        "-",
        "+",
        ".",
        "1e",
        "e5",
        "0x10",
        "1,000",
        "1_000",
        " 1",
        "1 ",
        "1.2.3",
        "abc",
        "\uff11",  # fullwidth digit one
        "\u0663",  # Arabic-Indic three
    ],
)
def test_non_numbers_are_rejected(n: str) -> None:
    # GIVEN an N that is not a finite decimal number in DynamoDB's form
    # WHEN converted THEN it is a ConversionError, never a guessed value
    with pytest.raises(ConversionError, match=r"^new_image\.a: N is not a number"):
        convert({"N": n})


def test_number_set_elements_are_checked() -> None:
    # GIVEN a number set with one element of 39 digits
    # WHEN converted THEN it is rejected, naming the attribute
    with pytest.raises(ConversionError, match=r"^new_image\.sizes: N has 39 significant digits"):
        item_text("new_image", {"sizes": {"NS": ["1", "1" * 39]}})


def test_non_json_number_form_inside_a_number_set_is_normalised() -> None:
    # GIVEN a number set with "+1" and ".5"
    # WHEN converted THEN the output is strict JSON with the same values
    assert convert({"NS": ["+1", ".5"]}) == [Decimal(1), Decimal("0.5")]


# ---------------------------------------------------------------- wrong Python types


@pytest.mark.parametrize(
    "attribute",
    [
        {"N": 1},
        {"N": 1.5},
        {"N": None},
        {"S": 5},
        {"S": None},
        {"BOOL": "true"},
        {"BOOL": 1},
        {"BOOL": None},
        {"NULL": False},
        {"NULL": "true"},
        {"NULL": 1},
        {"M": []},
        {"M": "x"},
        {"L": {}},
        {"L": "abc"},
        {"SS": "red"},
        {"SS": [1]},
        {"NS": [1]},
        {"NS": "1"},
        {"BS": "AAEC"},
        {"B": b"hello"},
        {"B": 5},
        {},  # no type tag
        {"S": "a", "N": "1"},  # two type tags
        "plain",  # not an object at all
        None,
        ["S", "a"],
    ],
)
def test_wrong_python_types_are_rejected(attribute: Any) -> None:
    # GIVEN an attribute whose value has the wrong JSON type for its tag (or no single tag)
    # WHEN converted THEN it is a ConversionError naming the attribute
    with pytest.raises(ConversionError, match=r"^new_image\.a: "):
        convert(attribute)


def test_image_that_is_not_an_object_is_rejected() -> None:
    # GIVEN a NewImage that is a list WHEN converted THEN the error names the field
    with pytest.raises(ConversionError, match=r"^new_image must be an object"):
        item_text("new_image", [{"S": "a"}])


# ---------------------------------------------------------------- paths


def test_unknown_type_tag_names_its_path() -> None:
    # GIVEN an unknown type tag deep inside a map and a list
    item = {
        "pk": {"S": "x"},
        "address": {"M": {"street": {"S": "Main"}, "geo": {"L": [{"N": "1.5"}, {"DATE": "2026-01-01"}]}}},
    }
    # WHEN converted
    with pytest.raises(ConversionError) as info:
        item_text("new_image", item)
    # THEN the message names the exact path and the reason
    assert str(info.value).startswith("new_image.address.geo[1]: unknown type tag")
    assert info.value.reason == str(info.value)
    assert "'DATE'" in str(info.value)


def test_path_through_nested_lists() -> None:
    # GIVEN a bad value in a list inside a list
    item = {"grid": {"L": [{"L": [{"N": "1"}]}, {"L": [{"N": "2"}, {"N": "x"}]}]}}
    # WHEN converted THEN the path shows both indexes
    with pytest.raises(ConversionError, match=r"^old_image\.grid\[1\]\[1\]: N is not a number"):
        item_text("old_image", item)


def test_path_names_the_field_given() -> None:
    # GIVEN a bad key attribute WHEN converted as "keys" THEN the path starts with "keys"
    with pytest.raises(ConversionError, match=r"^keys\.pk: unknown type tag"):
        item_text("keys", {"pk": {"X": "1"}})


def _nested(levels: int, container: str) -> dict[str, Any]:
    """``levels`` maps or lists (``container`` "M" or "L"), one inside the other, around a number."""
    value: dict[str, Any] = {"N": "1"}
    for _ in range(levels):
        value = {"M": {"x": value}} if container == "M" else {"L": [value]}
    return value


@pytest.mark.parametrize("container", ["M", "L"])
def test_nesting_as_deep_as_dynamodb_allows_converts(container: str) -> None:
    # GIVEN an attribute of 32 nested maps or lists (DynamoDB itself stores 31)
    # WHEN converted THEN every level is there
    text = item_text("new_image", {"a": _nested(32, container)})
    opening, closing = ('{"x":', "}") if container == "M" else ("[", "]")
    assert text == '{"a":' + opening * 32 + "1" + closing * 32 + "}"


@pytest.mark.parametrize("levels", [33, 5000])
@pytest.mark.parametrize("container", ["M", "L"])
def test_nesting_deeper_than_dynamodb_allows_is_rejected_before_recursing(
    levels: int, container: str
) -> None:
    # GIVEN an attribute nested past DynamoDB's 32 levels, up to far past the recursion limit
    # WHEN converted THEN it is rejected with the reason and the path down to the 33rd level
    with pytest.raises(ConversionError) as info:
        item_text("new_image", {"a": _nested(levels, container)})
    step = ".x" if container == "M" else "[0]"
    assert info.value.reason == "new_image.a" + step * 32 + ": nested deeper than DynamoDB's 32 levels"


# ---------------------------------------------------------------- strings and binary


@pytest.mark.parametrize(
    "text",
    [
        'say "hi"',
        "back\\slash",
        "\\u0041 is not A",
        "new\nline\ttab\rreturn",
        "".join(chr(c) for c in range(32)) + "\x7f",
        "Crème brûlée ☃ Zürich 東京",
        "emoji 🦆🏳️‍🌈",
        "\u2028\u2029",
        "</script>",
        "",
    ],
)
def test_strings_round_trip(text: str) -> None:
    # GIVEN a string (and an attribute name) with quotes, backslashes, control chars or unicode
    item = {text or "empty": {"S": text}, "set": {"SS": [text, "x"]}}
    # WHEN converted and parsed back
    parsed = json.loads(item_text("new_image", item))
    # THEN the strings are exactly the input
    assert parsed == {text or "empty": text, "set": [text, "x"]}


@pytest.mark.parametrize("b", ["not base64!", "AAE C", "AA==AA", "AAEC\n", "ÄÖÜ=", "AAE", "A", "A===", 42])
def test_invalid_base64_is_rejected(b: Any) -> None:
    # GIVEN a B value that is not valid base64
    # WHEN converted THEN it is a ConversionError naming the attribute
    with pytest.raises(ConversionError, match=r"^new_image\.a: B must be a base64 string"):
        convert({"B": b})


def test_invalid_base64_in_binary_set_is_rejected() -> None:
    # GIVEN a binary set with one bad element WHEN converted THEN it is rejected
    with pytest.raises(ConversionError, match=r"^new_image\.a: B must be a base64 string"):
        convert({"BS": ["AAEC", "%%%%"]})


# ---------------------------------------------------------------- property: equal to boto3


def _wire(attribute: Any) -> Any:
    """The attribute as boto3 sees it on the wire: binary as bytes, not base64 text."""
    ((tag, value),) = attribute.items()
    if tag == "B":
        return {"B": base64.b64decode(value)}
    if tag == "BS":
        return {"BS": [base64.b64decode(v) for v in value]}
    if tag == "M":
        return {"M": {k: _wire(v) for k, v in value.items()}}
    if tag == "L":
        return {"L": [_wire(v) for v in value]}
    return attribute


def _comparable(value: Any) -> Any:
    """A boto3 value as plain JSON would carry it: Binary as base64 text, the rest unchanged."""
    if isinstance(value, Binary):
        return base64.b64encode(value.value).decode()
    return value


def assert_same(ours: Any, theirs: Any, path: str) -> None:
    if isinstance(theirs, set):
        assert isinstance(ours, list), path
        assert len(ours) == len(theirs), path
        assert {_comparable(v) for v in ours} == {_comparable(v) for v in theirs}, path
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        assert list(ours) == list(theirs), path
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list), path
        assert len(ours) == len(theirs), path
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{path}[{index}]")
    elif isinstance(theirs, Binary):
        assert ours == base64.b64encode(theirs.value).decode(), path
    elif isinstance(theirs, Decimal):
        assert isinstance(ours, Decimal), path
        assert ours == theirs, path
    else:
        assert type(ours) is type(theirs), path
        assert ours == theirs, path


def _random_number(rng: random.Random) -> str:
    digits = str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(rng.randrange(38)))
    adjusted = rng.randrange(-130, 126)
    exponent = adjusted - (len(digits) - 1)
    sign = rng.choice(["", "-", "+"])
    form = rng.randrange(3)
    if form == 0:
        return f"{sign}{digits}E{exponent}"
    if form == 1 and -40 <= exponent <= 0:
        point = len(digits) + exponent
        if point > 0:
            return f"{sign}{digits[:point]}.{digits[point:]}"
        return f"{sign}.{'0' * -point}{digits}"
    return f"{sign}{digits[0]}.{digits[1:]}e{adjusted:+d}"


def _random_attribute(rng: random.Random, depth: int = 0) -> Any:
    choices = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (["M", "L"] if depth < 3 else [])
    tag = rng.choice(choices)
    if tag == "S":
        return {
            "S": "".join(
                chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0xD7FF)])) for _ in range(5)
            )
        }
    if tag == "N":
        return {"N": _random_number(rng)}
    if tag == "B":
        return {"B": base64.b64encode(rng.randbytes(rng.randrange(10))).decode()}
    if tag == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if tag == "NULL":
        return {"NULL": True}
    if tag == "SS":
        return {"SS": sorted({f"s{rng.randrange(100)}" for _ in range(3)})}
    if tag == "NS":
        return {"NS": sorted({str(rng.randrange(-1000, 1000)) for _ in range(3)} | {_random_number(rng)})}
    if tag == "BS":
        return {"BS": sorted({base64.b64encode(rng.randbytes(4)).decode() for _ in range(3)})}
    if tag == "M":
        return {"M": {f"k{i}": _random_attribute(rng, depth + 1) for i in range(rng.randrange(4))}}
    return {"L": [_random_attribute(rng, depth + 1) for _ in range(rng.randrange(4))]}


def _check_against_boto3(item: dict[str, Any]) -> None:
    ours = json.loads(item_text("new_image", item), parse_float=Decimal, parse_int=Decimal)
    deserializer = TypeDeserializer()
    theirs = {name: deserializer.deserialize(_wire(attribute)) for name, attribute in item.items()}
    assert_same(ours, theirs, "new_image")


@pytest.mark.parametrize("seed", range(200))
def test_realistic_items_equal_boto3_type_deserializer(seed: int) -> None:
    # GIVEN a realistic item with every type (38-digit numbers, sets, binary, nested maps/lists)
    rng = random.Random(seed)
    item = realistic_item(rng, f"customer#{seed}", target_bytes=rng.choice([256, 1024, 4096]))
    # WHEN converted and parsed with exact numbers
    # THEN every value equals what boto3's TypeDeserializer reads (sets as sets, binary as base64)
    _check_against_boto3(item)


@pytest.mark.parametrize("seed", range(200))
def test_random_items_equal_boto3_type_deserializer(seed: int) -> None:
    # GIVEN a random item: numbers of 1-38 digits over DynamoDB's whole exponent range in every
    # form ("+", ".5", E notation), random unicode strings, nested maps and lists
    rng = random.Random(10_000 + seed)
    item = {f"a{i}": _random_attribute(rng) for i in range(8)}
    # WHEN converted THEN it equals boto3's reading of the same item
    _check_against_boto3(item)
