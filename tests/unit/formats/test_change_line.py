"""Stream record -> change record line (docs/contracts.md, "The change record"), and reading lines back."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from changelake.exceptions import ConversionError, RecordRejected, UnsafeNameError
from changelake.formats.change_line import (
    ChangeLine,
    change_line_folder,
    event_time_text,
    order_key,
    parse_change_line,
    stream_record_folder,
    to_change_line,
)
from changelake_testing.stream_records import stream_arn, stream_record

CONTRACT_FIELDS = [
    "event_id",
    "event_name",
    "table",
    "event_time",
    "sequence_number",
    "keys",
    "new_image",
    "old_image",
    "size_bytes",
    "user_identity",
]
KEYS = {"pk": {"S": "customer#1"}, "sk": {"N": "7"}}


def record(**overrides: Any) -> dict[str, Any]:
    """A real-format INSERT stream record for table ``orders``."""
    base = stream_record(
        table="orders",
        event_name="INSERT",
        sequence_number=4200000000000000000001,
        created=1_795_867_200.125,
        keys=KEYS,
        new_image={**KEYS, "price": {"N": "12345678901234567890123456789012345678"}},
        event_id="evt-1",
    )
    base.update(overrides)
    return base


def parsed(change: ChangeLine) -> Any:
    return json.loads(change.line, parse_float=Decimal, parse_int=Decimal)


# ---------------------------------------------------------------- the change record


def test_change_line_has_design_fields_in_order() -> None:
    # GIVEN a real-format INSERT stream record
    # WHEN converted
    change = to_change_line(record())
    document = parsed(change)
    # THEN the line is one JSON object with exactly docs/contracts.md's fields, in its order
    assert list(document) == CONTRACT_FIELDS
    assert document == {
        "event_id": "evt-1",
        "event_name": "INSERT",
        "table": "orders",
        "event_time": "2026-11-28T12:00:00.125Z",
        "sequence_number": "4200000000000000000001",
        "keys": {"pk": "customer#1", "sk": Decimal(7)},
        "new_image": {
            "pk": "customer#1",
            "sk": Decimal(7),
            "price": Decimal("12345678901234567890123456789012345678"),
        },
        "old_image": None,
        "size_bytes": record()["dynamodb"]["SizeBytes"],
        "user_identity": None,
    }
    # AND it is a single line of bytes, no newline
    assert b"\n" not in change.line
    # AND the routing fields match the line
    assert change == ChangeLine(
        "orders", "evt-1", "2026-11-28T12:00:00.125Z", "4200000000000000000001", change.line
    )


def test_size_bytes_is_an_integer_and_sequence_number_a_string() -> None:
    # GIVEN a record WHEN converted THEN size_bytes is a JSON integer, sequence_number a string
    raw = json.loads(to_change_line(record()).line)
    assert type(raw["size_bytes"]) is int
    assert type(raw["sequence_number"]) is str


def test_numbers_in_line_are_verbatim() -> None:
    # GIVEN a 38-digit number in the new image
    # WHEN converted THEN its digits appear verbatim in the bytes (never rounded through float)
    assert b'"price":12345678901234567890123456789012345678' in to_change_line(record()).line


def test_modify_has_both_images() -> None:
    # GIVEN a MODIFY with new and old images
    rec = stream_record(
        table="orders",
        event_name="MODIFY",
        sequence_number=5,
        created=1.0,
        keys=KEYS,
        new_image={**KEYS, "v": {"N": "2"}},
        old_image={**KEYS, "v": {"N": "1"}},
    )
    # WHEN converted THEN both images are plain JSON
    document = parsed(to_change_line(rec))
    assert document["event_name"] == "MODIFY"
    assert document["new_image"]["v"] == 2
    assert document["old_image"]["v"] == 1


def test_remove_without_new_image_has_null_new_image() -> None:
    # GIVEN a REMOVE that carries only the old image
    rec = stream_record(
        table="orders", event_name="REMOVE", sequence_number=6, created=1.0, keys=KEYS, old_image=KEYS
    )
    assert "NewImage" not in rec["dynamodb"]
    # WHEN converted
    document = parsed(to_change_line(rec))
    # THEN new_image is null and old_image is kept
    assert document["event_name"] == "REMOVE"
    assert document["new_image"] is None
    assert document["old_image"] == {"pk": "customer#1", "sk": 7}
    assert document["user_identity"] is None


def test_ttl_delete_keeps_user_identity() -> None:
    # GIVEN a TTL delete (REMOVE with userIdentity set by the DynamoDB service)
    rec = stream_record(
        table="orders",
        event_name="REMOVE",
        sequence_number=7,
        created=1.0,
        keys=KEYS,
        old_image=KEYS,
        ttl_delete=True,
    )
    # WHEN converted THEN user_identity is the object as delivered
    document = parsed(to_change_line(rec))
    assert document["user_identity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def test_event_id_with_special_characters_is_json_escaped() -> None:
    # GIVEN an eventID with quotes and backslashes
    # WHEN converted THEN the line is valid JSON with the exact ID
    change = to_change_line(record(eventID='a"b\\c'))
    assert json.loads(change.line)["event_id"] == 'a"b\\c'
    assert change.event_id == 'a"b\\c'


# ---------------------------------------------------------------- event_time


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_795_867_200, "2026-11-28T12:00:00.000Z"),
        (1_795_867_200.0, "2026-11-28T12:00:00.000Z"),
        (1_795_867_200.125, "2026-11-28T12:00:00.125Z"),
        (1_795_867_200.5, "2026-11-28T12:00:00.500Z"),
        (1_795_867_200.0004, "2026-11-28T12:00:00.000Z"),  # nearest ms, down
        (1_795_867_200.0006, "2026-11-28T12:00:00.001Z"),  # nearest ms, up
        (1_795_867_200.9996, "2026-11-28T12:00:01.000Z"),  # rounds into the next second
        (1_795_870_799.999, "2026-11-28T12:59:59.999Z"),
        (951_782_400, "2000-02-29T00:00:00.000Z"),
        (253_402_300_799, "9999-12-31T23:59:59.000Z"),
    ],
)
def test_event_time_is_iso_utc_with_milliseconds(created: float, expected: str) -> None:
    # GIVEN an ApproximateCreationDateTime in epoch seconds (int or float, maybe fractional)
    # WHEN formatted
    text = event_time_text(created)
    # THEN it is ISO 8601 UTC ending in Z with exactly three millisecond digits
    assert text == expected
    assert (
        to_change_line(
            record(dynamodb={**record()["dynamodb"], "ApproximateCreationDateTime": created})
        ).event_time
        == expected
    )


@pytest.mark.parametrize(
    "created",
    [-1, -0.5, 253_402_300_800, 10**20, 1e306, 1e308, -1e308, float("inf"), float("-inf"), float("nan")],
)
def test_out_of_range_timestamps_are_rejected(created: float) -> None:
    # GIVEN a timestamp before 1970 or after year 9999 (or not finite)
    # WHEN formatted THEN it is a ConversionError (never an OverflowError that would crash the batch)
    with pytest.raises(ConversionError, match="ApproximateCreationDateTime"):
        event_time_text(created)


@pytest.mark.parametrize("created", ["1795867200", None, True, [1], {"s": 1}])
def test_non_numeric_timestamps_are_rejected(created: Any) -> None:
    # GIVEN a timestamp that is a string, null, a boolean or a container
    # WHEN a record with it is converted THEN it is a ConversionError naming the field
    rec = record()
    rec["dynamodb"]["ApproximateCreationDateTime"] = created
    with pytest.raises(ConversionError, match=r"dynamodb\.ApproximateCreationDateTime"):
        to_change_line(rec)


# ---------------------------------------------------------------- table


@pytest.mark.parametrize(
    ("table", "arn"),
    [
        ("orders", stream_arn("orders")),
        ("My_Table.v2-x", stream_arn("My_Table.v2-x")),
        ("abc", "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/abc/stream/2026-01-01T00:00:00.000"),
        ("t" * 255, stream_arn("t" * 255)),
    ],
)
def test_table_comes_from_event_source_arn(table: str, arn: str) -> None:
    # GIVEN a stream ARN WHEN converted THEN the table name is the ARN's table segment
    change = to_change_line(record(eventSourceARN=arn))
    assert change.table == table
    assert json.loads(change.line)["table"] == table


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:dynamodb:us-east-1:123456789012:table/../stream/x",
        "arn:aws:dynamodb:us-east-1:123456789012:table/a%2Fb/stream/x",
        "arn:aws:dynamodb:us-east-1:123456789012:table/ab/stream/x",  # too short for DynamoDB
        "arn:aws:dynamodb:us-east-1:123456789012:table/" + "t" * 256 + "/stream/x",
        "arn:aws:dynamodb:us-east-1:123456789012:table/or ders/stream/x",
        "arn:aws:dynamodb:us-east-1:123456789012:table//stream/x",
        "arn:aws:dynamodb:us-east-1:123456789012:table/...",
    ],
)
def test_unsafe_table_names_are_rejected(arn: str) -> None:
    # GIVEN an ARN whose table segment is not a safe path segment
    # WHEN converted THEN it is an UnsafeNameError, which is a RecordRejected (quarantine)
    with pytest.raises(UnsafeNameError) as info:
        to_change_line(record(eventSourceARN=arn))
    assert isinstance(info.value, RecordRejected)


@pytest.mark.parametrize(
    "arn",
    [
        "orders",
        "arn:aws:sqs:us-east-1:123456789012:queue",
        "arn:aws:dynamodb:us-east-1:123456789012:index/orders",
        "arn:aws:dynamodb:us-east-1:123456789012:table",
        "not an arn table/orders/stream/x",
    ],
)
def test_invalid_arns_are_rejected(arn: str) -> None:
    # GIVEN an eventSourceARN that is not a DynamoDB table stream ARN
    # WHEN converted THEN it is a ConversionError quoting the ARN
    with pytest.raises(ConversionError, match="eventSourceARN is not a DynamoDB table stream ARN"):
        to_change_line(record(eventSourceARN=arn))


@pytest.mark.parametrize("arn", [None, 5, "", ["arn"]])
def test_missing_or_non_string_arn_is_rejected(arn: Any) -> None:
    # GIVEN an eventSourceARN that is not a non-empty string WHEN converted THEN it is rejected
    with pytest.raises(ConversionError, match="eventSourceARN"):
        to_change_line(record(eventSourceARN=arn))


# ---------------------------------------------------------------- malformed fields


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    rec = copy.deepcopy(record())
    target = rec
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return rec


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("eventID",), "eventID is missing"),
        (("eventName",), "eventName is missing"),
        (("eventSourceARN",), "eventSourceARN is missing"),
        (("dynamodb",), "dynamodb is missing"),
        (("dynamodb", "ApproximateCreationDateTime"), "dynamodb.ApproximateCreationDateTime is missing"),
        (("dynamodb", "SequenceNumber"), "dynamodb.SequenceNumber is missing"),
        (("dynamodb", "SizeBytes"), "dynamodb.SizeBytes is missing"),
        (("dynamodb", "Keys"), "dynamodb.Keys is missing"),
    ],
)
def test_missing_fields_are_rejected_by_name(path: tuple[str, ...], message: str) -> None:
    # GIVEN a stream record without one required field
    # WHEN converted THEN the ConversionError names the field
    with pytest.raises(ConversionError) as info:
        to_change_line(_without(path))
    assert str(info.value) == message
    assert info.value.reason == message


def _with_stream(**fields: Any) -> dict[str, Any]:
    rec = copy.deepcopy(record())
    rec["dynamodb"].update(fields)
    return rec


@pytest.mark.parametrize(
    ("rec", "match"),
    [
        (record(eventID=""), "eventID must be a non-empty string"),
        (record(eventID=5), "eventID must be a non-empty string"),
        (record(eventID=None), "eventID must be a non-empty string"),
        (record(eventName="insert"), "eventName must be INSERT, MODIFY or REMOVE"),
        (record(eventName="UPSERT"), "eventName must be INSERT, MODIFY or REMOVE"),
        (record(eventName=None), "eventName must be INSERT, MODIFY or REMOVE"),
        (record(eventName=["INSERT"]), "eventName must be INSERT, MODIFY or REMOVE"),
        (record(eventName={"x": 1}), "eventName must be INSERT, MODIFY or REMOVE"),
        (record(dynamodb="x"), "dynamodb must be an object"),
        (record(dynamodb=[]), "dynamodb must be an object"),
        (_with_stream(SequenceNumber="12a"), "dynamodb.SequenceNumber must be a string of digits"),
        (_with_stream(SequenceNumber="-1"), "dynamodb.SequenceNumber must be a string of digits"),
        (_with_stream(SequenceNumber="1.5"), "dynamodb.SequenceNumber must be a string of digits"),
        (_with_stream(SequenceNumber=" 1"), "dynamodb.SequenceNumber must be a string of digits"),
        (_with_stream(SequenceNumber="\u0661\u0662"), "dynamodb.SequenceNumber must be a string of digits"),
        (_with_stream(SequenceNumber="1" * 65), "dynamodb.SequenceNumber must be a string of digits"),
        (_with_stream(SequenceNumber=""), "dynamodb.SequenceNumber must be a non-empty string"),
        (_with_stream(SequenceNumber=12), "dynamodb.SequenceNumber must be a non-empty string"),
        (_with_stream(SizeBytes=-1), "dynamodb.SizeBytes must be a non-negative integer"),
        (_with_stream(SizeBytes="10"), "dynamodb.SizeBytes must be a non-negative integer"),
        (_with_stream(SizeBytes=1.5), "dynamodb.SizeBytes must be a non-negative integer"),
        (_with_stream(SizeBytes=True), "dynamodb.SizeBytes must be a non-negative integer"),
        (_with_stream(Keys=[]), "keys must be an object"),
        (_with_stream(Keys={"pk": {"X": "1"}}), r"keys\.pk: unknown type tag"),
        (_with_stream(NewImage={"a": {"N": "1" * 39}}), r"new_image\.a: N has 39 significant digits"),
        (_with_stream(OldImage={"a": {"BOOL": "true"}}), r"old_image\.a: BOOL must be true or false"),
        (_with_stream(NewImage="x"), "new_image must be an object"),
        (record(userIdentity="dynamodb"), "userIdentity must be an object or absent"),
        (record(userIdentity=[1]), "userIdentity must be an object or absent"),
    ],
)
def test_malformed_fields_are_rejected_with_reason(rec: dict[str, Any], match: str) -> None:
    # GIVEN a stream record with one malformed field
    # WHEN converted THEN it is a ConversionError (RecordRejected) whose reason names the field
    with pytest.raises(ConversionError, match=match) as info:
        to_change_line(rec)
    assert isinstance(info.value, RecordRejected)


@pytest.mark.parametrize("rec", [None, [], "record", 5])
def test_record_that_is_not_an_object_is_rejected(rec: Any) -> None:
    # GIVEN a stream record that is not an object WHEN converted THEN it is a ConversionError
    with pytest.raises(ConversionError, match="a stream record must be an object"):
        to_change_line(rec)


@pytest.mark.parametrize(
    "place",
    [
        lambda r: r["dynamodb"]["NewImage"].update({"bad": {"S": "x\ud800y"}}),
        lambda r: r["dynamodb"]["NewImage"].update({"bad\udfff": {"S": "x"}}),
        lambda r: r["dynamodb"]["Keys"].update({"pk": {"SS": ["\ud83d"]}}),
        lambda r: r.update({"eventID": "id\ud800"}),
    ],
)
def test_lone_surrogate_is_rejected(place: Any) -> None:
    # GIVEN a string (value, attribute name, set element or event ID) with a lone surrogate
    rec = copy.deepcopy(record())
    place(rec)
    # WHEN converted THEN it is a ConversionError: the line could not be valid UTF-8
    with pytest.raises(ConversionError, match="lone surrogate"):
        to_change_line(rec)


def test_lone_surrogate_in_user_identity_is_kept_escaped() -> None:
    # GIVEN a userIdentity with a lone surrogate (it is written with JSON escapes)
    rec = record(userIdentity={"type": "Service", "principalId": "x\ud800"})
    # WHEN converted THEN the line is valid UTF-8 JSON and reads back to the same value
    document = json.loads(to_change_line(rec).line.decode("utf-8"))
    assert document["user_identity"]["principalId"] == "x\ud800"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_user_identity_that_strict_json_cannot_hold_is_rejected(value: float) -> None:
    # GIVEN a TTL delete whose userIdentity holds NaN or an infinity (json.dumps would write
    # NaN/Infinity, which DuckDB, Athena and Spark refuse)
    rec = record(userIdentity={"type": "Service", "principalId": "dynamodb.amazonaws.com", "x": value})
    # WHEN converted THEN it is a ConversionError: the record goes to quarantine, not to raw/
    with pytest.raises(ConversionError, match=r"^userIdentity is not strict JSON: Out of range float"):
        to_change_line(rec)


def _identity_nested(levels: int) -> dict[str, Any]:
    identity: dict[str, Any] = {"type": "Service"}
    for _ in range(levels - 1):
        identity = {"inner": identity}
    return identity


@pytest.mark.parametrize("levels", [512, 5000])
def test_user_identity_nested_past_what_readers_take_is_rejected(levels: int) -> None:
    # GIVEN a userIdentity nested 512 or 5,000 levels deep (a foreign or corrupted record): json.dumps
    # writes both on CPython 3.13 (3.11 only the first), and its line would nest one level deeper
    # than parse_change_line reads back
    identity = _identity_nested(levels)
    # WHEN converted THEN it is a ConversionError (its record goes to quarantine) on every interpreter
    with pytest.raises(
        ConversionError, match=r"^userIdentity is not strict JSON: nested deeper than 511 levels$"
    ):
        to_change_line(record(userIdentity=identity))


def test_user_identity_nested_as_deep_as_the_line_allows_reads_back() -> None:
    # GIVEN a userIdentity nested 511 levels deep
    identity = _identity_nested(511)
    # WHEN converted and the line read back THEN it is a change line holding that identity
    line = to_change_line(record(userIdentity=identity)).line
    assert parse_change_line(line).line == line
    assert json.loads(line)["user_identity"] == identity


def test_input_record_is_not_modified() -> None:
    # GIVEN a stream record WHEN converted THEN the input is left exactly as it was
    rec = record()
    before = copy.deepcopy(rec)
    to_change_line(rec)
    assert rec == before


# ---------------------------------------------------------------- parse_change_line


def test_parse_change_line_round_trips() -> None:
    # GIVEN a converted line
    change = to_change_line(record())
    # WHEN parsed back
    again = parse_change_line(change.line)
    # THEN the routing fields are equal and the bytes are the very same
    assert again == change
    assert again.line is change.line


def _line(**fields: Any) -> bytes:
    document = json.loads(to_change_line(record()).line)
    for name, value in fields.items():
        if value is _DROP:
            del document[name]
        else:
            document[name] = value
    return json.dumps(document).encode()


_DROP = object()


@pytest.mark.parametrize(
    ("line", "exception", "match"),
    [
        (b"not json", RecordRejected, "not a JSON change record"),
        (b"\xff\xfe", RecordRejected, "not a JSON change record"),
        (b"", RecordRejected, "not a JSON change record"),
        (b"[" * 5000 + b"]" * 5000, RecordRejected, "^not a JSON change record: nested deeper than 512"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, RecordRejected, "^not a JSON change record: nested deeper"),
        (b"[1, 2]", RecordRejected, "must be a JSON object"),
        # Not strict JSON (json.loads alone takes them; DuckDB, Athena and Spark refuse them)
        (_line(user_identity={"x": float("nan")}), RecordRejected, "^not a JSON change record: NaN is not"),
        (_line(new_image={"a": float("inf")}), RecordRejected, "^not a JSON change record: Infinity is not"),
        (_line(size_bytes=float("-inf")), RecordRejected, "^not a JSON change record: -Infinity is not"),
        (b"\xef\xbb\xbf" + _line(), RecordRejected, "^not a JSON change record$"),  # a UTF-8 BOM
        (_line().replace(b'"evt-1"', b'"\xed\xa0\x80"'), RecordRejected, "^not a JSON change record$"),
        (_line().decode().encode("utf-16-le"), RecordRejected, "^not a JSON change record$"),
        (b'"text"', RecordRejected, "must be a JSON object"),
        (_line(event_id=_DROP), RecordRejected, "no event_id"),
        (_line(event_id=""), RecordRejected, "no event_id"),
        (_line(event_id=5), RecordRejected, "no event_id"),
        (_line(event_time=_DROP), RecordRejected, "no valid event_time"),
        (_line(event_time="2026-11-28T12:00:00Z"), RecordRejected, "no valid event_time"),
        (_line(event_time="2026-11-28 08:00:00.000Z"), RecordRejected, "no valid event_time"),
        (_line(event_time="2026-11-28T12:00:00.000"), RecordRejected, "no valid event_time"),
        (_line(event_time="2026-02-30T08:00:00.000Z"), RecordRejected, "no valid event_time"),
        (_line(event_time="2026-11-28T24:00:00.000Z"), RecordRejected, "no valid event_time"),
        (_line(event_time="2026-13-01T00:00:00.000Z"), RecordRejected, "no valid event_time"),
        (_line(event_time="2026-11-28T12:60:00.000Z"), RecordRejected, "no valid event_time"),
        (_line(event_time="\u0662026-11-28T12:00:00.000Z"), RecordRejected, "no valid event_time"),
        (_line(event_time=1795867200), RecordRejected, "no valid event_time"),
        (_line(sequence_number=_DROP), RecordRejected, "no valid sequence_number"),
        (_line(sequence_number=42), RecordRejected, "no valid sequence_number"),
        (_line(sequence_number="4x"), RecordRejected, "no valid sequence_number"),
        (_line(table=_DROP), UnsafeNameError, "table name is not a safe path segment"),
        (_line(table="../etc"), UnsafeNameError, "table name is not a safe path segment"),
        (_line(table="a/b/c"), UnsafeNameError, "table name is not a safe path segment"),
    ],
)
def test_parse_change_line_rejections(line: bytes, exception: type[Exception], match: str) -> None:
    # GIVEN a line that is not a valid change record
    # WHEN parsed THEN it is a RecordRejected (so the aggregator quarantines it) with the reason
    with pytest.raises(exception, match=match) as info:
        parse_change_line(line)
    assert isinstance(info.value, RecordRejected)


# ---------------------------------------------------------------- order_key


def _change(event_time: str, sequence_number: str, event_id: str = "e") -> ChangeLine:
    return ChangeLine("orders", event_id, event_time, sequence_number, b"")


def test_order_key_compares_sequence_numbers_as_numbers() -> None:
    # GIVEN two changes in the same millisecond with sequence numbers "9" and "10"
    nine, ten = _change("2026-01-01T00:00:00.000Z", "9"), _change("2026-01-01T00:00:00.000Z", "10")
    # WHEN ordered THEN 9 comes before 10 (as strings "10" < "9")
    assert sorted([ten, nine], key=order_key) == [nine, ten]
    assert order_key(nine) < order_key(ten)


def test_order_key_puts_event_time_first() -> None:
    # GIVEN an earlier change with a larger sequence number
    early = _change("2026-01-01T00:00:00.000Z", "900")
    late = _change("2026-01-01T00:00:00.001Z", "1")
    # WHEN ordered THEN event_time decides
    assert sorted([late, early], key=order_key) == [early, late]


def test_order_key_handles_long_sequence_numbers() -> None:
    # GIVEN sequence numbers longer than 64-bit integers
    a = _change("2026-01-01T00:00:00.000Z", "99999999999999999999999")
    b = _change("2026-01-01T00:00:00.000Z", "100000000000000000000000")
    # WHEN ordered THEN they compare numerically
    assert sorted([b, a], key=order_key) == [a, b]


# ---------------------------------------------------------------- where a rejected record is filed


@pytest.mark.parametrize(
    ("rejected", "folder"),
    [
        (record(), ("orders", date(2026, 11, 28))),
        (record(eventSourceARN="arn:aws:sqs:us-east-1:1:q"), (None, date(2026, 11, 28))),
        (
            {"eventSourceARN": stream_arn("orders"), "dynamodb": {"ApproximateCreationDateTime": "soon"}},
            ("orders", None),
        ),
        (
            {"eventSourceARN": stream_arn("orders"), "dynamodb": {"ApproximateCreationDateTime": 1e300}},
            ("orders", None),
        ),
        ({"eventSourceARN": 7, "dynamodb": []}, (None, None)),
        (["not", "a", "record"], (None, None)),
    ],
)
def test_a_rejected_stream_record_is_filed_by_what_is_readable(
    rejected: object, folder: tuple[str | None, date | None]
) -> None:
    # GIVEN a stream record that was rejected WHEN its folder is read THEN what can be read is used
    assert stream_record_folder(rejected) == folder


@pytest.mark.parametrize(
    ("line", "folder"),
    [
        (
            b'{"table":"orders","event_time":"2026-11-22T12:00:00.000Z","x":NaN}',
            ("orders", date(2026, 11, 22)),
        ),
        (b'{"table":"../etc","event_time":"2026-11-22T12:00:00.000Z"}', (None, date(2026, 11, 22))),
        (b'{"table":"orders","event_time":"2026-02-30T12:00:00.000Z"}', ("orders", None)),
        (b'{"table":"orders","event_time":20261122}', ("orders", None)),
        (b"[1, 2]", (None, None)),
        (b"\xff not JSON", (None, None)),
    ],
)
def test_a_rejected_change_line_is_filed_by_what_is_readable(
    line: bytes, folder: tuple[str | None, date | None]
) -> None:
    assert change_line_folder(line) == folder
