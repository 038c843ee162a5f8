"""Every path of the aggregator that does not put a record in raw/, on a real moto server."""

from __future__ import annotations

import gzip
import json
import random
from typing import Any

import orjson
import pytest

from changelake.formats.envelope import claim_body
from changelake.ingest.aggregator import Aggregator, AggregatorResult
from changelake.integrations.s3 import S3Store
from changelake_testing.stream_records import change_batch
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.fakes import FailingPutS3
from tests.functional.helpers import read_jsonl_gz, sqs_event

HOUR = 3600.0


def _forward(
    stack: Stack, load_handler: HandlerLoader, context: FakeLambdaContext, records: list[Any]
) -> list[Any]:
    consumer = load_handler("stream_consumer", stack.environment)
    assert consumer.lambda_handler({"Records": records}, context) == {"batchItemFailures": []}
    return stack.drain()


def test_redelivery_rewrites_the_same_keys(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN an SQS batch of changes across two hours
    messages = _forward(
        stack, load_handler, lambda_context, change_batch(random.Random(1), 300, span_seconds=2 * HOUR)
    )
    aggregator = load_handler("aggregator", stack.environment)
    event = sqs_event(messages)

    # WHEN it is delivered twice
    aggregator.lambda_handler(event, lambda_context)
    first = sorted(stack.keys("raw/"))
    aggregator.lambda_handler(event, lambda_context)

    # THEN the second delivery wrote exactly the same keys, with the same bytes
    assert sorted(stack.keys("raw/")) == first
    assert len(first) == 2
    for key in first:
        versions = stack.s3.list_object_versions(Bucket=stack.bucket, Prefix=key)["Versions"]
        assert len({version["ETag"] for version in versions}) == 1


def test_a_failed_partition_write_fails_exactly_the_messages_with_records_in_it(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN one message of hour 12 records and one of hour 13 records, and S3 refusing hour 13
    early = _forward(stack, load_handler, lambda_context, change_batch(random.Random(2), 20, span_seconds=60))
    late = _forward(
        stack,
        load_handler,
        lambda_context,
        change_batch(
            random.Random(3), 20, start=1_795_780_800.0 + HOUR, span_seconds=60, first_sequence=10**21
        ),
    )
    (late_message,) = late
    failing = FailingPutS3(stack.s3, "raw/orders/dt=2026-11-27/hour=13/")
    aggregator = Aggregator(S3Store(stack.bucket, client=failing))

    # WHEN the batch is processed
    result = aggregator.process(sqs_event(early + late)["Records"])

    # THEN only the hour-13 message is reported failed, and hour 12 is stored
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": late_message["MessageId"]}]}
    assert [key.split("/")[3] for key in stack.keys("raw/")] == ["hour=12"]


def test_an_unreadable_body_is_quarantined_with_its_message_id_not_retried(stack: Stack) -> None:
    # GIVEN a message that is not a changelake envelope
    event = sqs_event([{"MessageId": "m-bad", "ReceiptHandle": "r", "Body": "hello, not an envelope"}])

    # WHEN the aggregator processes it
    result = Aggregator(S3Store(stack.bucket, client=stack.s3)).process(event["Records"])

    # THEN it is acknowledged (not blocking the queue) and kept in quarantine with the message ID
    assert result.response() == {"batchItemFailures": []}
    (key,) = stack.keys("quarantine/")
    assert key.startswith("quarantine/_/dt=")
    (entry,) = read_jsonl_gz(stack, key)
    assert entry == {
        "reason": "message body is not JSON",
        "record_id": entry["record_id"],
        "record": "hello, not an envelope",
        "message_id": "m-bad",
    }


def test_an_unreadable_body_whose_quarantine_write_fails_is_reported_failed(stack: Stack) -> None:
    # GIVEN an unreadable message and S3 refusing quarantine writes
    event = sqs_event([{"MessageId": "m-bad", "ReceiptHandle": "r", "Body": "{}"}])
    failing = FailingPutS3(stack.s3, "quarantine/")

    # WHEN the aggregator processes it
    result = Aggregator(S3Store(stack.bucket, client=failing)).process(event["Records"])

    # THEN the message is reported failed so SQS redelivers it
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}


def test_a_line_that_is_not_a_change_record_is_quarantined_and_the_rest_stored(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a valid envelope holding one line without an event_time among valid records
    from changelake.formats.change_line import to_change_line
    from changelake.formats.envelope import MessagePacker

    records = change_batch(random.Random(4), 3)
    lines = [to_change_line(record).line for record in records]
    lines.insert(1, b'{"event_id": "x", "table": "orders"}')
    (packed,) = list(MessagePacker(262_144).pack(enumerate(lines)))
    event = sqs_event([{"MessageId": "m-1", "ReceiptHandle": "r", "Body": packed.body}])  # type: ignore[union-attr]

    # WHEN the aggregator processes it
    result = Aggregator(S3Store(stack.bucket, client=stack.s3)).process(event["Records"])

    # THEN the message succeeds, three records are in raw/ and the odd line in quarantine
    assert result.response() == {"batchItemFailures": []}
    assert result.records_stored == 3
    (key,) = stack.keys("quarantine/")
    (entry,) = read_jsonl_gz(stack, key)
    assert entry["reason"] == "change record has no valid event_time"
    assert json.loads(str(entry["record"]))["event_id"] == "x"


def test_a_claim_check_whose_object_is_gone_is_quarantined(stack: Stack) -> None:
    # GIVEN a claim-check body pointing at an object that expired
    body = claim_body("claims/ab/" + "ab" * 32 + ".jsonl.gz", "ab" * 32)
    event = sqs_event([{"MessageId": "m-claim", "ReceiptHandle": "r", "Body": body}])

    # WHEN the aggregator processes it
    result = Aggregator(S3Store(stack.bucket, client=stack.s3)).process(event["Records"])

    # THEN the body is kept in quarantine with the reason, and the message is not retried forever
    assert result.response() == {"batchItemFailures": []}
    (key,) = stack.keys("quarantine/")
    (entry,) = read_jsonl_gz(stack, key)
    assert "is missing" in str(entry["reason"])
    assert entry["message_id"] == "m-claim"


def test_a_claim_check_that_cannot_be_read_now_is_retried(stack: Stack) -> None:
    # GIVEN a claim-check body and a bucket that does not exist (S3 unavailable to this function)
    body = claim_body("claims/ab/" + "ab" * 32 + ".jsonl.gz", "ab" * 32)
    event = sqs_event([{"MessageId": "m-claim", "ReceiptHandle": "r", "Body": body}])
    stack.s3.create_bucket(Bucket="other-bucket")

    # WHEN the aggregator reads through a store whose GETs are refused
    class DeniedGets:
        def __init__(self, real: Any) -> None:
            self.real = real

        def get_object(self, **kwargs: Any) -> Any:
            from tests.functional.fakes import client_error

            raise client_error("AccessDenied", "GetObject", status=403)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    result = Aggregator(S3Store(stack.bucket, client=DeniedGets(stack.s3))).process(event["Records"])

    # THEN the message is reported failed (it may be readable on retry), nothing quarantined
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": "m-claim"}]}
    assert stack.keys("quarantine/") == []


def test_a_rejected_line_with_a_readable_table_and_event_time_is_filed_under_them(stack: Stack) -> None:
    # GIVEN a change line whose sequence number is broken but whose table and event time are readable
    from changelake.formats.change_line import to_change_line
    from changelake.formats.envelope import MessagePacker

    (record,) = change_batch(random.Random(5), 1)
    line = to_change_line(record).line.replace(b'"sequence_number":"', b'"sequence_number":"x')
    (packed,) = list(MessagePacker(262_144).pack([(0, line)]))
    event = sqs_event([{"MessageId": "m-2", "ReceiptHandle": "r", "Body": packed.body}])  # type: ignore[union-attr]

    # WHEN the aggregator processes it
    result = Aggregator(S3Store(stack.bucket, client=stack.s3)).process(event["Records"])

    # THEN it is quarantined in its table's folder for the day the change happened
    assert result.quarantined == 1
    (key,) = stack.keys("quarantine/")
    assert key.startswith("quarantine/orders/dt=2026-11-27/")


#: Deeper than json.loads can recurse (it gives up near 995 levels), as a foreign or corrupted body may be.
PAST_RECURSION = 5000


def _aggregate_lines(stack: Stack, lines: list[bytes], message_id: str) -> AggregatorResult:
    """``lines`` in one valid envelope, as one message, through the aggregator."""
    from changelake.formats.envelope import MessagePacker

    (packed,) = list(MessagePacker(262_144).pack(enumerate(lines)))
    event = sqs_event([{"MessageId": message_id, "ReceiptHandle": "r", "Body": packed.body}])  # type: ignore[union-attr]
    return Aggregator(S3Store(stack.bucket, client=stack.s3)).process(event["Records"])


def test_a_body_nested_past_the_recursion_limit_is_quarantined_and_its_neighbours_stored(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN two good messages and, between them, a body nested 5,000 levels deep
    good = _forward(stack, load_handler, lambda_context, change_batch(random.Random(6), 40, span_seconds=60))
    deep = '{"v":1,"kind":"batch","count":1,"data":' + "[" * PAST_RECURSION + "]" * PAST_RECURSION + "}"
    poisoned = {"MessageId": "m-deep", "ReceiptHandle": "r", "Body": deep}
    messages = [*good[:1], poisoned, *good[1:]]
    assert len(messages) >= 2

    # WHEN the aggregator handler processes the batch
    aggregator = load_handler("aggregator", stack.environment)
    response = aggregator.lambda_handler(sqs_event(messages), lambda_context)

    # THEN no message is reported failed: the good records are in raw/, the deep body in quarantine
    assert response == {"batchItemFailures": []}
    stored = [record for key in stack.keys("raw/") for record in read_jsonl_gz(stack, key)]
    assert len(stored) == 40
    (key,) = stack.keys("quarantine/")
    assert key.startswith("quarantine/_/")
    (entry,) = read_jsonl_gz(stack, key)
    assert (entry["message_id"], entry["record"]) == ("m-deep", deep)
    assert entry["reason"] == "message body is not JSON"


def test_a_line_nested_past_the_recursion_limit_is_quarantined_and_the_rest_stored(stack: Stack) -> None:
    # GIVEN a valid envelope whose second line nests 5,000 levels deep, among valid change lines
    from changelake.formats.change_line import to_change_line

    lines = [to_change_line(record).line for record in change_batch(random.Random(7), 3)]
    deep = (
        b'{"event_id":"x","table":"orders","nested":' + b"[" * PAST_RECURSION + b"]" * PAST_RECURSION + b"}"
    )
    lines.insert(1, deep)

    # WHEN the aggregator processes it
    result = _aggregate_lines(stack, lines, "m-3")

    # THEN the message succeeds: three records in raw/, the deep line in quarantine with the reason
    assert result.response() == {"batchItemFailures": []}
    assert (result.records_stored, result.quarantined) == (3, 1)
    (key,) = stack.keys("quarantine/")
    (entry,) = read_jsonl_gz(stack, key)
    assert entry["reason"] == "not a JSON change record: nested deeper than 512 levels"
    assert entry["record"] == deep.decode()


@pytest.mark.parametrize(
    ("constant", "reason"),
    [
        (b"NaN", "not a JSON change record: NaN is not strict JSON"),
        (b"-Infinity", "not a JSON change record: -Infinity is not strict JSON"),
    ],
)
def test_a_line_that_is_not_strict_json_is_quarantined_and_never_reaches_raw(
    stack: Stack, constant: bytes, reason: str
) -> None:
    # GIVEN a valid envelope with a change line whose userIdentity holds NaN or -Infinity (what
    # json.dumps writes by default), among valid change lines
    from changelake.formats.change_line import to_change_line

    lines = [to_change_line(record).line for record in change_batch(random.Random(8), 3)]
    lines[1] = lines[1].replace(b'"user_identity":null', b'"user_identity":{"n":' + constant + b"}")

    # WHEN the aggregator processes it
    result = _aggregate_lines(stack, lines, "m-4")

    # THEN the line is quarantined (in its table's folder) with the reason, the others stored
    assert result.response() == {"batchItemFailures": []}
    assert (result.records_stored, result.quarantined) == (2, 1)
    (key,) = stack.keys("quarantine/")
    assert key.startswith("quarantine/orders/dt=2026-11-27/")
    # AND every line written, in raw/ and quarantine/, is strict JSON (a strict parser reads it)
    objects = [gzip.decompress(stack.read(key)) for key in stack.keys("")]
    written = [orjson.loads(line) for content in objects for line in content.splitlines()]
    assert len(written) == 3
    (entry,) = [line for line in written if "reason" in line]
    assert (entry["reason"], entry["record"]) == (reason, lines[1].decode())
