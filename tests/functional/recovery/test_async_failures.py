"""Failed asynchronous invocations on a moto server: redrive re-runs each with its original payload."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from changelake.integrations.lambda_invoke import LambdaInvoker
from changelake.integrations.s3 import S3Store
from changelake.integrations.sqs import SqsQueue
from changelake.recovery.async_failures import AsyncFailureReplayer
from changelake.recovery.receive import Deadline
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.compaction.test_compaction import changes, part_keys, partition_of, put_raw
from tests.functional.fakes import client_error

COMPACTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:changelake-compaction"
REDRIVE_NAME = "changelake-dlq-redrive"
SCHEDULED = {"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}}


def destination_record(function_arn: str, payload: Any) -> str:
    """An on-failure destination record as Lambda writes it (AWS Lambda developer guide)."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-11-23T00:17:51.712Z",
            "requestContext": {
                "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
                "functionArn": f"{function_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": payload,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                "errorMessage": "1 partition(s) not compacted",
                "errorType": "CompactionError",
            },
        }
    )


class RecordingLambda:
    """A Lambda client that accepts asynchronous invocations (202) and keeps them, or refuses them."""

    def __init__(self, *, refuse_with: str | None = None) -> None:
        self.refuse_with = refuse_with
        self.invocations: list[tuple[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["InvocationType"] == "Event"
        if self.refuse_with is not None:
            raise client_error(self.refuse_with, "Invoke", status=429)
        self.invocations.append((kwargs["FunctionName"], json.loads(kwargs["Payload"])))
        return {"StatusCode": 202}


def failure_queue(stack: Stack) -> str:
    url: str = stack.sqs.create_queue(QueueName="changelake-AsyncFailureQueue")["QueueUrl"]
    return url


def replayer(stack: Stack, url: str, client: RecordingLambda) -> AsyncFailureReplayer:
    return AsyncFailureReplayer(SqsQueue(url), LambdaInvoker(client=client), S3Store(stack.bucket))


def test_a_failed_compaction_event_is_reinvoked_with_its_payload_and_then_compacts(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a manual compaction event and a scheduled one that failed past their retries
    url = failure_queue(stack)
    manual = {"table": "orders", "dt": "2026-11-22", "hour": "12"}
    for payload in (manual, SCHEDULED):
        stack.sqs.send_message(QueueUrl=url, MessageBody=destination_record(COMPACTION_ARN, payload))
    lambda_client = RecordingLambda()

    # WHEN redrive reads the async-failure queue
    result = replayer(stack, url, lambda_client).run(
        100, Deadline.after_seconds(60), own_function_name=REDRIVE_NAME
    )

    # THEN each event is re-invoked asynchronously, exactly as it was, and its record deleted
    assert sorted(map(json.dumps, lambda_client.invocations)) == sorted(
        json.dumps([f"{COMPACTION_ARN}:$LATEST", payload]) for payload in (manual, SCHEDULED)
    )
    assert (result.reinvoked, result.failed, result.remaining_estimate) == (2, 0, 0)
    assert stack.drain(url) == []

    # AND the re-invoked manual payload is one the compaction handler runs
    put_raw(stack, changes(1, 20))
    compaction = load_handler("compaction", stack.environment)
    summary = compaction.lambda_handler(lambda_client.invocations[0][1], lambda_context)
    assert summary["rows_out"] == 20
    assert part_keys(stack, partition_of())


def test_a_refused_reinvocation_keeps_the_record_for_a_later_run(stack: Stack) -> None:
    # GIVEN a failed invocation and Lambda throttling every invoke
    url = failure_queue(stack)
    stack.sqs.send_message(QueueUrl=url, MessageBody=destination_record(COMPACTION_ARN, SCHEDULED))

    # WHEN redrive tries to re-run it
    result = replayer(stack, url, RecordingLambda(refuse_with="TooManyRequestsException")).run(
        100, Deadline.after_seconds(60), own_function_name=REDRIVE_NAME
    )

    # THEN nothing is deleted: the record is visible again for the next run, and the run says so
    assert (result.reinvoked, result.failed) == (0, 1)
    assert [json.loads(m["Body"])["requestPayload"] for m in stack.drain(url)] == [SCHEDULED]


def test_a_failed_redrive_run_is_superseded_by_the_run_that_reads_it(stack: Stack) -> None:
    # GIVEN a scheduled redrive invocation that failed past its retries
    url = failure_queue(stack)
    own_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{REDRIVE_NAME}"
    stack.sqs.send_message(QueueUrl=url, MessageBody=destination_record(own_arn, {"max_messages": 10}))
    lambda_client = RecordingLambda()

    # WHEN a redrive run reads it
    result = replayer(stack, url, lambda_client).run(
        100, Deadline.after_seconds(60), own_function_name=REDRIVE_NAME
    )

    # THEN it is not invoked again (this run is the re-run) and the record is gone
    assert lambda_client.invocations == []
    assert (result.superseded, result.remaining_estimate) == (1, 0)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"requestContext": {"functionArn": "arn:aws:s3:::bucket"}, "requestPayload": {}}),
        json.dumps({"requestPayload": {"table": "orders"}}),
        "[" * 100_000,
    ],
    ids=["not-json", "not-a-function-arn", "no-request-context", "nested-past-the-recursion-limit"],
)
def test_a_record_that_is_not_a_destination_record_is_quarantined_whole(stack: Stack, body: str) -> None:
    # GIVEN a message in the async-failure queue that Lambda did not write
    url = failure_queue(stack)
    stack.sqs.send_message(QueueUrl=url, MessageBody=body)
    lambda_client = RecordingLambda()

    # WHEN redrive reads it
    result = replayer(stack, url, lambda_client).run(
        100, Deadline.after_seconds(60), own_function_name=REDRIVE_NAME
    )

    # THEN nothing is invoked; the body is in quarantine with the reason, and out of the queue
    assert (lambda_client.invocations, result.malformed) == ([], 1)
    (key,) = stack.keys("quarantine/_/")
    (entry,) = [json.loads(line) for line in gzip.decompress(stack.read(key)).splitlines()]
    assert entry["record"] == body
    assert entry["reason"].startswith("not a Lambda on-failure destination record")
    assert stack.drain(url) == []


def test_the_redrive_handler_reruns_async_failures_and_a_dry_run_only_samples(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN the redrive function configured with the async-failure queue, and one failed event in it
    url = failure_queue(stack)
    stack.sqs.send_message(QueueUrl=url, MessageBody=destination_record(COMPACTION_ARN, SCHEDULED))
    redrive = load_handler("dlq_redrive", stack.environment, ASYNC_FAILURE_QUEUE_URL=url)
    lambda_client = RecordingLambda()
    assert redrive.async_replayer is not None
    redrive.async_replayer.invoker = LambdaInvoker(client=lambda_client)

    # WHEN it is invoked dry, then for real
    dry = redrive.lambda_handler({"dry_run": True}, lambda_context)
    wet = redrive.lambda_handler({}, lambda_context)

    # THEN the dry run names the function and moves nothing; the real run re-invokes it
    assert dry["async_failures"]["failure_records_visible"] == 1
    assert dry["async_failures"]["sample"][0]["function"] == "changelake-compaction"
    assert wet["async_failures"]["reinvoked"] == 1
    assert lambda_client.invocations == [(f"{COMPACTION_ARN}:$LATEST", SCHEDULED)]
