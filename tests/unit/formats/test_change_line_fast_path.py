"""The fast prefix parse of our own change lines (``parse_own_prefix``) agrees with ``parse_change_line``.

Contract under test: for every line that is valid JSON, ``parse_own_prefix(line) or
parse_change_line(line)`` gives exactly what ``parse_change_line(line)`` gives (the same
``ChangeLine``, or the same rejection with the same reason); ``parse_own_prefix`` returns None for
anything that is not our exact prefix with valid fields. It does not read past the prefix, so a
line whose remainder is not JSON is not refused by it (compaction checks those with the full parse).
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from changelake.exceptions import RecordRejected
from changelake.formats.change_line import (
    ChangeLine,
    escape_line_breaks,
    parse_change_line,
    parse_own_prefix,
    to_change_line,
)
from changelake_testing.stream_records import change_batch, stream_record

PREFIX_END = b',"keys":'


def outcome(parse: Any, line: bytes) -> tuple[str, Any, str]:
    """What a parse does with ``line``: its result, or the rejection's type and reason."""
    try:
        return ("ok", parse(line), "")
    except RecordRejected as exc:
        return ("rejected", type(exc), str(exc))


def fast_or_full(line: bytes) -> ChangeLine:
    return parse_own_prefix(line) or parse_change_line(line)


def own_line(event_id: str = "evt-1", table: str = "orders", **overrides: Any) -> bytes:
    record = stream_record(
        table=table,
        event_name="MODIFY",
        sequence_number=4200000000000000000001,
        created=1_795_867_200.125,
        keys={"pk": {"S": "customer#1"}},
        new_image={"pk": {"S": "customer#1"}, "n": {"N": "12345678901234567890123456789012345678"}},
        event_id=event_id,
    )
    record.update(overrides)
    return to_change_line(record).line


def with_prefix_field(line: bytes, name: str, value: bytes) -> bytes:
    """``line`` with the raw JSON text of a prefix field replaced (the prefix layout kept)."""
    document = json.loads(line)
    old = json.dumps(document[name], ensure_ascii=False).encode()
    return line.replace(b'"' + name.encode() + b'":' + old, b'"' + name.encode() + b'":' + value, 1)


def test_every_generated_line_takes_the_fast_path_with_the_full_result() -> None:
    # GIVEN 600 realistic stream records over several tables, converted by to_change_line
    records = change_batch(random.Random(3), 600, tables=("orders", "a.b-c_1", "x" * 255), item_bytes=700)
    lines = [to_change_line(record).line for record in records]
    for line in lines:
        # WHEN parsed on the fast path THEN it matches and equals the full parse, bytes kept
        fast = parse_own_prefix(line)
        assert fast is not None
        assert fast == parse_change_line(line)
        assert fast.line is line


@pytest.mark.parametrize(
    "event_id",
    [
        'quote"inside',
        "back\\slash",
        "tab\there",
        "new\nline",
        "nul\x00char",
        "slash/and\u2028separator",
        "ünïcødé-€-𝄞",
        "\x7f-delete",
        " ",
    ],
)
def test_escaped_and_unusual_event_ids_agree(event_id: str) -> None:
    # GIVEN a line we wrote whose event_id needs escaping, or is non-ASCII
    line = own_line(event_id=event_id)
    # WHEN parsed fast (falling back when needed) and fully
    fast = parse_own_prefix(line)
    # THEN both give the same record with the decoded event_id
    assert fast_or_full(line) == parse_change_line(line)
    assert parse_change_line(line).event_id == event_id
    # AND only ids written without a backslash escape (U+2028/U+2029 are escaped) take the fast path
    written = escape_line_breaks(json.dumps(event_id, ensure_ascii=False))
    assert (fast is None) == ("\\" in written)


def _non_matching_lines() -> list[bytes]:
    base = own_line()
    document = json.loads(base)
    reordered = {"event_name": document["event_name"], **document}
    return [
        json.dumps(document).encode(),  # whitespace after separators
        json.dumps(reordered, separators=(",", ":")).encode(),  # another key order
        json.dumps(document, separators=(",", ":")).encode().replace(b"evt-1", b"evt\\u002d1"),
        b" " + base,
        base.replace(b'"event_name":"MODIFY"', b'"event_name":"UPSERT"'),  # full path accepts it
        with_prefix_field(base, "event_time", b'"2026-02-30T08:00:00.000Z"'),
        with_prefix_field(base, "event_time", b'"2026-11-28T24:00:00.000Z"'),
        with_prefix_field(base, "event_time", b'"2026-11-28T12:60:00.000Z"'),
        with_prefix_field(base, "event_time", b'"2026-11-28T12:00:00Z"'),
        with_prefix_field(base, "event_time", '"\u0662026-11-28T12:00:00.000Z"'.encode()),
        with_prefix_field(base, "sequence_number", b'"' + b"9" * 65 + b'"'),
        with_prefix_field(base, "sequence_number", b'"4x"'),
        with_prefix_field(base, "sequence_number", b"42"),
        with_prefix_field(base, "sequence_number", b'""'),
        with_prefix_field(base, "table", b'"..."'),
        with_prefix_field(base, "table", b'"../etc"'),
        with_prefix_field(base, "table", b'"ab"'),
        with_prefix_field(base, "table", b'"' + b"t" * 256 + b'"'),
        with_prefix_field(base, "table", b"null"),
        with_prefix_field(base, "event_id", b'""'),
        with_prefix_field(base, "event_id", b"5"),
        with_prefix_field(base, "event_id", b'"bad-\xff-utf8"'),
        with_prefix_field(base, "event_id", b'"surrogate-\xed\xa0\x80"'),
        b"not json",
        b"",
        b"[1, 2]",
        b'{"event_id":"x"}',
    ]


@pytest.mark.parametrize("line", _non_matching_lines())
def test_lines_off_the_exact_prefix_fall_back_with_the_same_outcome(line: bytes) -> None:
    # GIVEN a line that is not our exact prefix with valid fields
    # WHEN parsed on the fast path THEN it declines, and the fallback's outcome is the full parse's
    assert parse_own_prefix(line) is None
    assert outcome(fast_or_full, line) == outcome(parse_change_line, line)


def test_a_line_with_valid_dot_in_table_and_63_digit_sequence_is_fast() -> None:
    # GIVEN the longest sequence number and a table name with dots, in our exact layout
    line = with_prefix_field(own_line(table="a.b"), "sequence_number", b'"' + b"7" * 64 + b'"')
    # WHEN parsed THEN the fast path takes it and agrees with the full parse
    assert parse_own_prefix(line) == parse_change_line(line) != None  # noqa: E711


def test_mutated_lines_agree_whenever_they_are_json() -> None:
    # GIVEN thousands of single-byte mutations of our lines (deletes, inserts, replacements)
    rng = random.Random(11)
    lines = [own_line(event_id=f"evt-{n}") for n in range(20)]
    alphabet = b'"\\{}:,0123456789aT.Z -\x00\xff'
    checked = fast_taken = 0
    for _ in range(6000):
        line = bytearray(rng.choice(lines))
        position = rng.randrange(len(line) + 1) if rng.random() < 0.7 else rng.randrange(160)
        action = rng.randrange(3)
        byte = alphabet[rng.randrange(len(alphabet))]
        if action == 0 and position < len(line):
            del line[position]
        elif action == 1:
            line.insert(position, byte)
        elif position < len(line):
            line[position] = byte
        mutated = bytes(line)
        fast = parse_own_prefix(mutated)
        try:
            json.loads(mutated)
        except (ValueError, UnicodeDecodeError):
            continue  # not JSON: the fast path promises nothing past the prefix (see the last test)
        # THEN where it is JSON, fast-or-full has exactly the full parse's outcome
        checked += 1
        fast_taken += fast is not None
        assert outcome(fast_or_full, mutated) == outcome(parse_change_line, mutated)
    assert checked > 1000
    assert fast_taken > 500


def test_a_second_routing_key_later_in_the_line_is_what_only_the_full_parse_sees() -> None:
    # GIVEN a line in our layout that is valid JSON but repeats "table" after the prefix
    line = own_line()[:-1] + b',"table":"other"}'
    # WHEN parsed on both paths
    fast = parse_own_prefix(line)
    # THEN the fast path reads the prefix's table while the full parse takes the last one:
    # this is why compaction checks every fast-path line against the full parse before it commits
    assert fast is not None
    assert fast.table == "orders"
    assert parse_change_line(line).table == "other"


def test_the_fast_path_does_not_read_past_the_prefix() -> None:
    # GIVEN our prefix followed by something that is not JSON
    line = own_line().split(PREFIX_END)[0] + b',"keys":{broken'
    # WHEN parsed THEN the fast path returns the routing fields while the full parse rejects it
    fast = parse_own_prefix(line)
    assert fast is not None
    assert fast.event_id == "evt-1"
    with pytest.raises(RecordRejected, match="not a JSON change record"):
        parse_change_line(line)
