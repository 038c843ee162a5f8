"""Lambda's event shapes: the stream's on-failure record and GetRecords records as Lambda delivers them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from changelake.exceptions import (
    MalformedFailureRecordError,
)
from changelake.formats.lambda_events import FailedRange, lambda_record, parse_failure_record

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-22T00:00:00.000"


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


def test_a_range_is_described_in_the_invocation_record_s_words() -> None:
    # GIVEN a parsed failure record WHEN its range is described
    failed, _ = parse_failure_record(invocation_record())

    # THEN dry runs and loss reports name it with the record's field names
    assert failed.described() == {
        "table": "orders",
        "shard_id": "shardId-00000001573689847184-864758bb",
        "start_sequence_number": "800000000003126276362",
        "end_sequence_number": "800000000003126276399",
        "batch_size": 3,
        "approximate_arrival_of_first_record": "2019-11-14T00:13:19Z",
    }


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
