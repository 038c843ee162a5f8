"""DynamoDB JSON to plain JSON text, keeping every number exactly.

Numbers never pass through ``float`` or ``Decimal`` on the fast path: a DynamoDB ``N`` string that
is already a JSON number is written verbatim, so all 38 significant digits survive. Converting
straight to text (rather than to Python objects and then ``json.dumps``) is also what makes this
several times faster than boto3's ``TypeDeserializer``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from changelake.exceptions import ConversionError

# The C string encoder behind json.dumps(ensure_ascii=False); one call per string, no dict walk.
_encode_string: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")
_BASE64_MATCH = _BASE64.match
# Every decimal form DynamoDB may hand over ("+1", ".5", "1.", "01"); Decimal alone would also take
# " 1", "1_000" and non-ASCII digits, which are not numbers DynamoDB produces.
_NUMBER_FORM = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")

#: DynamoDB's number bounds: 38 significant digits, magnitude 1E-130 to 9.9...9E+125.
MAX_SIGNIFICANT_DIGITS = 38
_MIN_ADJUSTED_EXPONENT = -130
_MAX_ADJUSTED_EXPONENT = 125
#: Maps and lists nested deeper than this under an item cannot come from DynamoDB, which refuses
#: items past 32 levels (it stores 31 maps wrapped around a scalar; one level of slack here, so
#: nothing it stores is ever refused). Checked before descending: the converters recurse once (fast
#: path) or three times (checked path) per level, so an unbounded input would exhaust the stack.
MAX_NESTING_LEVELS = 32
_TOO_DEEP = f"nested deeper than DynamoDB's {MAX_NESTING_LEVELS} levels"


class _BadValue(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def encode_string(value: str) -> str:
    """``value`` as a JSON string literal (UTF-8 characters kept as they are)."""
    return str(_encode_string(value))


def number_text(value: object) -> str:
    """The JSON text of a DynamoDB ``N`` value, with exactly the same value."""
    if type(value) is not str:
        raise _BadValue(f"N must be a string, got {type(value).__name__}")
    # Short plain decimals cannot exceed 38 digits nor DynamoDB's magnitude range.
    short_plain = len(value) <= MAX_SIGNIFICANT_DIGITS and "e" not in value and "E" not in value
    if short_plain and _JSON_NUMBER.match(value) is not None:
        return value
    return _checked_number(value)


def _checked_number(value: str) -> str:
    if _NUMBER_FORM.match(value) is None:
        raise _BadValue(f"N is not a number: {value[:64]!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _BadValue(f"N is not a number: {value[:64]!r}") from None
    if number:
        # Count digits without normalize(): it rounds to the context's 28 digits, which would let
        # 39+ significant digits through. as_tuple() has no leading zeros; strip trailing ones.
        significant = len("".join(map(str, number.as_tuple().digits)).rstrip("0"))
        if significant > MAX_SIGNIFICANT_DIGITS:
            raise _BadValue(
                f"N has {significant} significant digits, more than DynamoDB's {MAX_SIGNIFICANT_DIGITS}"
            )
        if not _MIN_ADJUSTED_EXPONENT <= number.adjusted() <= _MAX_ADJUSTED_EXPONENT:
            raise _BadValue(f"N is outside DynamoDB's range: {value[:64]!r}")
    if _JSON_NUMBER.match(value) is not None:
        return value
    # Forms JSON does not allow ("+1", ".5", "1.") get Decimal's canonical text, which it does.
    return str(number)


def _string(value: object) -> str:
    if type(value) is not str:
        raise _BadValue(f"S must be a string, got {type(value).__name__}")
    return str(_encode_string(value))


def _binary(value: object) -> str:
    # Base64 comes in groups of four characters; "AAE" has the alphabet but does not decode.
    if type(value) is not str or len(value) % 4 or _BASE64.match(value) is None:
        raise _BadValue("B must be a base64 string")
    return '"' + value + '"'


def _boolean(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise _BadValue(f"BOOL must be true or false, got {type(value).__name__}")


def _null(value: object) -> str:
    if value is not True:
        raise _BadValue("NULL must be true")
    return "null"


def _map(value: object, depth: int) -> str:
    if type(value) is not dict:
        raise _BadValue(f"M must be an object, got {type(value).__name__}")
    if depth > MAX_NESTING_LEVELS:
        raise _BadValue(_TOO_DEEP)
    return map_text(value, depth)


def _list(value: object, depth: int) -> str:
    if type(value) is not list:
        raise _BadValue(f"L must be an array, got {type(value).__name__}")
    if depth > MAX_NESTING_LEVELS:
        raise _BadValue(_TOO_DEEP)
    parts = []
    for index, item in enumerate(value):
        try:
            parts.append(attribute_text(item, depth))
        except _BadValue as exc:
            exc.path.append(f"[{index}]")
            raise
    return "[" + ",".join(parts) + "]"


def _set_of(element: Any, tag: str) -> Any:
    def convert(value: object) -> str:
        if type(value) is not list:
            raise _BadValue(f"{tag} must be an array, got {type(value).__name__}")
        return "[" + ",".join([element(item) for item in value]) + "]"

    return convert


_CONVERTERS: dict[str, Any] = {
    "S": _string,
    "N": number_text,
    "BOOL": _boolean,
    "NULL": _null,
    "B": _binary,
    "SS": _set_of(_string, "SS"),
    "NS": _set_of(number_text, "NS"),
    "BS": _set_of(_binary, "BS"),
}


def attribute_text(attribute: object, depth: int = 0) -> str:
    """One DynamoDB attribute value (``{"N": "1"}``), inside ``depth`` maps and lists, as plain JSON text."""
    if type(attribute) is not dict or len(attribute) != 1:
        raise _BadValue("an attribute value must be an object with exactly one type tag")
    for tag, value in attribute.items():
        if tag == "M":
            return _map(value, depth + 1)
        if tag == "L":
            return _list(value, depth + 1)
        converter = _CONVERTERS.get(tag)
        if converter is None:
            raise _BadValue(f"unknown type tag {str(tag)[:32]!r}")
        return str(converter(value))
    raise AssertionError("unreachable")  # pragma: no cover - the length check above


def map_text(attributes: dict[str, Any], depth: int = 0) -> str:
    """A map of attribute values (an item, its keys, or an ``M`` ``depth`` levels down) as a JSON object."""
    parts = []
    for name, attribute in attributes.items():
        try:
            parts.append(_encode_string(name) + ":" + attribute_text(attribute, depth))
        except _BadValue as exc:
            exc.path.append(name)
            raise
    return "{" + ",".join(parts) + "}"


class _Unusual(Exception):
    """The fast path met something it does not handle; the checked path decides."""


_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?\Z").match
#: A plain decimal this long has at most 126 integer digits or 122 leading fraction zeros, so its
#: magnitude is inside DynamoDB's range whatever its digits; only their count needs checking.
_PLAIN_IN_RANGE_CHARS = 126
#: ``"name":`` texts of attribute names seen before (names repeat across items; bounded).
_NAME_TEXT: dict[str, str] = {}
_NAME_TEXT_LIMIT = 4096


def _fast_number(value: str) -> str:
    """``number_text`` for a plain JSON decimal of any length: no ``Decimal`` unless it is unusual.

    A 39-character 38-digit number ("1234567890123456789012345678.9012345678", "-0.000..1") is
    common and would otherwise take the checked path's ``Decimal`` and ``as_tuple`` walk.
    """
    if _PLAIN_NUMBER(value) is not None:
        if len(value) <= MAX_SIGNIFICANT_DIGITS:
            return value
        # Significant digits: drop the sign, the point, leading and trailing zeros.
        if (
            len(value) <= _PLAIN_IN_RANGE_CHARS
            and len(value.replace(".", "").lstrip("-0").rstrip("0")) <= MAX_SIGNIFICANT_DIGITS
        ):
            return value
    return _checked_number(value)


def _fast_map(attributes: dict[str, Any], depth: int = 0) -> str:  # noqa: PLR0912 - one branch per tag
    """``map_text`` for well-formed input ``depth`` levels down, in one frame per nesting level.

    Produces exactly ``map_text``'s text; raises ``_Unusual`` (or ``ValueError``/``TypeError``
    from unpacking) for anything else, nesting past ``MAX_NESTING_LEVELS`` included, and
    ``item_text`` then runs the checked path, which returns the same text or the precise error.
    """
    if depth > MAX_NESTING_LEVELS:
        raise _Unusual
    parts: list[str] = []
    append = parts.append
    for name, attribute in attributes.items():
        key = _NAME_TEXT.get(name)
        if key is None:
            if type(name) is not str:
                raise _Unusual
            key = _encode_string(name) + ":"
            if len(_NAME_TEXT) < _NAME_TEXT_LIMIT:
                _NAME_TEXT[name] = key
        ((tag, value),) = attribute.items()
        kind = type(value)
        if tag == "S" and kind is str:
            append(key + _encode_string(value))
        elif tag == "N" and kind is str:
            if len(value) <= MAX_SIGNIFICANT_DIGITS and _PLAIN_NUMBER(value) is not None:
                append(key + value)
            else:
                append(key + _fast_number(value))
        elif tag == "BOOL" and kind is bool:
            append(key + ("true" if value else "false"))
        elif tag == "L" and kind is list:
            append(key + _fast_list(value, depth + 1))
        elif tag == "M" and kind is dict:
            append(key + _fast_map(value, depth + 1))
        elif tag == "NULL" and value is True:
            append(key + "null")
        elif tag == "B" and kind is str and not len(value) % 4 and _BASE64_MATCH(value) is not None:
            append(key + '"' + value + '"')
        else:
            append(key + _fast_other(tag, value))
    return "{" + ",".join(parts) + "}"


def _fast_list(values: list[Any], depth: int) -> str:
    if depth > MAX_NESTING_LEVELS:
        raise _Unusual
    parts: list[str] = []
    append = parts.append
    for attribute in values:
        ((tag, value),) = attribute.items()
        kind = type(value)
        if tag == "S" and kind is str:
            append(_encode_string(value))
        elif tag == "N" and kind is str:
            if len(value) <= MAX_SIGNIFICANT_DIGITS and _PLAIN_NUMBER(value) is not None:
                append(value)
            else:
                append(_fast_number(value))
        elif tag == "M" and kind is dict:
            append(_fast_map(value, depth + 1))
        elif tag == "L" and kind is list:
            append(_fast_list(value, depth + 1))
        else:
            append(attribute_text(attribute, depth))
    return "[" + ",".join(parts) + "]"


def _fast_other(tag: str, value: object) -> str:
    """Sets (and anything unusual, through the checked ``attribute_text``)."""
    if type(value) is list:
        if tag == "SS":
            for item in value:
                if type(item) is not str:
                    raise _Unusual
            return "[" + ",".join([_encode_string(item) for item in value]) + "]"
        if tag == "NS":
            for item in value:
                if type(item) is not str:
                    raise _Unusual
            return "[" + ",".join([_fast_number(item) for item in value]) + "]"
        if tag == "BS":
            for item in value:
                if type(item) is not str or len(item) % 4 or _BASE64_MATCH(item) is None:
                    raise _Unusual
            return '["' + '","'.join(value) + '"]' if value else "[]"
    return attribute_text({tag: value})


def item_text(field: str, attributes: object) -> str:
    """``attributes`` (an image or keys) as plain JSON; a ``ConversionError`` names the bad path."""
    if type(attributes) is not dict:
        raise ConversionError(f"{field} must be an object of attribute values")
    try:
        return _fast_map(attributes)
    except (_Unusual, _BadValue, ValueError, TypeError, AttributeError):
        pass  # the checked path below gives the same text, or the error with its path
    try:
        return map_text(attributes)
    except _BadValue as exc:
        path = field
        for part in reversed(exc.path):
            path += part if part.startswith("[") else "." + part
        raise ConversionError(f"{path}: {exc.reason}") from None
