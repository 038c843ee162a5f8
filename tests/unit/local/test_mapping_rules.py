"""Lambda's event-source-mapping rules as the local mappings apply them: checkpoint, retry, bisect.

``make run``'s "nothing lost" verdict rests on them: every record of a stream batch is either
delivered or, once given up, named by the range of an on-failure record the redrive replays.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from changelake.formats.lambda_events import parse_failure_record
from changelake_local.deployed_stack import MappingSpec
from changelake_local.esm import Hooks, MappingRun, StreamMapping
from changelake_local.mapping_rules import (
    Attempt,
    GiveUp,
    Outcome,
    StreamRetryRules,
    on_failure_record,
    read_response,
    sequence_numbers,
    unprocessed,
)
from changelake_testing.stream_records import stream_arn, stream_record

ARN = stream_arn("orders")
NOW = 1_795_867_200.0


def records(count: int, *, first: int = 8, created: float = NOW) -> list[dict[str, Any]]:
    """``count`` stream records with sequence numbers ``first``, ``first + 1``, ... (8, 9, 10, ...)."""
    return [
        stream_record(
            table="orders",
            event_name="INSERT",
            sequence_number=first + index,
            created=created + index,
            keys={"pk": {"S": f"k{index}"}},
            new_image={"pk": {"S": f"k{index}"}},
        )
        for index in range(count)
    ]


# ------------------------------------------------------------------ ReportBatchItemFailures


def test_an_empty_failure_list_is_success() -> None:
    # GIVEN / WHEN a response with no failures THEN the batch succeeded
    assert read_response({"batchItemFailures": []}, ["8", "9"], report_batch_item_failures=True).ok


def test_reported_items_fail_and_only_those() -> None:
    # GIVEN a response naming one item
    outcome = read_response(
        {"batchItemFailures": [{"itemIdentifier": "9"}]}, ["8", "9"], report_batch_item_failures=True
    )

    # THEN that item failed, not the whole batch
    assert (outcome.ok, outcome.failed_ids, outcome.whole_batch) == (False, ["9"], False)


@pytest.mark.parametrize(
    "item", [{"itemIdentifier": "77"}, {"itemIdentifier": ""}, {"itemIdentifier": 9}, "9"]
)
def test_an_identifier_not_in_the_batch_fails_the_whole_batch(item: object) -> None:
    # GIVEN / WHEN a response whose failure is not one of the batch's identifiers
    outcome = read_response({"batchItemFailures": [item]}, ["8", "9"], report_batch_item_failures=True)

    # THEN Lambda treats it as a failure of every item
    assert (outcome.ok, outcome.failed_ids, outcome.whole_batch) == (False, ["8", "9"], True)
    assert outcome.error == "invalid batchItemFailures"


def test_without_report_batch_item_failures_a_response_is_success() -> None:
    # GIVEN a mapping without ReportBatchItemFailures and a response that names a failure
    response = {"batchItemFailures": [{"itemIdentifier": "9"}]}

    # WHEN / THEN it is ignored, as is a response that is not an object
    assert read_response(response, ["8", "9"], report_batch_item_failures=False).ok
    assert read_response(None, ["8", "9"], report_batch_item_failures=True).ok


# ------------------------------------------------------------------ the checkpoint


def test_the_checkpoint_is_the_lowest_reported_sequence_number_compared_as_a_number() -> None:
    # GIVEN a batch 8, 9, 10, 11 whose function reported 10 and 9 ("10" < "9" as text)
    batch = records(4)
    outcome = Outcome(ok=False, failed_ids=["10", "9"])

    # WHEN / THEN 9 and everything after it is still to deliver; 8 is done
    assert sequence_numbers(unprocessed(batch, outcome)) == ["9", "10", "11"]


def test_a_function_error_leaves_the_whole_batch_unprocessed() -> None:
    batch = records(3)
    assert unprocessed(batch, Outcome.function_error(sequence_numbers(batch), "boom")) == batch


# ------------------------------------------------------------------ retry, bisect, give up


def rules(retries: int = 2, *, bisect: bool = True, age: int = -1) -> StreamRetryRules:
    return StreamRetryRules(maximum_retry_attempts=retries, maximum_record_age=age, bisect_on_error=bisect)


def test_success_needs_nothing_more() -> None:
    assert rules().after(Attempt(records(2)), Outcome(ok=True)) == []


def test_a_batch_failing_as_a_whole_is_bisected_in_order() -> None:
    # GIVEN a first attempt of four records that failed as a whole
    batch = records(4)

    # WHEN the rules decide
    step = rules().after(Attempt(batch), Outcome.function_error(sequence_numbers(batch), "boom"))

    # THEN the halves are retried, first half first, each as the first retry
    assert step == [Attempt(batch[:2], 1), Attempt(batch[2:], 1)]


def test_a_partial_failure_is_retried_from_the_checkpoint_not_bisected() -> None:
    batch = records(4)
    step = rules().after(Attempt(batch), Outcome(ok=False, failed_ids=["10"]))
    assert step == [Attempt(batch[2:], 1)]


@pytest.mark.parametrize(("bisect", "count"), [(False, 4), (True, 1)])
def test_without_bisect_or_with_one_record_the_batch_is_retried_whole(bisect: bool, count: int) -> None:
    batch = records(count)
    step = rules(bisect=bisect).after(Attempt(batch), Outcome.function_error(sequence_numbers(batch), "e"))
    assert step == [Attempt(batch, 1)]


def test_once_the_retries_are_spent_the_unprocessed_records_are_given_up() -> None:
    # GIVEN the second retry of a batch (maximum retry attempts 2) that fails at its second record
    batch = records(3)

    # WHEN the rules decide
    step = rules(retries=2).after(Attempt(batch, 2), Outcome(ok=False, failed_ids=["9"]))

    # THEN the records from the checkpoint go to the on-failure destination, after 3 invocations
    assert step == GiveUp(batch[1:], "RetryAttemptsExhausted", 3)


def test_unlimited_retries_never_give_up() -> None:
    batch = records(1)
    step = rules(retries=-1).after(Attempt(batch, 10_000), Outcome.function_error(["8"], "e"))
    assert step == [Attempt(batch, 10_001)]


def test_a_batch_past_the_maximum_record_age_is_given_up_unread() -> None:
    # GIVEN a batch whose oldest record was written 61 s ago and a maximum age of 60 s
    batch = records(2, created=NOW - 61)

    # WHEN / THEN it is given up as RecordAgeExceeded; a 59 s old one and an unlimited age are not
    assert rules(age=60).expired(Attempt(batch, 1), NOW) == GiveUp(batch, "RecordAgeExceeded", 1)
    assert rules(age=60).expired(Attempt(records(2, created=NOW - 59)), NOW) is None
    assert rules(age=-1).expired(Attempt(batch), NOW) is None


def test_the_on_failure_record_names_the_given_up_range_as_the_redrive_reads_it() -> None:
    # GIVEN three records given up
    give_up = GiveUp(records(3, first=100), "RetryAttemptsExhausted", 3)

    # WHEN Lambda's on-failure record is built and read back by changelake's parser
    record = on_failure_record(
        give_up, shard_id="shardId-1", stream_arn=ARN, function_arn="arn:f", request_id="r", now=NOW
    )
    failed, _ = parse_failure_record(json.dumps(record))

    # THEN it names exactly that range of that shard
    assert (failed.shard_id, failed.start, failed.end, failed.batch_size) == ("shardId-1", "100", "102", 3)
    assert failed.table == "orders"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"] == "2026-11-28T12:00:00.000Z"


# ------------------------------------------------------------------ the stream mapping's loop


@dataclass
class FakeFunction:
    """Fails (raises) for any batch holding a poisoned sequence number; records every batch."""

    poisoned: set[str]
    batches: list[list[str]] = field(default_factory=list)
    logical_id: str = "StreamConsumerFunction"
    errors: int = 0
    last_error: str | None = None

    @dataclass
    class Spec:
        arn: str = "arn:aws:lambda:us-east-1:123456789012:function:consumer"

    spec: Spec = field(default_factory=Spec)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        numbers = sequence_numbers(event["Records"])
        self.batches.append(numbers)
        if self.poisoned & set(numbers):
            raise RuntimeError("poison")
        return {"batchItemFailures": []}


@dataclass
class FakeStack:
    endpoint: str = "http://127.0.0.1:1"  # never contacted: the test replaces the SQS client

    def queue_url_of_arn(self, arn: str) -> str:
        return f"https://queue/{arn}"


@dataclass
class RecordingSqs:
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:
        self.bodies.append(json.loads(MessageBody))
        return {"MessageId": "m"}


def stream_mapping(
    function: FakeFunction, *, retries: int, bisect: bool
) -> tuple[StreamMapping, RecordingSqs]:
    spec = MappingSpec(
        logical_id="StreamMapping",
        function="StreamConsumerFunction",
        source_arn=ARN,
        batch_size=100,
        batching_window=0,
        starting_position="TRIM_HORIZON",
        report_batch_item_failures=True,
        bisect_on_error=bisect,
        maximum_retry_attempts=retries,
        maximum_record_age=-1,
        on_failure_arn="arn:aws:sqs:us-east-1:123456789012:failures",
    )
    run = MappingRun(FakeStack(), Hooks(), threading.Event(), threading.Event())  # type: ignore[arg-type]
    mapping = StreamMapping(spec, function, run, retry_backoff=0)  # type: ignore[arg-type]
    mapping.sqs = sqs = RecordingSqs()
    return mapping, sqs


def test_bisection_isolates_a_poison_record_and_only_its_range_is_given_up() -> None:
    # GIVEN a batch of 8 records whose 6th (13) makes the function fail, bisect on, 3 retries
    function = FakeFunction(poisoned={"13"})
    mapping, destination = stream_mapping(function, retries=3, bisect=True)

    # WHEN the mapping delivers it
    mapping._deliver("shardId-1", records(8))

    # THEN every other record reached the function in a batch that succeeded
    delivered = {number for batch in function.batches if "13" not in batch for number in batch}
    assert delivered == {"8", "9", "10", "11", "12", "14", "15"}
    # AND only the poison record's range went to the on-failure destination
    (body,) = destination.bodies
    failed, _ = parse_failure_record(json.dumps(body))
    assert (failed.start, failed.end) == ("13", "13")
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert (mapping.stats.bisects, mapping.stats.sent_to_on_failure) == (3, 1)


def test_without_bisect_the_whole_batch_is_given_up_after_its_retries() -> None:
    # GIVEN the same poison, no bisect, 2 retries
    function = FakeFunction(poisoned={"13"})
    mapping, destination = stream_mapping(function, retries=2, bisect=False)

    # WHEN the mapping delivers it
    mapping._deliver("shardId-1", records(8))

    # THEN it invoked three times with the whole batch, then named the whole range
    assert function.batches == [sequence_numbers(records(8))] * 3
    (body,) = destination.bodies
    info = body["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("8", "15", 8)
    assert body["requestContext"]["approximateInvokeCount"] == 3
