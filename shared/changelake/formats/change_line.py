"""The change record of docs/contracts.md, built from one DynamoDB stream record as one JSON line.

Pure functions. The line is the unit everything downstream stores: the consumer builds it once,
and the aggregator and compaction move its bytes without re-encoding, so numbers stay exact.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from changelake.exceptions import ConversionError, RecordRejected, UnsafeNameError
from changelake.formats.dynamodb_json import encode_string, item_text
from changelake.formats.layout import check_table_name
from changelake.formats.strict_json import MAX_NESTING, dumps_strict, loads_checked

#: Parses first, for speed; json.loads decides whatever it refuses (tests swap it to compare verdicts).
_fast_loads: Callable[[bytes], Any] | None = orjson.loads

EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})
_SEQUENCE_NUMBER = re.compile(r"[0-9]{1,64}\Z")
_EVENT_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z")
#: Years a stream timestamp may fall in; anything else is a corrupt record, not a change.
_MIN_EPOCH_SECONDS = 0
_MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
#: LINE SEPARATOR and PARAGRAPH SEPARATOR: valid inside JSON strings, but line breaks to
#: str.splitlines (and JavaScript before ES2019), so a line holding one raw reads as two records.
_LINE_BREAKS_IN_STRINGS = (("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


class ChangeLine(NamedTuple):
    """One change record as a JSON line (no newline) with the fields routing needs."""

    table: str
    event_id: str
    event_time: str
    sequence_number: str
    line: bytes


@lru_cache(maxsize=256)
def table_from_arn(arn: str) -> str:
    """The table name in ``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>``."""
    resource = arn.split(":", 5)[-1] if arn.startswith("arn:") else ""
    parts = resource.split("/")
    if len(parts) < 2 or parts[0] != "table":
        raise ConversionError(f"eventSourceARN is not a DynamoDB table stream ARN: {arn[:200]!r}")
    return check_table_name(parts[1])


@lru_cache(maxsize=4096)
def _second_text(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


def event_time_text(approximate_creation: object) -> str:
    """``ApproximateCreationDateTime`` (epoch seconds, maybe fractional) as ISO 8601 UTC with ms."""
    if type(approximate_creation) is int:
        epoch_ms = approximate_creation * 1000
    elif type(approximate_creation) is float and math.isfinite(approximate_creation):
        if not _MIN_EPOCH_SECONDS - 1 <= approximate_creation <= _MAX_EPOCH_SECONDS + 1:
            # Checked before scaling: a huge float times 1000 is infinity, which round() refuses.
            raise ConversionError(
                f"dynamodb.ApproximateCreationDateTime is out of range: {approximate_creation}"
            )
        epoch_ms = round(approximate_creation * 1000)  # nearest millisecond
    else:
        raise ConversionError("dynamodb.ApproximateCreationDateTime must be a number of epoch seconds")
    second, millisecond = divmod(epoch_ms, 1000)
    if not _MIN_EPOCH_SECONDS <= second <= _MAX_EPOCH_SECONDS:
        raise ConversionError(f"dynamodb.ApproximateCreationDateTime is out of range: {approximate_creation}")
    return f"{_second_text(second)}.{millisecond:03d}Z"


def _required(mapping: dict[str, Any], field: str, path: str) -> Any:
    try:
        return mapping[field]
    except KeyError:
        raise ConversionError(f"{path}{field} is missing") from None


def _string_field(mapping: dict[str, Any], field: str, path: str = "") -> str:
    value = _required(mapping, field, path)
    if type(value) is not str or not value:
        raise ConversionError(f"{path}{field} must be a non-empty string")
    return value


def to_change_line(record: object) -> ChangeLine:
    """Convert one stream record (as Lambda delivers it) to a change record line.

    Raises ``RecordRejected`` (with the reason) when the record cannot be converted; nothing is
    guessed or dropped.
    """
    if type(record) is not dict:
        raise ConversionError("a stream record must be an object")
    event_id = _string_field(record, "eventID")
    event_name = _required(record, "eventName", "")
    if type(event_name) is not str or event_name not in EVENT_NAMES:
        raise ConversionError(f"eventName must be INSERT, MODIFY or REMOVE, got {str(event_name)[:32]!r}")
    table = table_from_arn(_string_field(record, "eventSourceARN"))
    stream = _required(record, "dynamodb", "")
    if type(stream) is not dict:
        raise ConversionError("dynamodb must be an object")
    event_time = event_time_text(_required(stream, "ApproximateCreationDateTime", "dynamodb."))
    sequence_number = _string_field(stream, "SequenceNumber", "dynamodb.")
    if _SEQUENCE_NUMBER.match(sequence_number) is None:
        raise ConversionError("dynamodb.SequenceNumber must be a string of digits")
    size_bytes = _required(stream, "SizeBytes", "dynamodb.")
    if type(size_bytes) is not int or size_bytes < 0:
        raise ConversionError("dynamodb.SizeBytes must be a non-negative integer")
    keys = item_text("keys", _required(stream, "Keys", "dynamodb."))
    new_image = stream.get("NewImage")
    old_image = stream.get("OldImage")
    user_identity = record.get("userIdentity")
    if user_identity is not None and type(user_identity) is not dict:
        raise ConversionError("userIdentity must be an object or absent")
    new_text = "null" if new_image is None else item_text("new_image", new_image)
    old_text = "null" if old_image is None else item_text("old_image", old_image)
    identity = "null"
    if user_identity is not None:
        # One level less than readers take (MAX_NESTING, parse_change_line): the line holds it.
        identity = dumps_strict(
            user_identity, "userIdentity is not strict JSON", ConversionError, max_nesting=MAX_NESTING - 1
        )
    # One f-string is one allocation; a chain of + copied the growing line once per piece.
    text = (
        f'{{"event_id":{encode_string(event_id)},"event_name":"{event_name}","table":"{table}",'
        f'"event_time":"{event_time}","sequence_number":"{sequence_number}","keys":{keys},'
        f'"new_image":{new_text},"old_image":{old_text},"size_bytes":{size_bytes},'
        f'"user_identity":{identity}}}'
    )
    text = escape_line_breaks(text)
    try:
        line = text.encode()
    except UnicodeEncodeError:
        raise ConversionError("a string is not valid Unicode (lone surrogate)") from None
    return ChangeLine(table, event_id, event_time, sequence_number, line)


def escape_line_breaks(text: str) -> str:
    """JSON ``text`` with U+2028 and U+2029 written as ``\\u2028``/``\\u2029`` escapes.

    Both can only occur inside strings of valid JSON (they are not JSON whitespace), so replacing
    them in the whole text changes no value. The scan is a ``str`` search: free for the common
    ASCII/Latin-1 text, which cannot hold them.
    """
    for raw, escaped in _LINE_BREAKS_IN_STRINGS:
        if raw in text:
            text = text.replace(raw, escaped)
    return text


def escape_line_break_bytes(data: bytes) -> bytes:
    """``escape_line_breaks`` for UTF-8 JSON lines (e.g. raw/ files written before lines were escaped)."""
    for raw, escaped in _LINE_BREAKS_IN_STRINGS:
        encoded = raw.encode()
        if encoded in data:
            data = data.replace(encoded, escaped.encode())
    return data


def parse_change_line(line: bytes) -> ChangeLine:
    """The routing fields of a stored change record line; ``RecordRejected`` if it is not one.

    The line's bytes are kept as they are: only routing fields are read, so numbers are never
    re-encoded.
    """
    record = _loads(line)
    if type(record) is not dict:
        raise RecordRejected("a change record must be a JSON object")
    table, event_id = record.get("table"), record.get("event_id")
    event_time, sequence_number = record.get("event_time"), record.get("sequence_number")
    if type(event_id) is not str or not event_id:
        raise RecordRejected("change record has no event_id")
    if type(event_time) is not str or _EVENT_TIME.match(event_time) is None or not _real_time(event_time):
        raise RecordRejected("change record has no valid event_time")
    if type(sequence_number) is not str or _SEQUENCE_NUMBER.match(sequence_number) is None:
        raise RecordRejected("change record has no valid sequence_number")
    return ChangeLine(check_table_name(table), event_id, event_time, sequence_number, line)


def _loads(line: bytes) -> Any:
    """``json.loads(line)``, validating the whole line; ``RecordRejected`` if it is not JSON.

    orjson parses first (3 us against json's 10.5 us for a 1.3 KB line): what it
    accepts, json accepts too, with the same strings (the routing fields), so its verdict stands;
    what it refuses (lone surrogates, numbers past a double, ...) json.loads decides, through
    ``loads_checked``: strictly, so ``NaN``, ``Infinity``, a BOM and bytes that are not UTF-8 (which
    readers of raw/ refuse) stay refused, and with nesting past ``MAX_NESTING`` (512) refused before
    it parses, so no line can crash it. (Strict JSON nested 513 to 1024 levels deep passes orjson,
    and json alone would refuse it; our lines nest 34 levels at most.)
    """
    if _fast_loads is not None:
        try:
            return _fast_loads(line)
        except ValueError:
            pass  # orjson is stricter than json: json.loads below gives the verdict
    document = loads_checked(line, "not a JSON change record")
    try:
        # json reads a lone surrogate escape ("\ud800") into a str that is not Unicode; the
        # consumer quarantines those, and readers (orjson, DuckDB) refuse them: so do we.
        json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise RecordRejected("a string is not valid Unicode (lone surrogate)") from None
    return document


def _real_time(event_time: str) -> bool:
    """Whether a well-formed ``event_time`` is a real instant (no February 30th, no hour 24)."""
    return _real_second(event_time[:19])


@lru_cache(maxsize=8192)
def _real_second(text: str) -> bool:
    """Whether ``YYYY-MM-DDTHH:MM:SS`` is a real second (the milliseconds are always valid)."""
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


#: The exact start of every line ``to_change_line`` writes (an event_id without escapes).
_OWN_PREFIX = re.compile(
    rb'\{"event_id":"([^"\\\x00-\x1f]+)","event_name":"(?:INSERT|MODIFY|REMOVE)","table":"([A-Za-z0-9_.\-]{3,255})",'
    rb'"event_time":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)",'
    rb'"sequence_number":"([0-9]{1,64})",'
)


def parse_own_prefix(line: bytes) -> ChangeLine | None:
    """The routing fields of ``line`` read from the exact prefix ``to_change_line`` writes, or None.

    A fast path for lines we wrote (compaction reads every line of an hour): a strict match of the
    prefix, with the same field checks as ``parse_change_line``. None when the prefix does not
    match exactly (whitespace, another key order, an escaped or non-UTF-8 event_id, an invalid
    field): the caller then uses ``parse_change_line``. Only the prefix is read: where the line is
    valid JSON with no second copy of a routing key, the result equals ``parse_change_line``'s; the
    rest of the line is *not* validated, so a caller that must refuse malformed lines checks them
    with ``parse_change_line`` too (compaction does, see ``changelake.compaction.compactor``).
    """
    match = _OWN_PREFIX.match(line)
    if match is None:
        return None
    raw_id, raw_table, raw_time, raw_sequence = match.groups()
    try:
        event_id = raw_id.decode()
    except UnicodeDecodeError:
        return None
    event_time = raw_time.decode()
    if not _real_second(event_time[:19]):
        return None
    try:
        table = _own_table(raw_table)
    except UnsafeNameError:
        return None
    return ChangeLine(table, event_id, event_time, raw_sequence.decode(), line)


@lru_cache(maxsize=256)
def _own_table(raw: bytes) -> str:
    return check_table_name(raw.decode())


#: ``(event_time, int(sequence_number), event_id)``: compared as a tuple, the order of every file.
OrderKey = tuple[str, int, str]


def order_key(change: ChangeLine) -> OrderKey:
    """The order of docs/contracts.md: ``event_time``, then ``sequence_number`` as a number, then ``event_id``
    (so equal changes are adjacent). raw/ objects and compacted/ parts are both written in it."""
    return (change.event_time, int(change.sequence_number), change.event_id)


def stream_record_folder(record: object) -> tuple[str | None, date | None]:
    """The table and event day of a stream record that was rejected, where they can still be read
    (None where they cannot): its quarantine folder, see ``QuarantinedRecord.filed``."""
    if not isinstance(record, dict):
        return None, None
    arn, stream = record.get("eventSourceARN"), record.get("dynamodb")
    table = None
    if isinstance(arn, str):
        try:
            table = table_from_arn(arn)
        except RecordRejected:
            table = None
    day = _epoch_day(stream.get("ApproximateCreationDateTime")) if isinstance(stream, dict) else None
    return table, day


def change_line_folder(line: bytes) -> tuple[str | None, date | None]:
    """The table and event day of a change line that was rejected, where they can still be read."""
    try:
        record = loads_checked(line, "not JSON", strict=False)  # NaN or a BOM leave the fields readable
    except RecordRejected:
        return None, None
    if not isinstance(record, dict):
        return None, None
    table, event_time = record.get("table"), record.get("event_time")
    try:
        table = check_table_name(table)
    except RecordRejected:
        table = None
    try:
        day = date.fromisoformat(event_time[:10]) if isinstance(event_time, str) else None
    except ValueError:
        day = None
    return table, day


def _epoch_day(approximate_creation: object) -> date | None:
    if type(approximate_creation) not in (int, float):
        return None
    try:
        return datetime.fromtimestamp(float(approximate_creation), UTC).date()  # type: ignore[arg-type]
    except (OverflowError, OSError, ValueError):
        return None  # not a usable timestamp
