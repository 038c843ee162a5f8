"""Untrusted JSON: every decoder failure becomes a rejection of that input, nesting is checked first."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from changelake.exceptions import EnvelopeError, RecordRejected
from changelake.formats.strict_json import (
    MAX_NESTING,
    dumps_strict,
    loads_checked,
    loads_document,
    nesting_exceeds,
    rejecting,
    value_nesting_exceeds,
)


def _raise(error: BaseException) -> None:
    raise error


@pytest.mark.parametrize(
    "error",
    [
        json.JSONDecodeError("bad", "x", 0),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        ValueError("bad"),
        zlib.error("bad"),
        RecursionError("maximum recursion depth exceeded"),
    ],
    ids=["json", "unicode", "value", "zlib", "recursion"],
)
def test_every_decoder_failure_becomes_the_given_rejection(error: Exception) -> None:
    # GIVEN a decoder that fails on its input
    # WHEN it runs inside rejecting() THEN the failure is a rejection of that input, with the reason
    with (
        pytest.raises(EnvelopeError, match=r"^body is not JSON") as info,
        rejecting("body is not JSON", EnvelopeError),
    ):
        _raise(error)
    assert isinstance(info.value, RecordRejected)


def test_a_recursion_says_so_and_detail_adds_the_decoders_message() -> None:
    # GIVEN a recursion and a ValueError with a message
    # WHEN rejected THEN the reasons say what happened
    with pytest.raises(RecordRejected, match=r"^r: nested deeper than the recursion limit$"), rejecting("r"):
        _raise(RecursionError("maximum recursion depth exceeded"))
    with pytest.raises(RecordRejected, match=r"^r: no digits$"), rejecting("r", detail=True):
        _raise(ValueError("no digits"))


@pytest.mark.parametrize("error", [MemoryError(), KeyError("k"), OSError("disk")])
def test_what_is_not_about_the_input_is_not_a_rejection(error: Exception) -> None:
    # GIVEN a failure that says nothing about the input (out of memory, a bug, the system)
    # WHEN raised inside rejecting() THEN it passes through: the delivery fails and is retried
    with pytest.raises(type(error)), rejecting("r"):
        _raise(error)


@pytest.mark.parametrize(
    ("text", "limit", "exceeds"),
    [
        (b"[" * 3 + b"]" * 3, 3, False),
        (b"[" * 4 + b"]" * 4, 3, True),
        (b'{"a":{"b":{"c":[]}}}', 3, True),
        (b'{"a":{"b":{"c":1}}}', 3, False),
        (b"[1,[2],[3],[4],[5]]", 3, False),  # many brackets, shallow
        (b'["[[[[[[", {"k": "{{{{\\"[[["}]', 3, False),  # brackets and escaped quotes inside strings
        (b"[[[[", 3, True),  # not JSON: an upper bound of how deep a parser would go
    ],
)
def test_nesting_is_measured_outside_strings(text: bytes, limit: int, exceeds: bool) -> None:
    # GIVEN JSON text WHEN its nesting is measured THEN only brackets outside strings count
    assert nesting_exceeds(text, limit) is exceeds


def test_loads_checked_reads_up_to_max_nesting_and_refuses_deeper() -> None:
    # GIVEN documents nested exactly MAX_NESTING levels, and one more
    at_limit = b"[" * MAX_NESTING + b"]" * MAX_NESTING
    past_limit = b"[" + at_limit + b"]"
    # WHEN parsed THEN the first is read, the second refused before json.loads recurses
    assert loads_checked(at_limit, "r") is not None
    with pytest.raises(RecordRejected, match=rf"^r: nested deeper than {MAX_NESTING} levels$"):
        loads_checked(past_limit, "r")


def test_loads_checked_honours_a_smaller_limit_and_takes_text() -> None:
    # GIVEN a document three levels deep, as text with a lone surrogate escape orjson would refuse
    text = '{"a": {"b": ["\\ud800"]}}'
    # WHEN parsed with a limit of 3, then 2 THEN it is read, then refused
    assert loads_checked(text, "r", max_nesting=3) == {"a": {"b": ["\ud800"]}}
    with pytest.raises(RecordRejected, match="nested deeper than 2 levels"):
        loads_checked(text, "r", max_nesting=2)


@pytest.mark.parametrize("text", ["{", "[" * 5000 + "]" * 5000, "\ufeff{}"])
def test_loads_document_refuses_what_is_not_strict_json_whatever_its_depth(text: Any) -> None:
    # GIVEN text that is not strict JSON (truncated, nested past any limit, with a BOM)
    # WHEN parsed as a document THEN it is a rejection with the reason given
    with pytest.raises(RecordRejected, match=r"^not JSON$"):
        loads_document(text, "not JSON")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a": NaN}', "r: NaN is not strict JSON"),
        (b"[Infinity]", "r: Infinity is not strict JSON"),
        (b'{"a": [-Infinity]}', "r: -Infinity is not strict JSON"),
        (b'\xef\xbb\xbf{"a": 1}', "r"),  # a UTF-8 BOM
        (b'{"a": "\xed\xa0\x80"}', "r"),  # an encoded surrogate: not UTF-8
        ('{"a": 1}'.encode("utf-16-le"), "r"),
        ('{"a": 1}'.encode("utf-32"), "r"),
    ],
)
def test_loads_checked_refuses_what_strict_json_does_not_allow(data: bytes, reason: str) -> None:
    # GIVEN text json.loads alone would read, but DuckDB, Athena and Spark would refuse
    # WHEN parsed strictly THEN it is a rejection naming what is wrong
    with pytest.raises(RecordRejected) as info:
        loads_checked(data, "r")
    assert info.value.reason == reason


def test_loads_checked_not_strict_reads_fields_out_of_rejected_text() -> None:
    # GIVEN a rejected line with NaN and a BOM WHEN read not strictly THEN its fields are readable
    document = loads_checked(b'\xef\xbb\xbf{"table": "orders", "n": NaN}', "r", strict=False)
    assert document["table"] == "orders"


def test_dumps_strict_writes_compact_json_and_refuses_what_strict_json_cannot_hold() -> None:
    # GIVEN a value as json.dumps would write it, and values holding NaN or an infinity
    value = {"type": "Service", "principalId": "dynamodb.amazonaws.com", "n": [1.5, "é"]}
    # WHEN written THEN the text is json.dumps' compact text, and the others are rejected
    assert dumps_strict(value, "r") == json.dumps(value, separators=(",", ":"))
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(EnvelopeError, match=r"^r: Out of range float values"):
            dumps_strict({"n": bad}, "r", EnvelopeError)


@pytest.mark.parametrize(
    ("value", "limit", "exceeds"),
    [
        ([[[]]], 3, False),
        ([[[[]]]], 3, True),
        ({"a": {"b": {"c": []}}}, 3, True),
        ({"a": {"b": {"c": 1}}}, 3, False),
        ([1, [2], (3,), {"k": "[[[["}], 2, False),  # brackets inside strings are not nesting
        ("[[[[", 0, False),  # a scalar nests nothing
    ],
)
def test_a_values_nesting_is_measured_as_its_json_text_would_be(
    value: Any, limit: int, exceeds: bool
) -> None:
    # GIVEN a value WHEN its nesting is measured THEN it agrees with the brackets of its JSON text
    assert value_nesting_exceeds(value, limit) is exceeds
    assert nesting_exceeds(json.dumps(value).encode(), limit) is exceeds


@pytest.mark.parametrize("levels", [MAX_NESTING + 1, 600, 5000])
def test_dumps_strict_refuses_nesting_past_the_readers_limit_whatever_the_interpreter(levels: int) -> None:
    # GIVEN values nested past MAX_NESTING: json.dumps writes 600 levels on CPython 3.11 and 5,000 on
    # 3.13 (its recursion limit is the interpreter's), and loads_checked reads neither back
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    # WHEN written THEN each is refused before json.dumps runs, with the same reason everywhere
    with pytest.raises(RecordRejected, match=rf"^r: nested deeper than {MAX_NESTING} levels$"):
        dumps_strict(value, "r")


def test_dumps_strict_writes_up_to_its_limit_and_what_it_writes_reads_back() -> None:
    # GIVEN a value nested exactly MAX_NESTING levels, and a smaller limit
    value: Any = []
    for _ in range(MAX_NESTING - 1):
        value = [value]
    # WHEN written THEN it is written and reads back, and the smaller limit refuses it
    assert loads_checked(dumps_strict(value, "r"), "r") == value
    with pytest.raises(RecordRejected, match=r"^r: nested deeper than 10 levels$"):
        dumps_strict(value, "r", max_nesting=10)
