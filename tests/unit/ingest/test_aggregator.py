"""raw_object: one partition's file name and gzip body, deterministic, each event_id once, ordered."""

from __future__ import annotations

import gzip
import json
import random

from changelake.formats.change_line import ChangeLine
from changelake.formats.layout import raw_file_times
from changelake.ingest.aggregator import raw_object


def change(event_id: str, event_time: str, sequence_number: str, extra: str = "") -> ChangeLine:
    line = json.dumps(
        {
            "event_id": event_id,
            "table": "orders",
            "event_time": event_time,
            "sequence_number": sequence_number,
            "extra": extra,
        },
        separators=(",", ":"),
    ).encode()
    return ChangeLine("orders", event_id, event_time, sequence_number, line)


CHANGES = [
    change("a", "2026-11-28T12:00:00.500Z", "10"),
    change("b", "2026-11-28T12:00:00.500Z", "9"),
    change("c", "2026-11-28T12:00:00.100Z", "500"),
    change("d", "2026-11-28T12:59:59.999Z", "1"),
    change("e", "2026-11-28T12:30:00.000Z", "100000000000000000000001"),
    change("f", "2026-11-28T12:30:00.000Z", "99999999999999999999999"),
]


def ids(body: bytes) -> list[str]:
    return [json.loads(line)["event_id"] for line in gzip.decompress(body).splitlines()]


def test_same_changes_in_any_order_give_same_name_and_bytes() -> None:
    # GIVEN the same changes in many orders
    expected = raw_object(CHANGES)
    rng = random.Random(5)
    for _ in range(20):
        shuffled = CHANGES[:]
        rng.shuffle(shuffled)
        # WHEN the object is built THEN name and bytes are identical
        assert raw_object(shuffled) == expected


def test_records_ordered_by_event_time_then_numeric_sequence() -> None:
    # GIVEN changes with equal times and sequence numbers of different lengths
    # WHEN the object is built
    _, body = raw_object(CHANGES)
    # THEN they are ordered by event_time, then sequence number as a number ("9" before "10")
    assert ids(body) == ["c", "b", "a", "f", "e", "d"]


def test_body_is_the_lines_verbatim() -> None:
    # GIVEN changes WHEN the object is built THEN the body is gzip of each line plus newline
    _, body = raw_object(CHANGES[:1])
    assert gzip.decompress(body) == CHANGES[0].line + b"\n"


def test_duplicate_event_ids_are_kept_once() -> None:
    # GIVEN a change delivered three times (one redelivery with a different sequence number)
    first = change("a", "2026-11-28T12:00:00.000Z", "5")
    copy = change("a", "2026-11-28T12:00:00.000Z", "5")
    later = change("a", "2026-11-28T12:00:01.000Z", "6", extra="redelivered")
    other = change("b", "2026-11-28T12:00:00.500Z", "7")
    # WHEN the object is built
    name, body = raw_object([later, other, copy, first])
    # THEN each event_id appears once, the earliest copy kept
    assert ids(body) == ["a", "b"]
    assert gzip.decompress(body).splitlines()[0] == first.line
    # AND duplicates do not change the name
    assert raw_object([first, other]) == (name, body)


def test_name_carries_the_first_and_last_event_time() -> None:
    # GIVEN changes WHEN the object is built
    name, _ = raw_object(CHANGES)
    # THEN the name starts with the earliest and the latest event time (compact form) and ends .jsonl.gz
    assert name.startswith("20261128T120000100Z-20261128T125959999Z-")
    assert name.endswith(".jsonl.gz")
    assert "/" not in name
    # AND the layout reads the two times back from it
    assert raw_file_times(name) == ("20261128T120000100Z", "20261128T125959999Z")


def test_different_content_gives_a_different_name() -> None:
    # GIVEN two sets of changes starting at the same time WHEN built THEN the names differ
    assert raw_object(CHANGES)[0] != raw_object(CHANGES[:-1])[0]
