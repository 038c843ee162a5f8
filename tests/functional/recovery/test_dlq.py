"""DLQ redrive on a moto server: poison messages come back, failures lose nothing, dry runs touch nothing."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from changelake.exceptions import InvalidEventError
from changelake.integrations.sqs import Backoff, SqsQueue
from changelake.recovery.dlq import REDRIVE_COUNT_ATTRIBUTE, DlqRedriver
from changelake.recovery.events import RedriveRequest
from changelake.recovery.receive import Deadline
from changelake_testing.stream_records import change_batch
from tests.conftest import REGION, FakeLambdaContext, HandlerLoader, Stack
from tests.functional.helpers import read_jsonl_gz, sqs_event

NO_WAIT = Backoff(attempts=2, sleep=lambda _: None)


def injected(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


class Wrapping:
    """A real moto client with some operations replaced; counts calls by operation."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class SendFailsFor(Wrapping):
    """SendMessageBatch refuses every entry whose body is in ``bodies`` (as a transient fault)."""

    def __init__(self, real: Any, bodies: set[str]) -> None:
        super().__init__(real)
        self.bodies = bodies

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.calls["send_message_batch"] += 1
        entries = kwargs["Entries"]
        keep = [entry for entry in entries if entry["MessageBody"] not in self.bodies]
        response: dict[str, Any] = {"Successful": [], "Failed": []}
        if keep:
            response = dict(self.real.send_message_batch(QueueUrl=kwargs["QueueUrl"], Entries=keep))
        failed = [
            {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
            for entry in entries
            if entry["MessageBody"] in self.bodies
        ]
        response["Failed"] = list(response.get("Failed", [])) + failed
        return response


class SendUnreachable(Wrapping):
    """Every SendMessageBatch fails as a whole (the queue cannot be reached)."""

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.calls["send_message_batch"] += 1
        raise injected("AWS.SimpleQueueService.NonExistentQueue", "SendMessageBatch")


class DeleteFails(Wrapping):
    """DeleteMessageBatch fails: as a whole (``whole``) or entry by entry."""

    def __init__(self, real: Any, *, whole: bool) -> None:
        super().__init__(real)
        self.whole = whole

    def delete_message_batch(self, **kwargs: Any) -> Any:
        self.calls["delete_message_batch"] += 1
        if self.whole:
            raise injected("InternalError", "DeleteMessageBatch")
        return {
            "Successful": [],
            "Failed": [
                {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
                for entry in kwargs["Entries"]
            ],
        }


class ReceivesUntil(Wrapping):
    """Counts ReceiveMessage calls, so a test can run a deadline down by batches."""

    def receive_message(self, **kwargs: Any) -> Any:
        self.calls["receive_message"] += 1
        return self.real.receive_message(**kwargs)


class SendTimes(Wrapping):
    """Records (fake time, entries) of every SendMessageBatch."""

    def __init__(self, real: Any, now: Any) -> None:
        super().__init__(real)
        self.now = now
        self.sends: list[tuple[float, int]] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.sends.append((self.now(), len(kwargs["Entries"])))
        return self.real.send_message_batch(**kwargs)


def seed(
    stack: Stack, count: int, *, attributes: dict[str, Any] | None = None, prefix: str = "body"
) -> set[str]:
    """``count`` distinct messages in the DLQ; returns their bodies."""
    bodies = {f"{prefix}-{index:04d}" for index in range(count)}
    for body in sorted(bodies):
        kwargs: dict[str, Any] = {"QueueUrl": stack.dlq_url, "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = attributes
        stack.sqs.send_message(**kwargs)
    return bodies


def depth(stack: Stack, url: str) -> tuple[int, int]:
    """(visible, in flight) of a queue."""
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def bodies_in(stack: Stack, url: str) -> Counter[str]:
    return Counter(message["Body"] for message in stack.drain(url))


def redriver(stack: Stack, *, queue_client: Any = None, dlq_client: Any = None, **kwargs: Any) -> DlqRedriver:
    sqs = boto3.client("sqs", region_name=REGION)
    return DlqRedriver(
        SqsQueue(stack.dlq_url, client=dlq_client or sqs, backoff=NO_WAIT),
        SqsQueue(stack.queue_url, client=queue_client or sqs, backoff=NO_WAIT),
        **kwargs,
    )


def test_a_poison_message_dead_letters_after_three_receives_and_redrive_brings_it_home(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN changes the consumer forwarded, and an aggregator whose bucket does not exist
    records = change_batch(random.Random(3), 40, tables=("orders",))
    consumer = load_handler("stream_consumer", stack.environment)
    assert consumer.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    broken = load_handler("aggregator", stack.environment, BUCKET_NAME="changelake-no-such-bucket")

    # WHEN the broken aggregator fails the messages on three receives (queue: maxReceiveCount 3)
    sent = None
    for _ in range(3):
        messages = stack.sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
        ).get("Messages", [])
        sent = sent or {message["MessageId"] for message in messages}
        response = broken.lambda_handler(sqs_event(messages), lambda_context)
        assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == sent
    fourth = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)

    # THEN SQS moved them to the DLQ on the next receive
    assert sent
    assert fourth.get("Messages", []) == []
    assert depth(stack, stack.dlq_url) == (len(sent), 0)

    # WHEN the cause is fixed and the redrive runs
    redrive = load_handler("dlq_redrive", stack.environment)
    summary = redrive.lambda_handler({"max_messages": 1000, "dry_run": False}, lambda_context)
    aggregator = load_handler("aggregator", stack.environment)
    back = stack.drain()
    stored = aggregator.lambda_handler(sqs_event(back), lambda_context)

    # THEN every message moved, carries a redrive count of 1, and the fixed aggregator stored every change
    assert summary["moved"] == len(sent)
    assert (summary["failed"], summary["skipped"], summary["remaining_estimate"]) == (0, 0, 0)
    assert depth(stack, stack.dlq_url) == (0, 0)
    assert len(back) == len(sent)
    assert all(m["MessageAttributes"][REDRIVE_COUNT_ATTRIBUTE]["StringValue"] == "1" for m in back)
    assert stored == {"batchItemFailures": []}
    stored_ids = {str(r["event_id"]) for key in stack.keys("raw/") for r in read_jsonl_gz(stack, key)}
    assert stored_ids == {record["eventID"] for record in records}


def test_bodies_and_attributes_are_kept_and_the_counter_grows(stack: Stack) -> None:
    # GIVEN a message with string, number and binary attributes, redriven once before
    attributes = {
        "origin": {"DataType": "String", "StringValue": "orders"},
        "weight": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "2"},
    }
    seed(stack, 1, attributes=attributes)

    # WHEN it is redriven
    result = redriver(stack).run(RedriveRequest(), Deadline.after_seconds(60))

    # THEN the body and every attribute arrive unchanged, except the counter, now 3
    (message,) = stack.drain()
    assert result.moved == 1
    assert message["Body"] == "body-0000"
    assert message["MessageAttributes"] == {
        **attributes,
        REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "3"},
    }


def test_injected_send_failures_lose_nothing(stack: Stack) -> None:
    # GIVEN 25 DLQ messages, and a queue that refuses 7 of them
    bodies = seed(stack, 25)
    refused = set(sorted(bodies)[::4])
    real = boto3.client("sqs", region_name=REGION)

    # WHEN the redrive runs
    result = redriver(stack, queue_client=SendFailsFor(real, refused)).run(
        RedriveRequest(), Deadline.after_seconds(60)
    )

    # THEN the refused ones are still in the DLQ, visible, and reported; the others moved exactly once
    assert (result.moved, result.failed) == (25 - len(refused), len(refused))
    assert len(result.failed_message_ids) == len(refused)
    assert depth(stack, stack.dlq_url) == (len(refused), 0)
    assert bodies_in(stack, stack.dlq_url) == Counter(refused)
    assert bodies_in(stack, stack.queue_url) == Counter(bodies - refused)


def test_an_unreachable_queue_stops_the_run_and_leaves_everything_in_the_dlq(stack: Stack) -> None:
    # GIVEN 30 DLQ messages and a queue that cannot be reached
    bodies = seed(stack, 30)
    fake = SendUnreachable(boto3.client("sqs", region_name=REGION))

    # WHEN the redrive runs
    result = redriver(stack, queue_client=fake).run(RedriveRequest(), Deadline.after_seconds(60))

    # THEN it stopped after the first failed batch, and every message is visible in the DLQ
    assert (result.moved, result.failed, result.stopped) == (0, 10, "send_failed")
    assert fake.calls["send_message_batch"] == 1
    assert depth(stack, stack.dlq_url) == (30, 0)
    assert bodies_in(stack, stack.dlq_url) == Counter(bodies)


@pytest.mark.parametrize("whole", [True, False], ids=["request-fails", "entries-fail"])
def test_injected_delete_failures_lose_nothing(stack: Stack, whole: bool) -> None:
    # GIVEN 12 DLQ messages whose deletes fail
    bodies = seed(stack, 12)
    dlq = DeleteFails(boto3.client("sqs", region_name=REGION), whole=whole)

    # WHEN the redrive runs
    result = redriver(stack, dlq_client=dlq).run(RedriveRequest(), Deadline.after_seconds(60))

    # THEN every message is in ChangeQueue, and also still in the DLQ (a duplicate, never a loss)
    assert (result.moved, result.delete_failed) == (12, 12)
    assert dlq.calls["delete_message_batch"] == 2
    assert bodies_in(stack, stack.queue_url) == Counter(bodies)
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)
    in_dlq = stack.sqs.get_queue_attributes(QueueUrl=stack.dlq_url, AttributeNames=["All"])["Attributes"]
    assert (
        int(in_dlq["ApproximateNumberOfMessages"]) + int(in_dlq["ApproximateNumberOfMessagesNotVisible"])
        == 12
    )


def test_dry_run_moves_nothing_and_hides_nothing(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN 15 DLQ messages
    bodies = seed(stack, 15, attributes={"origin": {"DataType": "String", "StringValue": "orders"}})
    redrive = load_handler("dlq_redrive", stack.environment)
    with open("events/redrive_dry_run.json") as file:
        event = json.load(file)

    # WHEN the sample dry-run event is invoked
    summary = redrive.lambda_handler(event, lambda_context)

    # THEN it reports counts and a sample without bodies, and every message is still visible in the DLQ
    assert summary["dry_run"] is True
    assert summary["moved"] == 0
    assert summary["dlq"]["dlq_visible"] == 15
    assert 1 <= len(summary["dlq"]["sample"]) <= 10
    first = summary["dlq"]["sample"][0]
    assert set(first) >= {"message_id", "size_bytes", "attributes"}
    assert first["attributes"] == {"origin": {"type": "String", "value": "orders"}}
    assert "body-" not in json.dumps(summary)
    assert depth(stack, stack.dlq_url) == (15, 0)
    assert depth(stack, stack.queue_url) == (0, 0)
    assert bodies_in(stack, stack.dlq_url) == Counter(bodies)


def test_max_messages_is_honoured(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN 23 DLQ messages
    seed(stack, 23)
    redrive = load_handler("dlq_redrive", stack.environment)

    # WHEN at most 13 may move
    summary = redrive.lambda_handler({"max_messages": 13}, lambda_context)

    # THEN exactly 13 moved and the other 10 are visible in the DLQ
    assert (summary["moved"], summary["stopped"], summary["remaining_estimate"]) == (13, "max_messages", 10)
    assert depth(stack, stack.queue_url) == (13, 0)
    assert depth(stack, stack.dlq_url) == (10, 0)


def test_the_deadline_is_honoured(stack: Stack) -> None:
    # GIVEN 50 DLQ messages and an invocation whose time runs out after two receives
    bodies = seed(stack, 50)
    dlq = ReceivesUntil(boto3.client("sqs", region_name=REGION))
    deadline = Deadline(lambda: 60_000 if dlq.calls["receive_message"] < 2 else 10_000, margin_ms=15_000)

    # WHEN the redrive runs
    result = redriver(stack, dlq_client=dlq).run(RedriveRequest(), deadline)

    # THEN it stopped after two batches, and the rest are still visible in the DLQ
    assert (result.moved, result.stopped) == (20, "deadline")
    assert depth(stack, stack.dlq_url) == (30, 0)
    moved = bodies_in(stack, stack.queue_url)
    assert sum(moved.values()) == 20
    assert set(moved) | set(bodies_in(stack, stack.dlq_url)) == bodies


def test_no_time_left_moves_nothing(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN DLQ messages and an invocation 10 seconds from its deadline (inside the safety margin)
    seed(stack, 5)
    redrive = load_handler("dlq_redrive", stack.environment)
    lambda_context.remaining_ms = 10_000

    # WHEN the redrive runs
    summary = redrive.lambda_handler({}, lambda_context)

    # THEN it stopped at once
    assert (summary["moved"], summary["stopped"]) == (0, "deadline")
    assert depth(stack, stack.dlq_url) == (5, 0)


def test_filtered_and_too_often_redriven_messages_stay_visible_in_the_dlq(stack: Stack) -> None:
    # GIVEN messages of two origins, some of them redriven five times already
    wanted = seed(
        stack, 6, attributes={"origin": {"DataType": "String", "StringValue": "orders"}}, prefix="o"
    )
    other = seed(stack, 4, attributes={"origin": {"DataType": "String", "StringValue": "users"}}, prefix="u")
    tired = seed(
        stack,
        3,
        attributes={
            "origin": {"DataType": "String", "StringValue": "orders"},
            REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "5"},
        },
        prefix="t",
    )

    # WHEN only origin=orders is redriven, with at most 5 redrives per message
    request = RedriveRequest(attribute_filter={"origin": "orders"})
    result = redriver(stack, max_redrives=5).run(request, Deadline.after_seconds(60))

    # THEN only the wanted ones moved; the others are counted, reported and visible again in the DLQ
    assert (result.moved, result.skipped, result.left_too_many_redrives) == (6, 4, 3)
    assert len(result.left_message_ids) == 3
    assert result.remaining_estimate == 7
    assert depth(stack, stack.dlq_url) == (7, 0)
    assert set(bodies_in(stack, stack.queue_url)) == wanted
    assert set(bodies_in(stack, stack.dlq_url)) == other | tired


def test_the_rate_limit_paces_batches_on_the_injected_clock(stack: Stack) -> None:
    # GIVEN 12 messages and a limit of 4 per second, on a fake clock
    seed(stack, 12)
    now = [1000.0]
    queue = SendTimes(boto3.client("sqs", region_name=REGION), lambda: now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    # WHEN the redrive runs
    result = redriver(stack, queue_client=queue, monotonic=lambda: now[0], sleep=sleep).run(
        RedriveRequest(rate_per_second=4.0), Deadline.after_seconds(600, monotonic=lambda: now[0])
    )

    # THEN it sent them in batches of 4, one second apart
    assert result.moved == 12
    assert queue.sends == [(1000.0, 4), (1001.0, 4), (1002.0, 4)]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"max_messages": 0}, "max_messages"),
        ({"max_messages": "10"}, "max_messages"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"rate_per_second": -1}, "rate_per_second"),
        ({"attribute_filter": {"origin": 1}}, "attribute_filter.origin"),
        ({"max_message": 10}, "max_message"),
        (["max_messages"], "event"),
    ],
)
def test_malformed_events_are_refused_and_nothing_changes(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext, event: Any, field: str
) -> None:
    # GIVEN DLQ messages
    seed(stack, 3)
    redrive = load_handler("dlq_redrive", stack.environment)

    # WHEN a malformed event is invoked
    with pytest.raises(InvalidEventError) as raised:
        redrive.lambda_handler(event, lambda_context)

    # THEN the error names the field and every message is still visible in the DLQ
    assert raised.value.field == field
    assert field in str(raised.value)
    assert depth(stack, stack.dlq_url) == (3, 0)
    assert depth(stack, stack.queue_url) == (0, 0)
