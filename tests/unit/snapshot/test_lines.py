"""The snapshot's line formats: change entries in, snapshot lines out, keys one canonical text."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from changelake.exceptions import RecordRejected
from changelake.formats.dynamodb_json import item_text
from changelake.snapshot.lines import (
    base_key,
    change_entry,
    change_key_hint,
    is_removal,
    keys_of_text,
    line_order,
    snapshot_line,
)
from tests.snapshot_support import BIG, FRACTION, change

DAY = "2026-11-22"
AT = "2026-11-22T10:00:00+00:00"


def exact(line: bytes) -> dict:
    return dict(json.loads(line, parse_float=Decimal, parse_int=Decimal))


def test_an_entry_is_keyed_by_the_item_whatever_the_order_of_its_key_attributes() -> None:
    # GIVEN the same item's keys listed in two orders (DynamoDB does not fix the order)
    one = change("p1", AT, 10, keys={"pk": {"S": "p1"}, "sk": {"S": "s"}})
    other = change("p1", AT, 11, keys={"sk": {"S": "s"}, "pk": {"S": "p1"}})
    # WHEN each becomes a sorter entry
    first = change_entry(one.line, table="orders", day=DAY)
    second = change_entry(other.line, table="orders", day=DAY)
    # THEN both have the one canonical key, and the sequence number as a number
    assert first[0] == second[0] == '{"pk":"p1","sk":"s"}'
    assert (first[1], second[1]) == (10, 11)
    assert first[2] == one.event_id


def test_number_keys_keep_every_digit() -> None:
    # GIVEN two items whose number keys differ only past a double's precision
    a = change("x", AT, 1, keys={"pk": {"N": BIG}})
    b = change("x", AT, 2, keys={"pk": {"N": BIG[:-1] + "9"}})
    # WHEN keyed THEN they stay two items, each with its exact digits
    key_a = change_entry(a.line, table="orders", day=DAY)[0]
    key_b = change_entry(b.line, table="orders", day=DAY)[0]
    assert key_a == f'{{"pk":{BIG}}}'
    assert key_b == f'{{"pk":{BIG[:-1]}9}}'


def test_an_export_item_and_a_stream_change_of_one_item_get_one_key() -> None:
    # GIVEN keys with a number, a binary and a string with escapes, as a change and as export attributes
    keys = {"pk": {"S": 'a "quoted" \\ key é ☃'}, "sk": {"N": BIG}}
    line = change("ignored", AT, 5, keys=keys).line
    # WHEN keyed from the change line and from the export's DynamoDB JSON
    from_change = change_entry(line, table="orders", day=DAY)[0]
    from_export = keys_of_text(item_text("keys", {"sk": keys["sk"], "pk": keys["pk"]}).encode())
    # THEN the keys are equal
    assert from_change == from_export


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not a JSON change record"),
        (change("p", "2026-11-23T00:00:00+00:00", 1).line, "change of 2026-11-23, not 2026-11-22"),
        (change("p", AT, 1, table="other").line, "change of table 'other', not 'orders'"),
        (change("p", AT, 1).line.replace(b'"MODIFY"', b'"UPSERT"'), "no valid event_name"),
        (change("p", AT, 1).line.replace(b'"new_image":{', b'"new_image":null,"x":{'), "without a new_image"),
        (change("p", AT, 1, keys={"pk": {"M": {"a": {"S": "b"}}}}).line, "strings or numbers"),
        (change("p", AT, 1).line.replace(b'"sequence_number":"', b'"sequence_number":"x'), "sequence_number"),
        (change("p", AT, 1, v="x").line.replace(b'"v":"', b'"v":"\\ud800', 1), "lone surrogate"),
        (change("p", AT, 1, v="x").line.replace(b'"v":"', b'"v":NaN,"w":"', 1), "not a JSON change record"),
    ],
)
def test_a_line_that_is_not_a_change_of_the_day_is_rejected_with_the_reason(line: bytes, reason: str) -> None:
    # GIVEN a line that is not an applicable change of orders on 2026-11-22
    # WHEN it is read THEN it is rejected, saying why
    with pytest.raises(RecordRejected, match=reason):
        change_entry(line, table="orders", day=DAY)


def test_a_change_becomes_its_item_s_snapshot_line_with_exact_values() -> None:
    # GIVEN a MODIFY with 38-digit numbers and a set
    modify = change("p1", "2026-11-22T23:59:59.999+00:00", 123456789012345678901, colour="red", v="x")
    # WHEN read
    entry = change_entry(modify.line, table="orders", day=DAY)
    # THEN its line holds the keys, the whole new image with every digit, and the change's fields
    line = entry[3]
    document = exact(line)
    assert document["keys"] == {"pk": "p1", "sk": "s"}
    assert document["table"] == "orders"
    assert document["item"]["price"] == Decimal(BIG)
    assert document["item"]["ratio"] == Decimal(FRACTION)
    assert document["item"]["nested"] == {"n": Decimal("-1.5E+10"), "l": [True, None]}
    assert document["item"]["colour"] == "red"
    assert list(document["item"]) == list(exact(modify.line)["new_image"])  # the image's own order
    assert document["event_id"] == modify.event_id
    assert document["event_time"] == "2026-11-22T23:59:59.999Z"
    assert document["sequence_number"] == "123456789012345678901"
    # AND its key reads back from the start of the line
    assert base_key(line) == entry[0]


def test_a_remove_gives_a_removal_line_with_its_change_fields() -> None:
    # GIVEN a REMOVE (a TTL delete) WHEN read
    remove = change("p1", AT, 9, name="REMOVE", ttl=True)
    entry = change_entry(remove.line, table="orders", day=DAY)
    # THEN it carries a removal line: its key, a null item and the REMOVE's change fields
    assert exact(entry[3]) == {
        "keys": {"pk": "p1", "sk": "s"},
        "table": "orders",
        "item": None,
        "event_id": remove.event_id,
        "event_time": "2026-11-22T10:00:00.000Z",
        "sequence_number": "9",
    }
    assert is_removal(entry[3])
    assert base_key(entry[3]) == entry[0]
    assert line_order(entry[3]) == (9, remove.event_id)


def test_an_item_line_is_no_removal_whatever_its_attributes_hold() -> None:
    # GIVEN an item whose attributes are named like the line's fields, one of them null
    item = b'{"item":null,"event_id":"not mine","sequence_number":"1"}'
    line = snapshot_line(
        "orders", '{"pk":"a"}', item, event_id="e1", event_time=AT, sequence_number=str(2**70)
    )
    # WHEN read back THEN it is an item, and its order is its own change's, not its attributes'
    assert not is_removal(line)
    assert line_order(line) == (2**70, "e1")


def test_a_bootstrap_item_has_no_order_and_a_line_without_change_fields_is_refused() -> None:
    # GIVEN a line of an exported item, and lines cut short or with a bad sequence number
    exported = snapshot_line("orders", '{"pk":"a"}', b'{"a":1}')
    cut = exported[: exported.index(b',"event_id"')] + b"}"
    bad = snapshot_line("orders", '{"pk":"a"}', b"{}", event_id="e", sequence_number="\u0661")
    # WHEN their order is read THEN the exported item has none (older than any change), the others fail
    assert line_order(exported) is None
    for line in (cut, bad, b"garbage"):
        with pytest.raises(RecordRejected, match="not a snapshot line"):
            line_order(line)


def test_bootstrap_lines_have_null_change_fields_and_keys_read_back() -> None:
    # GIVEN an exported item's key with characters that need escaping
    key = keys_of_text(item_text("keys", {"pk": {"S": 'q{"},"table":"x'}, "n": {"N": "-1"}}).encode())
    # WHEN written as a snapshot line
    line = snapshot_line("orders", key, b'{"a":1}')
    # THEN it is valid JSON with null change fields, and its key reads back exactly
    assert json.loads(line) == {
        "keys": {"n": -1, "pk": 'q{"},"table":"x'},
        "table": "orders",
        "item": {"a": 1},
        "event_id": None,
        "event_time": None,
        "sequence_number": None,
    }
    assert base_key(line) == key


def test_a_line_we_did_not_write_has_no_base_key() -> None:
    # GIVEN lines in another field order or not JSON WHEN read as base lines THEN no key is taken
    assert base_key(b'{"table":"orders","keys":{"pk":"a"},"item":{}}') is None
    assert base_key(b'{"keys":{"pk":{"S":"a"}},"table":"orders"}') is None
    assert base_key(b"garbage") is None


def test_line_and_paragraph_separators_are_escaped_so_each_item_is_one_line() -> None:
    # GIVEN a change whose key and item hold U+2028 and U+2029 (valid inside JSON strings)
    line = change("p\u2028k", AT, 7, note="a\u2029b").line
    # WHEN it becomes a snapshot line
    key, _, _, snapshot = change_entry(line, table="orders", day=DAY)
    # THEN neither is written raw, str.splitlines sees one line, and the values are unchanged
    assert "\u2028" not in snapshot.decode()
    assert "\u2029" not in snapshot.decode()
    assert len(snapshot.decode().splitlines()) == 1
    assert exact(snapshot)["item"]["note"] == "a\u2029b"
    assert exact(snapshot)["keys"]["pk"] == "p\u2028k"
    assert base_key(snapshot) == key


@given(pk=st.text(min_size=1, max_size=12), sk=st.text(min_size=1, max_size=6))
def test_the_fast_key_of_a_change_with_string_keys_is_its_canonical_key(pk: str, sk: str) -> None:
    # GIVEN a change whose keys are strings (any text: quotes, escapes, non-ASCII, line separators)
    line = change(pk, AT, 10**20, sk=sk).line
    # WHEN its key is read fast THEN it is the key the full parse gives
    assert change_key_hint(line) == change_entry(line, table="orders", day=DAY)[0]


def test_the_fast_key_gives_up_on_number_keys_and_on_what_is_not_a_change() -> None:
    # GIVEN a change keyed by a number, and lines that are not changes
    numbered = change("a", AT, 10**20, keys={"id": {"N": FRACTION}}).line
    # WHEN their keys are read fast THEN there is none: the full parse decides
    assert [change_key_hint(line) for line in (numbered, b"[1]", b"{", b'{"keys":{}}')] == [None] * 4
