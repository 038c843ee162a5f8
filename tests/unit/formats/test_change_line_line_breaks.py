"""U+2028 and U+2029 inside strings are escaped in every line we write, so str.splitlines sees one
record per line, and the byte-level fast paths still agree with the full parse."""

from __future__ import annotations

import json
from datetime import date

import pytest

from changelake.formats.change_line import (
    escape_line_break_bytes,
    escape_line_breaks,
    parse_change_line,
    parse_own_prefix,
    to_change_line,
)
from changelake.ingest.quarantine import QuarantinedRecord
from changelake_testing.stream_records import stream_record

BREAKS = "line\u2028separator\u2029paragraph"


def record_with_breaks(event_id: str = "evt-1") -> dict[str, object]:
    keys = {"pk": {"S": f"customer#{BREAKS}"}, "sk": {"S": "order#1"}}
    image = {
        **keys,
        f"name{BREAKS}": {"S": BREAKS},
        "tags": {"SS": [BREAKS, "plain"]},
        "nested": {"M": {"list": {"L": [{"S": BREAKS}, {"M": {"deep": {"S": BREAKS}}}]}}},
    }
    return stream_record(
        table="orders",
        event_name="MODIFY",
        sequence_number=10**20,
        created=1_795_780_800.25,
        keys=keys,
        new_image=image,
        old_image=image,
        event_id=event_id,
    )


@pytest.mark.parametrize("event_id", ["evt-1", f"evt{BREAKS}"])
def test_a_change_line_escapes_both_separators_and_keeps_every_value(event_id: str) -> None:
    # GIVEN a stream record with U+2028/U+2029 in keys, values, attribute names, sets, nested values
    # (and in its eventID)
    record = record_with_breaks(event_id)

    # WHEN it becomes a change line
    line = to_change_line(record).line

    # THEN the line holds neither character raw, is one line to str.splitlines, and reads back the same
    text = line.decode()
    assert "\u2028" not in text
    assert "\u2029" not in text
    assert len(text.splitlines()) == 1
    document = json.loads(text)
    assert document["event_id"] == event_id
    assert document["keys"]["pk"] == f"customer#{BREAKS}"
    assert document["new_image"][f"name{BREAKS}"] == BREAKS
    assert document["new_image"]["tags"] == [BREAKS, "plain"]
    assert document["old_image"]["nested"]["list"][1]["deep"] == BREAKS


@pytest.mark.parametrize("event_id", ["evt-1", f"evt{BREAKS}"])
def test_the_fast_prefix_parse_agrees_with_the_full_parse_on_escaped_lines(event_id: str) -> None:
    # GIVEN an escaped change line
    line = to_change_line(record_with_breaks(event_id)).line

    # WHEN the fast prefix parse and the full parse read it
    fast = parse_own_prefix(line) or parse_change_line(line)

    # THEN they agree, and the event_id is the original string (an escaped id takes the full parse)
    assert fast == parse_change_line(line)
    assert fast.event_id == event_id


def test_a_quarantine_line_escapes_both_separators() -> None:
    # GIVEN a rejected record holding both separators
    entry = QuarantinedRecord("orders", date(2026, 11, 27), f"reason {BREAKS}", record_with_breaks())

    # WHEN its line is written
    line = entry.line().decode()

    # THEN splitlines sees one line (plus nothing after the newline), and it reads back the same
    assert line.splitlines() == [line.rstrip("\n")]
    assert json.loads(line)["record"] == record_with_breaks()


def test_escaping_bytes_and_text_agree_and_change_no_value() -> None:
    # GIVEN a JSON line written before lines were escaped (raw separators inside strings)
    legacy = json.dumps({"a": BREAKS, BREAKS: [BREAKS]}, ensure_ascii=False)

    # WHEN escaped as text and as UTF-8 bytes
    as_text = escape_line_breaks(legacy)
    as_bytes = escape_line_break_bytes(legacy.encode())

    # THEN both give the same one-line JSON with the same values; lines without them are untouched
    assert as_bytes == as_text.encode()
    assert len(as_text.splitlines()) == 1
    assert json.loads(as_text) == json.loads(legacy)
    assert escape_line_break_bytes(b'{"a":"Z\xc3\xbcrich"}') == b'{"a":"Z\xc3\xbcrich"}'
