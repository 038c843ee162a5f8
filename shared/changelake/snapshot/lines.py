"""The lines the snapshot layer reads and writes: change records in, snapshot lines out. Pure.

A snapshot line (DESIGN.md, "The snapshot layer") is written as::

    {"keys":<key>,"table":"<table>","item":<item>,"event_id":..,"event_time":..,"sequence_number":..}

``<key>`` is the item's identity in one canonical text: the key attributes sorted by name, strings
as orjson writes them, numbers with exactly the digits DynamoDB gave. Snapshots are sorted by that
text (compared as ``str``, which is the order of its UTF-8 bytes), and because it comes first on
the line, the next day's build reads it back with one regular expression instead of parsing the
line (``base_key``). Every source of keys (stream records, export items) goes through ``key_text``,
so one item always gets one key whatever it came from.

Numbers are never rounded: change lines are parsed with every number kept as its original text
(``exact_loads``: ``json.loads`` with ``orjson.Fragment`` numbers), then written by orjson.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from changelake.exceptions import RecordRejected
from changelake.records import EVENT_NAMES, parse_change_line

#: What the external sorter holds per change: (key, sequence number, event_id, change line).
Entry = tuple[str, int, str, bytes]

_STRING = rb'"(?:[^"\\]|\\.)*"'
_SCALAR = rb'(?:"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+\-]*)'
_PAIR = _STRING + rb":" + _SCALAR
#: The start of every line ``snapshot_line`` writes, up to the table: the canonical key.
_BASE_KEY = re.compile(rb'\{"keys":(\{' + _PAIR + rb"(?:," + _PAIR + rb')*\}),"table":"')


def _exact_number(text: str) -> orjson.Fragment:
    return orjson.Fragment(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def exact_loads(data: bytes) -> Any:
    """``data`` parsed as JSON with every number kept as its text (an ``orjson.Fragment``)."""
    return json.loads(data, parse_int=_exact_number, parse_float=_exact_number, parse_constant=_no_constant)


def key_text(keys: object) -> str | None:
    """The canonical key of a parsed ``keys`` object, or None if a value is a parsed number.

    Values must be strings (``S``, ``B``) or exact numbers (``N`` as ``orjson.Fragment``). A number
    parsed to int or float may have lost digits: the caller parses the text with ``exact_loads``
    and asks again. Anything else is not a key (``RecordRejected``).
    """
    if type(keys) is not dict or not keys:
        raise RecordRejected("keys must be a non-empty object")
    exact = True
    for value in keys.values():
        kind = type(value)
        if kind is int or kind is float:
            exact = False
        elif kind is not str and kind is not orjson.Fragment:
            raise RecordRejected("key attributes must be strings or numbers")
    return orjson.dumps(keys, option=orjson.OPT_SORT_KEYS).decode() if exact else None


def keys_of_text(text: bytes) -> str:
    """The canonical key of a plain JSON keys object (as ``dynamodb_json.item_text`` writes it)."""
    return key_text(orjson.loads(text)) or str(key_text(exact_loads(text)))


def _document(line: bytes) -> dict[str, Any]:
    """``line`` parsed by orjson: what it refuses (NaN, a BOM, lone surrogates) cannot be written
    back as JSON, so such a line is not a change the snapshot can apply."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordRejected(f"not a JSON change record ({exc})") from None
    if type(document) is not dict:
        raise RecordRejected("a change record must be a JSON object")
    return document


def change_entry(line: bytes, *, table: str, day: str) -> Entry:
    """The sorter entry of one raw/ change line of ``table`` on ``day`` (``YYYY-MM-DD``).

    Every field the snapshot relies on is checked here, where the file and line are still known:
    the routing fields (as ``records.parse_change_line`` checks them), the table and day, the
    event name, the keys, and a ``new_image`` object unless the change is a REMOVE.
    """
    change = parse_change_line(line)
    if change.table != table:
        raise RecordRejected(f"change of table {change.table!r}, not {table!r}")
    if not change.event_time.startswith(day):
        raise RecordRejected(f"change of {change.event_time[:10]}, not {day}")
    document = _document(line)
    event_name = document.get("event_name")
    if event_name not in EVENT_NAMES:
        raise RecordRejected("change record has no valid event_name")
    if event_name != "REMOVE" and type(document.get("new_image")) is not dict:
        raise RecordRejected(f"{event_name} change record without a new_image object")
    key = key_text(document.get("keys")) or key_text(exact_loads(line)["keys"])
    return (str(key), int(change.sequence_number), change.event_id, line)


def snapshot_line(
    table: str,
    key: str,
    item: bytes,
    *,
    event_id: str | None = None,
    event_time: str | None = None,
    sequence_number: str | None = None,
) -> bytes:
    """One snapshot line; the change fields are null for an item taken from a bootstrap export."""
    return b"".join(
        (
            b'{"keys":',
            key.encode(),
            b',"table":"',
            table.encode(),
            b'","item":',
            item,
            b',"event_id":',
            orjson.dumps(event_id),
            b',"event_time":',
            orjson.dumps(event_time),
            b',"sequence_number":',
            orjson.dumps(sequence_number),
            b"}",
        )
    )


def applied_line(table: str, entry: Entry) -> bytes | None:
    """The snapshot line of the latest change of an item, or None if that change removes it."""
    key, _, event_id, line = entry
    document = exact_loads(line)
    if document["event_name"] == "REMOVE":
        return None
    return snapshot_line(
        table,
        key,
        orjson.dumps(document["new_image"]),
        event_id=event_id,
        event_time=document["event_time"],
        sequence_number=document["sequence_number"],
    )


def base_key(line: bytes) -> str | None:
    """The canonical key at the start of a snapshot line, or None if it is not one we wrote."""
    match = _BASE_KEY.match(line)
    return None if match is None else match[1].decode()
