"""The spine end to end on a moto server: stream batch -> consumer -> SQS -> aggregator -> raw/."""

from __future__ import annotations

import json
import random
from collections import Counter
from decimal import Decimal

from changelake.formats.layout import Partition
from changelake_testing.stream_records import change_batch
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.helpers import read_jsonl_gz, reference_image, sqs_event

HOUR = 3600.0


def test_thousand_changes_over_three_hours_and_two_tables_land_in_their_partitions(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN 1,000 changes of about 1 KB across three hours and two tables
    records = change_batch(random.Random(7), 1000, tables=("orders", "users"), span_seconds=3 * HOUR - 1)
    consumer = load_handler("stream_consumer", stack.environment)
    aggregator = load_handler("aggregator", stack.environment)

    # WHEN the consumer forwards them and the aggregator drains the queue
    response = consumer.lambda_handler({"Records": records}, lambda_context)
    requests = consumer.consumer.queue.requests
    messages = stack.drain()
    stored = aggregator.lambda_handler(sqs_event(messages), lambda_context)

    # THEN nothing failed, at least 500 changes travelled per SQS request
    assert response == {"batchItemFailures": []}
    assert stored == {"batchItemFailures": []}
    assert requests >= 1
    assert len(records) / requests >= 500
    # AND every event_id is in its event-time partition, with values equal to the input
    found: dict[str, tuple[str, dict[str, object]]] = {}
    for key in stack.keys("raw/"):
        for record in read_jsonl_gz(stack, key):
            found[str(record["event_id"])] = (key, record)
    assert len(found) == len(records)
    partitions: Counter[str] = Counter()
    for source in records:
        key, record = found[source["eventID"]]
        partition = Partition.of_event_time(str(record["table"]), str(record["event_time"]))
        assert key.startswith(partition.prefix("raw"))
        partitions[partition.path] += 1
        stream = source["dynamodb"]
        assert record["event_name"] == source["eventName"]
        assert record["sequence_number"] == stream["SequenceNumber"]
        assert record["keys"] == reference_image(stream["Keys"])
        assert record["new_image"] == reference_image(stream.get("NewImage"))
        assert record["old_image"] == reference_image(stream.get("OldImage"))
        assert record["size_bytes"] == stream["SizeBytes"]
        assert record["user_identity"] == source.get("userIdentity")
    assert len(partitions) == 6  # 3 hours x 2 tables


def test_thirty_eight_digit_numbers_survive_exactly(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN the sample stream event, whose items carry 38-digit numbers
    with open("events/stream_batch.json") as file:
        event = json.load(file)
    consumer = load_handler("stream_consumer", stack.environment)
    aggregator = load_handler("aggregator", stack.environment)

    # WHEN it flows through consumer and aggregator
    consumer.lambda_handler(event, lambda_context)
    aggregator.lambda_handler(sqs_event(stack.drain()), lambda_context)

    # THEN the text of every number is exactly the input's
    texts = [line for key in stack.keys("raw/") for line in read_jsonl_gz(stack, key)]
    first = next(record for record in texts if record["event_name"] == "INSERT")
    assert first["new_image"]["price"] == Decimal("12345678901234567890123456789012345678")
    assert first["new_image"]["ratio"] == Decimal("0.1234567890123456789012345678901234567")
    assert first["new_image"]["huge"] == Decimal("9.9999999999999999999999999999999999999E+125")
    ttl = next(record for record in texts if record["user_identity"] is not None)
    assert ttl["user_identity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert ttl["event_name"] == "REMOVE"
