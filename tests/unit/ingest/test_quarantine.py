"""Quarantine: rejected records kept whole with their reason, grouped by folder, content-named."""

from __future__ import annotations

import gzip
import json
from datetime import date
from typing import Any

import orjson

from changelake.formats.layout import UNKNOWN_TABLE
from changelake.ingest.quarantine import QuarantinedRecord, QuarantineWriter, group_by_folder
from changelake.integrations.s3 import S3Store

DAY = date(2026, 11, 28)


class RecordingS3Client:
    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.puts.append(kwargs)
        return {"ETag": '"etag"'}


def test_line_holds_reason_record_and_context() -> None:
    # GIVEN a rejected stream record with a reason and a context
    original = {"eventID": "e1", "dynamodb": {"NewImage": {"a": {"X": "1"}}}}
    quarantined = QuarantinedRecord(
        "orders", DAY, "new_image.a: unknown type tag 'X'", original, {"message_id": "m-1"}
    )
    # WHEN turned into its line
    line = quarantined.line()
    # THEN it is one JSON line with the reason, the original record unchanged, and the context
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {
        "reason": "new_image.a: unknown type tag 'X'",
        "record_id": quarantined.record_id,
        "record": original,
        "message_id": "m-1",
    }


def test_line_keeps_lone_surrogates_and_unicode() -> None:
    # GIVEN a record whose strings hold a lone surrogate and non-ASCII text
    original = {"eventID": "bad\ud800id", "name": "Zürich 🦆"}
    # WHEN turned into a line
    line = QuarantinedRecord("orders", DAY, "lone surrogate", original).line()
    # THEN the line is ASCII (escaped) and reads back to exactly the same strings
    assert line.isascii()
    assert json.loads(line)["record"] == original


def test_line_keeps_non_json_records_as_text() -> None:
    # GIVEN an SQS body that was not JSON at all
    # WHEN quarantined THEN the body is kept as a string
    line = QuarantinedRecord(UNKNOWN_TABLE, DAY, "message body is not JSON", "{oops").line()
    assert json.loads(line)["record"] == "{oops"


def test_a_record_strict_json_cannot_hold_is_kept_as_its_json_text_in_a_strict_line() -> None:
    # GIVEN a stream record whose userIdentity holds NaN and Infinity
    original = {"eventID": "e1", "userIdentity": {"a": float("nan"), "b": [float("inf"), float("-inf")]}}
    # WHEN turned into a line
    line = QuarantinedRecord("orders", DAY, "userIdentity is not strict JSON", original).line()
    # THEN the line is strict JSON (a strict parser reads it), the record its JSON text, marked so
    document = orjson.loads(line)
    assert document["record"] == '{"eventID":"e1","userIdentity":{"a":NaN,"b":[Infinity,-Infinity]}}'
    assert document["record_format"] == "json-text"
    assert document["reason"] == "userIdentity is not strict JSON"


def test_a_record_nested_past_the_recursion_limit_is_kept_as_its_json_text() -> None:
    # GIVEN a stream record nested 5,000 levels deep, which json.dumps cannot write
    original: Any = {"S": "leaf"}
    for _ in range(5000):
        original = {"M": {"k": original}}
    # WHEN turned into a line
    line = QuarantinedRecord("orders", DAY, "too deep", original, {"message_id": "m-1"}).line()
    # THEN the line holds the record's compact JSON text, marked as text, with reason and context
    document = json.loads(line)
    assert document["record"] == '{"M":{"k":' * 5000 + '{"S":"leaf"}' + "}}" * 5000
    assert (document["record_format"], document["reason"], document["message_id"]) == (
        "json-text",
        "too deep",
        "m-1",
    )


def test_group_by_folder_keeps_input_order() -> None:
    # GIVEN records of two tables, two days and one with no table
    a1 = QuarantinedRecord("orders", DAY, "r", 1)
    b1 = QuarantinedRecord("inventory", DAY, "r", 2)
    a2 = QuarantinedRecord("orders", date(2026, 11, 29), "r", 3)
    a3 = QuarantinedRecord("orders", DAY, "r", 4)
    unknown = QuarantinedRecord("", DAY, "r", 5)
    # WHEN grouped
    groups = group_by_folder([a1, b1, a2, a3, unknown])
    # THEN each folder (table, day) holds its records in input order; no table goes to "_"
    assert groups == {
        ("orders", DAY): [a1, a3],
        ("inventory", DAY): [b1],
        ("orders", date(2026, 11, 29)): [a2],
        (UNKNOWN_TABLE, DAY): [unknown],
    }


def test_writer_key_is_content_derived_and_stable() -> None:
    # GIVEN a writer and two records
    client = RecordingS3Client()
    writer = QuarantineWriter(S3Store("bucket", client=client), "quarantine")
    records = [QuarantinedRecord("orders", DAY, "bad", {"n": i}) for i in range(2)]
    # WHEN the same records are written twice, and different records once
    first = writer.write_folder("orders", DAY, records)
    again = writer.write_folder("orders", DAY, list(records))
    other = writer.write_folder("orders", DAY, records[:1])
    # THEN the same content gets the same key under quarantine/<table>/dt=<day>/, other content another
    assert first == again
    assert first != other
    assert first.startswith("quarantine/orders/dt=2026-11-28/")
    assert first.endswith(".jsonl.gz")
    # AND the object is gzip JSON Lines of every record, byte-identical on both writes
    assert client.puts[0]["Key"] == first
    assert client.puts[0]["Body"] == client.puts[1]["Body"]
    lines = gzip.decompress(client.puts[0]["Body"]).splitlines()
    assert [json.loads(line)["record"] for line in lines] == [{"n": 0}, {"n": 1}]
    assert all(json.loads(line)["reason"] == "bad" for line in lines)


def test_record_id_names_the_record_and_its_source_whatever_its_batch_or_reason() -> None:
    # GIVEN one poison record quarantined twice (a redelivery of its message, with another reason),
    # the same record with its keys in another order, a different record, and the same record
    # carried by another message
    original = {"eventID": "e1", "dynamodb": {"Keys": {"pk": {"X": "1"}}, "SequenceNumber": "1"}}
    reordered = {"dynamodb": {"SequenceNumber": "1", "Keys": {"pk": {"X": "1"}}}, "eventID": "e1"}
    first = QuarantinedRecord("orders", DAY, "unknown type tag", original, {"message_id": "m-1"})
    again = QuarantinedRecord("orders", DAY, "another reason", original, {"message_id": "m-1"})
    same = QuarantinedRecord("orders", DAY, "unknown type tag", reordered, {"message_id": "m-1"})
    other = QuarantinedRecord("orders", DAY, "unknown type tag", {**original, "eventID": "e2"})
    elsewhere = QuarantinedRecord("orders", DAY, "unknown type tag", original, {"message_id": "m-2"})

    # WHEN their ids are compared THEN equal records from one source share one id, others do not
    assert first.record_id == again.record_id == same.record_id
    assert other.record_id != first.record_id
    assert elsewhere.record_id != first.record_id
    assert len(first.record_id) == 32


def test_a_record_twice_in_one_folder_is_written_once() -> None:
    # GIVEN a batch holding the same poison record twice (a redelivered stream record), and another
    client = RecordingS3Client()
    records = [
        QuarantinedRecord("orders", DAY, "bad", {"eventID": "e1"}),
        QuarantinedRecord("orders", DAY, "bad", {"eventID": "e2"}),
        QuarantinedRecord("orders", DAY, "bad", {"eventID": "e1"}),
    ]

    # WHEN the folder is written
    QuarantineWriter(S3Store("bucket", client=client), "quarantine").write_folder("orders", DAY, records)

    # THEN its object holds each distinct record once
    (put,) = client.puts
    lines = [json.loads(line) for line in gzip.decompress(put["Body"]).splitlines()]
    assert [line["record"]["eventID"] for line in lines] == ["e1", "e2"]


def test_a_rejected_record_is_filed_under_what_is_readable_else_the_unknown_table_and_today() -> None:
    # GIVEN a readable table and day, then neither
    readable = QuarantinedRecord.filed({"a": 1}, "bad", table="orders", day=DAY, today=date(2026, 12, 1))
    unreadable = QuarantinedRecord.filed("{oops", "not JSON", today=date(2026, 12, 1), context={"m": "1"})

    # WHEN / THEN the first keeps its folder; the second goes to the reserved folder of the processing day
    assert (readable.table, readable.day, readable.reason) == ("orders", DAY, "bad")
    assert (unreadable.table, unreadable.day, unreadable.context) == (
        UNKNOWN_TABLE,
        date(2026, 12, 1),
        {"m": "1"},
    )
