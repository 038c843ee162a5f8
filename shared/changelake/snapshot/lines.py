"""The lines the snapshot layer reads and writes: change records in, snapshot lines out. Pure.

A snapshot line (docs/contracts.md, "The snapshot layer") is written as::

    {"keys":<key>,"table":"<table>","item":<item>,"event_id":..,"event_time":..,"sequence_number":..}

``<key>`` is the item's identity in one canonical text: the key attributes sorted by name, strings
as orjson writes them, numbers with exactly the digits DynamoDB gave. Snapshots are sorted by that
text (compared as ``str``, which is the order of its UTF-8 bytes), and because it comes first on
the line, the next day's build reads it back with one search instead of parsing the line
(``base_key``). Every source of keys (stream records, export items) goes through ``key_text``,
so one item always gets one key whatever it came from.

A REMOVE gives a *removal line*: the same line with ``"item":null`` (``is_removal``), the state
the day's removed-keys files carry (``changelake.snapshot.manifest.REMOVED_FILES``), never data.
The change fields end every line, so ``line_order`` reads a line's (sequence number, event_id),
the order of changes, from its end.

Numbers are never rounded: change lines are parsed with every number kept as its original text
(``exact_loads``: ``json.loads`` with ``orjson.Fragment`` numbers), then written by orjson.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from changelake.exceptions import RecordRejected
from changelake.formats.change_line import EVENT_NAMES, escape_line_break_bytes, parse_change_line

#: What the external sorter holds per change: (key, sequence number, event_id, the item's snapshot
#: line after the change, or its removal line for a REMOVE). The line is built when the change is
#: read, where its file and line are known for errors, and it holds only the new image: half a
#: change record.
Entry = tuple[str, int, str, bytes]
#: The order of changes of one item (``analytics.views.SEQUENCE_ORDER``): (sequence number as a
#: number, event_id).
Order = tuple[int, str]

_LINE_START = b'{"keys":{'
#: What follows the key on every line ``snapshot_line`` writes. It cannot occur inside the key: a
#: ``"`` inside a JSON string is escaped, and the key's object is flat (no ``}`` but its own).
_KEY_END = b'},"table":"'
#: What follows the table name; a table name holds no ``"`` (``check_table_name``).
_ITEM = b'","item":'
#: Where the change fields start: the last occurrence on a line is the line's own (inside a string a
#: ``"`` is escaped, so the item cannot hold this text).
_CHANGE_FIELDS = b',"event_id":'
_STRING = rb'"(?:[^"\\]|\\.)*"'
_SCALAR = rb'(?:"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+\-]*)'
_PAIR = _STRING + rb":" + _SCALAR
#: A flat key object of string and number attributes (what ``key_text`` writes), in full.
_FLAT_KEY = re.compile(rb"\{" + _PAIR + rb"(?:," + _PAIR + rb")*\}\Z")


def _exact_number(text: str) -> orjson.Fragment:
    return orjson.Fragment(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def exact_loads(data: bytes) -> Any:
    """``data`` parsed as JSON with every number kept as its text (an ``orjson.Fragment``);
    ``RecordRejected`` if it is not JSON (NaN and Infinity are not)."""
    try:
        return json.loads(
            data, parse_int=_exact_number, parse_float=_exact_number, parse_constant=_no_constant
        )
    except (ValueError, UnicodeDecodeError):
        raise RecordRejected("not a JSON change record") from None


def _json(value: Any, *, sort_keys: bool = False) -> bytes:
    """``value`` (parsed by ``exact_loads`` from a line ``parse_change_line`` accepted: strict JSON,
    valid Unicode) written by orjson, with U+2028/U+2029 escaped as in every line we write. For a
    key this is what keeps it one text: ``PartsWriter`` escapes every line it writes, so the key
    read back from a snapshot line is the escaped one."""
    return escape_line_break_bytes(orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None))


def key_text(keys: object) -> str:
    """The canonical key of a ``keys`` object parsed by ``exact_loads``: attributes sorted by name,
    strings (``S``, ``B``) as orjson writes them, numbers (``N``) with their exact digits."""
    if type(keys) is not dict or not keys:
        raise RecordRejected("keys must be a non-empty object")
    for value in keys.values():
        if type(value) is not str and type(value) is not orjson.Fragment:
            raise RecordRejected("key attributes must be strings or numbers")
    return _json(keys, sort_keys=True).decode()


def keys_of_text(text: bytes) -> str:
    """The canonical key of a plain JSON keys object (as ``dynamodb_json.item_text`` writes it)."""
    return key_text(exact_loads(text))


def change_key_hint(line: bytes) -> str | None:
    """The canonical key of a change line whose key attributes are all strings, found fast (orjson,
    no exact numbers: strings come out the same), for skipping the changes of other buckets before
    ``change_entry`` parses them in full; None when it cannot tell (a number in the key, not JSON,
    no keys object): then the line is parsed in full."""
    try:
        keys = orjson.loads(line).get("keys")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if type(keys) is not dict or not keys or any(type(value) is not str for value in keys.values()):
        return None
    return key_text(keys)


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
    document = exact_loads(line)
    event_name = document.get("event_name")
    if event_name not in EVENT_NAMES:
        raise RecordRejected("change record has no valid event_name")
    key = key_text(document.get("keys"))
    if event_name == "REMOVE":
        item = b"null"
    else:
        image = document.get("new_image")
        if type(image) is not dict:
            raise RecordRejected(f"{event_name} change record without a new_image object")
        item = _json(image)
    line = snapshot_line(
        table,
        key,
        item,
        event_id=change.event_id,
        event_time=change.event_time,
        sequence_number=change.sequence_number,
    )
    return (key, int(change.sequence_number), change.event_id, line)


def snapshot_line(
    table: str,
    key: str,
    item: bytes,
    *,
    event_id: str | None = None,
    event_time: str | None = None,
    sequence_number: str | None = None,
) -> bytes:
    """One snapshot line (``item`` ``null`` for a removal line); the change fields are null for an
    item taken from a bootstrap export."""
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


def base_key(line: bytes) -> str | None:
    """The canonical key at the start of a snapshot line, or None if it is not a line we wrote."""
    if not line.startswith(_LINE_START):
        return None
    end = line.find(_KEY_END, len(_LINE_START))
    if end < 0:
        return None
    key = line[8 : end + 1]
    # A "{" in the key is either inside a string or a nested value (not a key): the full pattern
    # tells them apart. Without one (nearly always) the search alone is exact.
    if key.find(b"{", 1) >= 0 and _FLAT_KEY.match(key) is None:
        return None
    return key.decode()


def is_removal(line: bytes) -> bool:
    """Whether a line ``snapshot_line`` wrote is a removal line (``"item":null``)."""
    key_end = line.find(_KEY_END, len(_LINE_START))
    item = line.find(_ITEM, key_end + len(_KEY_END))
    return line.startswith(b"null", item + len(_ITEM))


def line_order(line: bytes) -> Order | None:
    """The (sequence number, event_id) of the change a line ``snapshot_line`` wrote holds; None for
    an item from a bootstrap export (no change yet: older than any). ``RecordRejected`` if the
    line does not end with the change fields."""
    fields = _change_fields(line)
    sequence, event_id = fields["sequence_number"], fields["event_id"]
    if sequence is None:
        return None
    digits = type(sequence) is str and sequence.isascii() and sequence.isdigit()
    if not digits or type(event_id) is not str:
        raise RecordRejected("not a snapshot line: its sequence_number or event_id is not a string")
    return int(sequence), event_id


def event_time_of(line: bytes) -> str:
    """The event time of the change a line ``snapshot_line`` wrote holds ("" for an item from a
    bootstrap export); ``RecordRejected`` if the line does not end with the change fields."""
    event_time = _change_fields(line)["event_time"]
    if event_time is None:
        return ""
    if type(event_time) is not str:
        raise RecordRejected("not a snapshot line: its event_time is not a string")
    return event_time


def _change_fields(line: bytes) -> dict[str, Any]:
    """The change fields that end a line ``snapshot_line`` wrote; ``RecordRejected`` without them."""
    start = line.rfind(_CHANGE_FIELDS)
    try:
        fields = orjson.loads(b"{" + line[start + 1 :]) if start >= 0 else None
    except orjson.JSONDecodeError:
        fields = None
    if type(fields) is not dict or not {"event_id", "event_time", "sequence_number"} <= fields.keys():
        raise RecordRejected("not a snapshot line: it does not end with its change fields")
    return fields
