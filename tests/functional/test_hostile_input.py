"""The hostile-input corpus (tests/functional/corpus/) through the real handlers on moto.

Each case: quarantine with a reason, or a clear error naming the field; the rest of its batch
unaffected; nothing lost (records in == records stored in raw/ + distinct records quarantined).

- ``stream_records.jsonl``: stream records, each a change applied to a good record (``set``,
  ``delete``) or a whole ``record``; ``expect`` is ``stored`` or ``quarantine``. Sent in one batch,
  each hostile record between two good ones, through the consumer and then the aggregator.
- ``sqs_bodies.jsonl``: SQS bodies that are not ours, truncated, of another version, claim checks
  to missing or altered objects, envelopes holding hostile lines (``lines_b64``, between two good
  lines); ``expect`` counts what is stored and quarantined of each message.
- ``manual_events.jsonl``: events for every function with a field wrong; ``field`` is the name
  the error must carry.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from changelake.exceptions import InvalidEventError
from changelake.formats.change_line import to_change_line
from changelake.formats.envelope import MessagePacker, PackedMessage, claim_body, claim_payload
from changelake_testing.stream_records import change_batch, stream_record
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.helpers import sqs_event

CORPUS = Path(__file__).parent / "corpus"
START = 1_795_780_800.0  # 2026-11-27T12:00:00Z


def corpus(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CORPUS / name).read_text(encoding="utf-8").splitlines()]


STREAM_CASES = corpus("stream_records.jsonl")
SQS_CASES = corpus("sqs_bodies.jsonl")
MANUAL_CASES = corpus("manual_events.jsonl")


def good_record(sequence: int) -> dict[str, Any]:
    keys = {"pk": {"S": f"customer#{sequence}"}, "sk": {"S": "order#1"}}
    image = {**keys, "x": {"S": "value"}, "n": {"N": "1.5"}}
    return stream_record(
        table="orders",
        event_name="MODIFY",
        sequence_number=sequence,
        created=START + sequence % 3000,
        keys=keys,
        new_image=image,
        old_image=image,
    )


def hostile_record(case: dict[str, Any], sequence: int) -> Any:
    """The case's record: a whole ``record``, or a good record with ``set`` and ``delete`` applied."""
    if "record" in case:
        return copy.deepcopy(case["record"])
    record = good_record(sequence)
    for path in case.get("delete", []):
        parent = record
        for name in path[:-1]:
            parent = parent[name]
        del parent[path[-1]]
    for path, value in case.get("set", []):
        parent = record
        for name in path[:-1]:
            parent = parent[name]
        parent[path[-1]] = value
    return record


def oversized_record(sequence: int) -> dict[str, Any]:
    """A 400 KB item (DynamoDB's limit) with both images: far past one SQS message."""
    keys = {"pk": {"S": f"customer#{sequence}"}, "sk": {"S": "order#1"}}
    text = base64.b64encode(random.Random(sequence).randbytes(290_000)).decode()  # incompressible
    image = {**keys, "blob": {"S": text}}
    return stream_record(
        table="orders",
        event_name="MODIFY",
        sequence_number=sequence,
        created=START,
        keys=keys,
        new_image=image,
        old_image={**image, "blob": {"S": text[::-1]}},
    )


def quarantined(stack: Stack) -> dict[str, dict[str, Any]]:
    """Every distinct quarantined record, by record_id."""
    entries: dict[str, dict[str, Any]] = {}
    for key in stack.keys("quarantine/"):
        for line in gzip.decompress(stack.read(key)).decode().splitlines():
            entry = json.loads(line)
            entries.setdefault(entry["record_id"], {**entry, "key": key})
    return entries


def raw_lines(stack: Stack) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for key in stack.keys("raw/")
        for line in gzip.decompress(stack.read(key)).decode().splitlines()
    ]


# ---------------------------------------------------------------- stream records


def test_the_corpus_covers_every_kind_of_hostile_input_the_issue_names() -> None:
    # GIVEN the three corpus files WHEN their cases are counted THEN each kind is there
    names = " ".join(case["case"] for case in STREAM_CASES + SQS_CASES).lower()
    for kind in ("missing", "a string", "unknown", "base64", "39", "9.99e+125", "surrogate", "utf-8"):
        assert kind in names, kind
    for kind in ("another event source", "not json", "truncated", "version 2", "missing object", "altered"):
        assert kind in names, kind
    for kind in (
        "table name ../",
        "table name with =",
        "table name unicode",
        "table name empty",
        "key value",
    ):
        assert kind in names, kind
    assert {case["function"] for case in MANUAL_CASES} == {
        "compaction",
        "dlq_redrive",
        "stream_consumer",
        "aggregator",
    }


def test_every_hostile_stream_record_is_quarantined_or_stored_and_its_batch_flows_on(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN one batch: every corpus record between two good ones, and a 400 KB item with both images
    batch: list[Any] = []
    hostile: dict[str, tuple[dict[str, Any], Any]] = {}
    sequence = 10**20
    for case in STREAM_CASES:
        record = hostile_record(case, sequence + 1)
        batch += [good_record(sequence), record, good_record(sequence + 2)]
        hostile[case["case"]] = (case, record)
        sequence += 3
    batch.append(oversized_record(sequence))
    goods = {record["eventID"] for record in batch[::3]} | {batch[-1]["eventID"]}

    # WHEN it goes through the consumer, and its messages through the aggregator
    consumer = load_handler("stream_consumer", stack.environment)
    aggregator = load_handler("aggregator", stack.environment)
    assert consumer.lambda_handler({"Records": batch}, lambda_context) == {"batchItemFailures": []}
    messages = stack.drain()
    assert aggregator.lambda_handler(sqs_event(messages), lambda_context) == {"batchItemFailures": []}

    # THEN every good record is in raw/, each case went where it should, with a reason, and
    # nothing is lost: records in == stored + distinct records quarantined
    stored = {line["event_id"]: line for line in raw_lines(stack)}
    entries = quarantined(stack)
    by_record = {json.dumps(entry["record"], sort_keys=True): entry for entry in entries.values()}
    wrong: dict[str, str] = {}
    for name, (case, record) in hostile.items():
        entry = by_record.get(json.dumps(record, sort_keys=True))
        in_raw = isinstance(record, dict) and record.get("eventID") in stored
        if case["expect"] == "stored" and (not in_raw or entry is not None):
            wrong[name] = f"expected stored; in raw {in_raw}, quarantined {entry}"
        if case["expect"] == "quarantine" and (entry is None or in_raw or not entry["reason"]):
            wrong[name] = f"expected quarantine; in raw {in_raw}, quarantined {entry}"
    assert wrong == {}
    assert goods <= set(stored)
    assert len(stored) + len(entries) == len(batch)
    assert stored[batch[-1]["eventID"]]["new_image"]["blob"] == batch[-1]["dynamodb"]["NewImage"]["blob"]["S"]
    assert stack.keys("claims/")  # the 400 KB change travelled as a claim check


def test_quarantined_stream_records_never_leave_their_folder(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN every corpus record whose table name is hostile
    cases = [case for case in STREAM_CASES if case["case"].startswith("table name")]
    records = [hostile_record(case, 10**20 + index) for index, case in enumerate(cases)]

    # WHEN the consumer quarantines them
    consumer = load_handler("stream_consumer", stack.environment)
    assert consumer.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}

    # THEN every object is under quarantine/_/dt=<day>/ (the unknown-table folder), nowhere else
    keys = stack.keys()
    assert keys
    assert all(key.startswith("quarantine/_/dt=2026-11-27/") and key.count("/") == 3 for key in keys)
    assert len(quarantined(stack)) == len(cases)


def test_an_empty_batch_writes_and_sends_nothing(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN empty batches WHEN both hot handlers get them THEN they succeed and touch nothing
    consumer = load_handler("stream_consumer", stack.environment)
    aggregator = load_handler("aggregator", stack.environment)
    assert consumer.lambda_handler({"Records": []}, lambda_context) == {"batchItemFailures": []}
    assert aggregator.lambda_handler({"Records": []}, lambda_context) == {"batchItemFailures": []}
    assert stack.keys() == []
    assert stack.drain() == []


# ---------------------------------------------------------------- SQS bodies


def good_lines(first_sequence: int) -> list[bytes]:
    records = change_batch(random.Random(first_sequence), 2, start=START, first_sequence=first_sequence)
    return [to_change_line(record).line for record in records]


def envelope(lines: list[bytes], **overrides: Any) -> str:
    """A batch body holding ``lines`` (packed as the consumer packs them), with fields overridden."""
    (packed,) = MessagePacker(1_048_576).pack(enumerate(lines))
    assert isinstance(packed, PackedMessage)
    document = json.loads(packed.body)
    if overrides.pop("truncate_gzip", False):
        compressed = base64.b64decode(document["data"])
        document["data"] = base64.b64encode(compressed[: len(compressed) // 2]).decode()
    document.update(overrides)
    return json.dumps(document)


def claim(stack: Stack, how: str, lines: list[bytes]) -> str:
    """A claim-check body whose object is missing, altered, not gzip, or whose digest is short."""
    payload, digest = claim_payload(lines[0])
    key = f"claims/{digest[:2]}/{digest}.jsonl.gz"
    if how == "altered":
        payload = gzip.compress(lines[0][:-1] + b',"altered":true}', mtime=0)
    if how == "not gzip":
        payload = lines[0]
    if how != "missing":
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=payload)
    return claim_body(key, digest[:10] if how == "short sha" else digest)


def body_of(stack: Stack, case: dict[str, Any], lines: list[bytes]) -> tuple[str, int]:
    """The case's SQS body and how many records it carries (1 for a body that is not readable)."""
    if "body" in case:
        return case["body"], 1
    if case.get("truncate"):
        text = envelope(lines)
        return text[: len(text) // 2], 1
    if "envelope" in case:
        return envelope(lines, **case["envelope"]), 1
    if "claim" in case:
        return claim(stack, case["claim"], lines), 1
    hostile = [base64.b64decode(text) for text in case["lines_b64"]]
    return envelope([lines[0], *hostile, lines[1]]), 2 + len(hostile)


def test_every_hostile_sqs_body_is_quarantined_or_stored_and_its_batch_flows_on(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN one SQS batch: each corpus body as its own message, each between two good messages
    messages: list[dict[str, Any]] = []
    carried: dict[str, int] = {}
    sequence = 10**21
    for case in SQS_CASES:
        lines = good_lines(sequence)
        body, count = body_of(stack, case, good_lines(sequence + 5))
        message_id = hashlib.sha256(case["case"].encode()).hexdigest()[:16]
        carried[message_id] = count
        messages.append({"MessageId": f"good-{sequence}", "ReceiptHandle": "r", "Body": envelope(lines[:1])})
        messages.append({"MessageId": message_id, "ReceiptHandle": "r", "Body": body})
        messages.append(
            {"MessageId": f"good-{sequence + 1}", "ReceiptHandle": "r", "Body": envelope(lines[1:])}
        )
        sequence += 10
    goods = 2 * len(SQS_CASES)

    # WHEN the aggregator processes the batch
    aggregator = load_handler("aggregator", stack.environment)
    response = aggregator.lambda_handler(sqs_event(messages), lambda_context)

    # THEN no message is left to retry, each case's records are stored or quarantined as expected,
    # and nothing is lost: records in == stored + quarantined
    assert response == {"batchItemFailures": []}
    stored = raw_lines(stack)
    entries = quarantined(stack)
    quarantined_of = {mid: sum(1 for e in entries.values() if e.get("message_id") == mid) for mid in carried}
    wrong: dict[str, Any] = {}
    for case in SQS_CASES:
        message_id = hashlib.sha256(case["case"].encode()).hexdigest()[:16]
        expected_quarantined = case["expect"].get("quarantined", 0)
        expected_stored = case["expect"].get("stored", 0)
        if quarantined_of[message_id] != expected_quarantined:
            wrong[case["case"]] = ("quarantined", quarantined_of[message_id], expected_quarantined)
        if expected_stored + expected_quarantined != carried[message_id]:
            wrong[case["case"]] = ("corpus expectation does not add up", case["expect"], carried[message_id])
    assert wrong == {}
    assert all(entry["reason"] for entry in entries.values())
    expected_in_raw = goods + sum(case["expect"].get("stored", 0) for case in SQS_CASES)
    assert len(stored) == expected_in_raw
    assert len(stored) + len(entries) == goods + sum(carried.values())


# ---------------------------------------------------------------- manual events


@pytest.mark.parametrize(
    "case",
    MANUAL_CASES,
    ids=[f"{case['function']}:{json.dumps(case['event'])}"[:80] for case in MANUAL_CASES],
)
def test_a_malformed_manual_event_is_refused_naming_the_field_and_changes_nothing(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext, case: dict[str, Any]
) -> None:
    # GIVEN the function, and an event with one field wrong
    handler = load_handler(case["function"], stack.environment)

    # WHEN it is invoked with the event
    with pytest.raises(InvalidEventError) as refused:
        handler.lambda_handler(case["event"], lambda_context)

    # THEN the error names the field, and nothing was written or sent
    assert refused.value.field == case["field"]
    assert stack.keys() == []
    assert stack.drain() == []
