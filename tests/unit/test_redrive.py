"""Unit tests for the redrive's pure parts: the event, attributes, pacing, deadlines, failure records."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from changelake.exceptions import (
    InvalidEventError,
    MalformedFailureRecordError,
    StreamRangeExpiredError,
    StreamRangeIncompleteError,
)
from changelake.formats.lambda_events import FailedRange, lambda_record, parse_failure_record
from changelake.integrations.streams import LostPart, StreamReader
from changelake.recovery.dlq import REDRIVE_COUNT_ATTRIBUTE, matches, redrive_count, redriven, send_attributes
from changelake.recovery.events import parse_request
from changelake.recovery.receive import Deadline, RateLimiter
from changelake.recovery.service import redrive_metrics

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-22T00:00:00.000"


# ------------------------------------------------------------------ the event


def test_an_empty_event_gets_the_documented_defaults() -> None:
    # GIVEN / WHEN an empty event (and no event at all)
    request, missing = parse_request({}), parse_request(None)

    # THEN max_messages is 1000, nothing is a dry run, stream failures are replayed
    assert request == missing
    assert (request.max_messages, request.dry_run, request.replay_stream_failures) == (1000, False, True)
    assert (request.rate_per_second, request.attribute_filter) == (None, None)


def test_every_optional_field_is_read() -> None:
    # GIVEN / WHEN an event with every field
    request = parse_request(
        {
            "max_messages": 5,
            "dry_run": True,
            "rate_per_second": 2,
            "attribute_filter": {"origin": "orders"},
            "replay_stream_failures": False,
        }
    )

    # THEN each is kept
    assert request.max_messages == 5
    assert request.dry_run is True
    assert request.rate_per_second == 2.0
    assert request.attribute_filter == {"origin": "orders"}
    assert request.replay_stream_failures is False


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"max_messages": -3}, "max_messages"),
        ({"max_messages": 2.5}, "max_messages"),
        ({"max_messages": True}, "max_messages"),
        ({"dry_run": 1}, "dry_run"),
        ({"dry_run": "false"}, "dry_run"),
        ({"rate_per_second": 0}, "rate_per_second"),
        ({"attribute_filter": {}}, "attribute_filter"),
        ({"attribute_filter": "origin=orders"}, "attribute_filter"),
        ({"replay_stream_failures": None}, "replay_stream_failures"),
        ({"maxMessages": 10}, "maxMessages"),
        ("max_messages=10", "event"),
    ],
)
def test_a_malformed_event_names_its_field(event: Any, field: str) -> None:
    # GIVEN / WHEN a malformed event is parsed
    with pytest.raises(InvalidEventError) as raised:
        parse_request(event)

    # THEN the error names the field
    assert raised.value.field == field


# ------------------------------------------------------------------ attributes


def test_received_attributes_become_send_attributes() -> None:
    # GIVEN attributes as ReceiveMessage returns them (list values empty, one binary)
    received = {
        "a": {"StringValue": "x", "DataType": "String", "StringListValues": [], "BinaryListValues": []},
        "b": {"BinaryValue": b"\x01", "DataType": "Binary"},
        "n": {"StringValue": "7", "DataType": "Number.int"},
    }

    # WHEN / THEN only what SendMessage accepts is kept, values and custom types unchanged
    assert send_attributes(received) == {
        "a": {"DataType": "String", "StringValue": "x"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x01"},
        "n": {"DataType": "Number.int", "StringValue": "7"},
    }


@pytest.mark.parametrize(
    ("attributes", "count"),
    [
        ({}, 0),
        ({REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "4"}}, 4),
        ({REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "-1"}}, 0),
        ({REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Binary", "BinaryValue": b"4"}}, 0),
    ],
)
def test_the_redrive_count_is_read_from_its_attribute(attributes: dict[str, Any], count: int) -> None:
    assert redrive_count(attributes) == count


def test_a_redriven_message_keeps_body_and_attributes_and_counts_one_more() -> None:
    # GIVEN a received message redriven twice before
    message = {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Body": '{"v":1}',
        "MessageAttributes": {
            "a": {"StringValue": "x", "DataType": "String"},
            REDRIVE_COUNT_ATTRIBUTE: {"StringValue": "2", "DataType": "Number"},
        },
    }

    # WHEN it is prepared for sending
    outbound = redriven(message, "e0")

    # THEN the body is the same and the counter is 3
    assert (outbound.entry_id, outbound.body) == ("e0", '{"v":1}')
    assert outbound.attributes == {
        "a": {"DataType": "String", "StringValue": "x"},
        REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "3"},
    }


def test_the_filter_matches_exact_string_values_only() -> None:
    attributes = {"origin": {"StringValue": "orders", "DataType": "String"}}
    assert matches(attributes, None)
    assert matches(attributes, {"origin": "orders"})
    assert not matches(attributes, {"origin": "Orders"})
    assert not matches(attributes, {"origin": "orders", "kind": "batch"})
    assert not matches({}, {"origin": "orders"})


# ------------------------------------------------------------------ pacing and deadlines


class FakeTime:
    def __init__(self) -> None:
        self.now = 50.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_rate_limiter_spaces_items_evenly() -> None:
    # GIVEN 2 items per second
    clock = FakeTime()
    limiter = RateLimiter(2.0, monotonic=clock.monotonic, sleep=clock.sleep)

    # WHEN batches of 2 go, the second half a second after a 1.5 s pause
    limiter.wait()
    limiter.admit(2)
    limiter.wait()
    limiter.admit(2)
    clock.now += 1.5
    limiter.wait()

    # THEN the first went at once, the second waited a second, the third not at all
    assert clock.slept == [1.0]
    assert limiter.batch_size(10) == 2


def test_no_rate_limit_never_waits() -> None:
    clock = FakeTime()
    limiter = RateLimiter(None, monotonic=clock.monotonic, sleep=clock.sleep)
    limiter.admit(1000)
    limiter.wait()
    assert (clock.slept, limiter.batch_size(10)) == ([], 10)


def test_a_slow_rate_still_sends_one_at_a_time() -> None:
    limiter = RateLimiter(0.2)
    assert limiter.batch_size(10) == 1


def test_the_deadline_keeps_its_safety_margin() -> None:
    # GIVEN an invocation with 20 s left and a 15 s margin
    remaining = [20_000]
    deadline = Deadline(lambda: remaining[0], margin_ms=15_000)

    # THEN 5 s of work are left, and messages are hidden until just after the invocation
    assert not deadline.expired()
    assert deadline.seconds_left() == 5.0
    assert deadline.hold_seconds() == 50
    # WHEN the remaining time reaches the margin THEN it has expired
    remaining[0] = 15_000
    assert deadline.expired()
    assert deadline.seconds_left() == 0.0


def test_hold_time_never_exceeds_the_sqs_maximum() -> None:
    assert Deadline(lambda: 10**9).hold_seconds() == 43_200


# ------------------------------------------------------------------ failure records


def invocation_record(**batch_info: Any) -> str:
    info = {
        "shardId": "shardId-00000001573689847184-864758bb",
        "startSequenceNumber": "800000000003126276362",
        "endSequenceNumber": "800000000003126276399",
        "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
        "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
        "batchSize": 3,
        "streamArn": ARN,
        **batch_info,
    }
    return json.dumps(
        {
            "requestContext": {
                "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:consumer",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 1,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": "2019-11-14T00:13:49.717Z",
            "DDBStreamBatchInfo": info,
        }
    )


def test_a_real_format_invocation_record_gives_its_range() -> None:
    failed, document = parse_failure_record(invocation_record())
    assert failed == FailedRange(
        stream_arn=ARN,
        shard_id="shardId-00000001573689847184-864758bb",
        start="800000000003126276362",
        end="800000000003126276399",
        table="orders",
        first_arrival="2019-11-14T00:13:19Z",
        batch_size=3,
    )
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_sequence_numbers_compare_as_numbers() -> None:
    # GIVEN a range whose bounds differ in length
    failed, _ = parse_failure_record(invocation_record(startSequenceNumber="99", endSequenceNumber="100"))

    # THEN membership is numeric
    assert failed.holds("99")
    assert failed.holds("100")
    assert not failed.holds("98")
    assert not failed.holds("1000")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "[]",
        json.dumps({"DDBStreamBatchInfo": None}),
        invocation_record(startSequenceNumber="12a"),
        invocation_record(endSequenceNumber=12),
        invocation_record(startSequenceNumber="20", endSequenceNumber="19"),
        invocation_record(shardId=""),
        invocation_record(streamArn="arn:aws:kinesis:us-east-1:1:stream/x"),
        invocation_record(streamArn="arn:aws:dynamodb:us-east-1:1:table/a/b/stream/x"),
    ],
)
def test_a_malformed_invocation_record_is_rejected(body: str) -> None:
    with pytest.raises(MalformedFailureRecordError):
        parse_failure_record(body)


def test_a_body_that_is_not_text_is_rejected() -> None:
    with pytest.raises(MalformedFailureRecordError):
        parse_failure_record(None)


# ------------------------------------------------------------------ GetRecords -> Lambda's format


def test_a_get_records_record_becomes_the_record_lambda_delivers() -> None:
    # GIVEN a TTL delete as boto3 returns it: datetime, bytes, capitalised identity, no eventSourceARN
    record: dict[str, Any] = {
        "eventID": "e1",
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(
                2026, 11, 22, 12, 0, 1, 250000, tzinfo=timezone(timedelta(hours=2))
            ),
            "Keys": {"pk": {"B": b"\x00\x01"}},
            "OldImage": {
                "pk": {"B": b"\x00\x01"},
                "tags": {"BS": [b"a", b"b"]},
                "nested": {"M": {"list": {"L": [{"B": b"\xff"}, {"N": "1.50"}]}}},
            },
            "SequenceNumber": "111",
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "userIdentity": {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"},
    }

    # WHEN it is converted
    converted = lambda_record(record, ARN)

    # THEN it has the event's shape: epoch seconds, base64 binaries, lower-case identity, the ARN
    stream = converted["dynamodb"]
    assert stream["ApproximateCreationDateTime"] == pytest.approx(
        datetime(2026, 11, 22, 10, 0, 1, 250000, tzinfo=UTC).timestamp()
    )
    assert stream["Keys"] == {"pk": {"B": base64.b64encode(b"\x00\x01").decode()}}
    assert stream["OldImage"]["tags"] == {"BS": ["YQ==", "Yg=="]}
    assert stream["OldImage"]["nested"] == {"M": {"list": {"L": [{"B": "/w=="}, {"N": "1.50"}]}}}
    assert converted["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert converted["eventSourceARN"] == ARN
    assert (converted["eventID"], converted["eventName"], stream["SequenceNumber"]) == ("e1", "REMOVE", "111")
    assert "NewImage" not in stream
    # AND the input is untouched
    assert record["dynamodb"]["Keys"] == {"pk": {"B": b"\x00\x01"}}


def test_whole_second_timestamps_stay_integers() -> None:
    record = {"dynamodb": {"ApproximateCreationDateTime": datetime(2026, 1, 1, tzinfo=UTC), "Keys": {}}}
    assert lambda_record(record, ARN)["dynamodb"]["ApproximateCreationDateTime"] == 1_767_225_600


# ------------------------------------------------------------------ reading a range


class ScriptedStreams:
    """A shard served as fixed GetRecords pages of sequence numbers; ``errors`` raise in order.

    Iterators are ``"<page>:<offset>"``; AT/AFTER_SEQUENCE_NUMBER position them like DynamoDB,
    and refuse (TrimmedDataAccessException) a position before ``trim_horizon``, the first
    sequence number the stream still holds, where TRIM_HORIZON starts.
    """

    def __init__(
        self, pages: list[list[int]], errors: list[tuple[str, str]] | None = None, trim_horizon: int = 0
    ) -> None:
        self.pages = pages
        self.errors = list(errors or [])
        self.trim_horizon = trim_horizon
        self.iterators: list[dict[str, Any]] = []

    def _maybe_fail(self, operation: str) -> None:
        if self.errors and self.errors[0][0] == operation:
            code = self.errors.pop(0)[1]
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self._maybe_fail("get_shard_iterator")
        self.iterators.append(kwargs)
        if kwargs["ShardIteratorType"] == "TRIM_HORIZON":
            held = [
                f"{page}:{offset}"
                for page, numbers in enumerate(self.pages)
                for offset, number in enumerate(numbers)
                if number >= self.trim_horizon
            ]
            return {"ShardIterator": held[0] if held else "0:0"}
        wanted = int(kwargs["SequenceNumber"])
        for page, numbers in enumerate(self.pages):
            if wanted in numbers and wanted >= self.trim_horizon:
                offset = numbers.index(wanted) + (kwargs["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER")
                return {"ShardIterator": f"{page}:{offset}"}
        raise ClientError(
            {"Error": {"Code": "TrimmedDataAccessException", "Message": "x"}}, "GetShardIterator"
        )

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self._maybe_fail("get_records")
        page, offset = (int(part) for part in ShardIterator.split(":"))
        numbers = self.pages[page][offset:] if page < len(self.pages) else []
        records = [
            {"eventID": str(n), "eventName": "INSERT", "dynamodb": {"SequenceNumber": str(n), "Keys": {}}}
            for n in numbers
        ]
        return {"Records": records, "NextShardIterator": f"{page + 1}:0"}


class FailsOnSecondRead(ScriptedStreams):
    """The second GetRecords fails with ``code``; with ``trim_to``, the stream has trimmed to there."""

    def __init__(self, pages: list[list[int]], code: str, *, trim_to: int = 0) -> None:
        super().__init__(pages)
        self.code, self.trim_to, self.calls = code, trim_to, 0

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 2:
            self.trim_horizon = self.trim_to
            raise ClientError({"Error": {"Code": self.code, "Message": "injected"}}, "GetRecords")
        return super().get_records(ShardIterator, Limit)


def read_with_losses(client: ScriptedStreams, start: str, end: str) -> tuple[list[str], list[LostPart]]:
    """The sequence numbers read of range ``start``..``end``, and the parts reported lost."""
    numbers: list[str] = []
    lost: list[LostPart] = []
    for page in StreamReader(client=client).pages(FailedRange(ARN, "shard-1", start, end, "orders")):
        if isinstance(page, LostPart):
            lost.append(page)
        else:
            numbers.extend(record["dynamodb"]["SequenceNumber"] for record in page)
    return numbers, lost


def read(client: ScriptedStreams, start: str, end: str) -> list[str]:
    numbers, lost = read_with_losses(client, start, end)
    assert lost == []
    return numbers


def test_a_range_is_read_across_pages_and_cut_at_its_end() -> None:
    # GIVEN a shard whose range 98..1001 spans pages (and an empty page in between)
    client = ScriptedStreams([[98, 99], [], [100, 1001, 1002], [1003]])

    # WHEN / THEN exactly the range is read, from an iterator at its start
    assert read(client, "98", "1001") == ["98", "99", "100", "1001"]
    assert client.iterators == [
        {
            "StreamArn": ARN,
            "ShardId": "shard-1",
            "ShardIteratorType": "AT_SEQUENCE_NUMBER",
            "SequenceNumber": "98",
        }
    ]


def test_a_shard_that_ends_before_the_range_is_incomplete_not_lost() -> None:
    with pytest.raises(StreamRangeIncompleteError):
        read(ScriptedStreams([[5, 6]]), "5", "9")


def test_a_range_whose_start_is_trimmed_is_read_on_from_the_trim_horizon_and_the_gap_reported() -> None:
    # GIVEN range 5..9 of which the stream no longer holds 5 and 6 (it holds 7 on)
    client = ScriptedStreams([[5, 6, 7], [8, 9, 10]], trim_horizon=7)

    # WHEN read
    numbers, lost = read_with_losses(client, "5", "9")

    # THEN what the stream still holds is read, and the part before it reported with its bounds
    assert numbers == ["7", "8", "9"]
    (part,) = lost
    assert (part.after, part.first_held, part.error_code) == (None, "7", "TrimmedDataAccessException")
    assert [iterator["ShardIteratorType"] for iterator in client.iterators] == [
        "AT_SEQUENCE_NUMBER",
        "TRIM_HORIZON",
    ]


def test_a_range_trimmed_past_its_end_is_lost_as_a_whole() -> None:
    # GIVEN range 5..6, with the stream holding only records after it
    client = ScriptedStreams([[5, 6], [9]], trim_horizon=9)

    # WHEN read THEN nothing is read and the whole range is the lost part
    numbers, lost = read_with_losses(client, "5", "6")
    assert numbers == []
    assert [(part.after, part.first_held, part.is_whole_range) for part in lost] == [(None, None, True)]


def test_a_trim_past_the_reader_mid_range_loses_only_what_it_had_not_read() -> None:
    # GIVEN range 5..10, and a stream that trims everything before 9 once the first page is read
    client = FailsOnSecondRead([[5, 6], [7, 8], [9, 10]], "TrimmedDataAccessException", trim_to=9)

    # WHEN read THEN 5 and 6 were read, 9 and 10 too, and what lies after 6 and before 9 is lost
    numbers, lost = read_with_losses(client, "5", "10")
    assert numbers == ["5", "6", "9", "10"]
    assert [(part.after, part.first_held) for part in lost] == [("6", "9")]


@pytest.mark.parametrize("operation", ["get_shard_iterator", "get_records"])
def test_a_trim_the_trim_horizon_contradicts_loses_nothing(operation: str) -> None:
    # GIVEN a refusal as trimmed, while the trim horizon still starts at the range
    client = ScriptedStreams([[5, 6]], errors=[(operation, "TrimmedDataAccessException")])
    # WHEN read THEN the whole range is read and nothing reported lost
    assert read(client, "5", "6") == ["5", "6"]


def test_a_stream_that_refuses_even_its_trim_horizon_has_lost_the_range() -> None:
    client = ScriptedStreams(
        [[5, 6]],
        errors=[("get_shard_iterator", "TrimmedDataAccessException")] * 2,
    )
    with pytest.raises(StreamRangeExpiredError):
        read(client, "5", "6")


def test_lost_part_bounds_say_from_or_after_and_before_or_through() -> None:
    failed = FailedRange(ARN, "shard-1", "100", "200", "orders")
    start = LostPart(None, "150", "TrimmedDataAccessException", "x").bounds(failed)
    middle = LostPart("120", None, "TrimmedDataAccessException", "x").bounds(failed)
    assert start == {
        "from_sequence_number": "100",
        "after_sequence_number": None,
        "before_sequence_number": "150",
        "through_sequence_number": None,
        "description": "sequence numbers from 100 (the range's start) up to, not including, 150 "
        "(the first record the stream still holds)",
    }
    assert (middle["from_sequence_number"], middle["after_sequence_number"]) == (None, "120")
    assert (middle["before_sequence_number"], middle["through_sequence_number"]) == (None, "200")
    assert middle["description"] == "sequence numbers after 120 through 200 (the range's end)"


def test_an_expired_iterator_is_refreshed_after_the_last_record_read() -> None:
    # GIVEN an iterator that expires after the first page was read
    client = FailsOnSecondRead([[5, 6], [7, 8]], "ExpiredIteratorException")

    # WHEN the range is read THEN a fresh iterator continues after 6: nothing missed, nothing repeated
    assert read(client, "5", "7") == ["5", "6", "7"]
    assert client.iterators[1]["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert client.iterators[1]["SequenceNumber"] == "6"


def test_the_run_metrics_include_lost_ranges() -> None:
    summary = {
        "moved": 3,
        "failed": 1,
        "skipped": 2,
        "stream_failures": {"ranges_lost": 1, "records_replayed": 9},
    }
    metrics = redrive_metrics(summary)
    assert metrics["LostRanges"] == 1
    assert (metrics["MessagesRedriven"], metrics["MessagesRedriveFailed"], metrics["RecordsReplayed"]) == (
        3,
        1,
        9,
    )
    assert redrive_metrics({"moved": 0, "stream_failures": None})["LostRanges"] == 0
