"""The fault layer on real clients against moto: each kind of fault does what AWS would do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from changelake.integrations.base import CLIENT_HOOKS, build_client
from changelake_local.faults import ANSWER_LOST_SHARE, FaultInjector, FaultKind, FaultProfile
from tests.conftest import Stack


@pytest.fixture
def hooked() -> Iterator[list[FaultInjector]]:
    injectors: list[FaultInjector] = []
    yield injectors
    CLIENT_HOOKS.clear()


def _client(service: str, injectors: list[FaultInjector], *kinds: FaultKind, rate: float = 1.0) -> Any:
    injector = FaultInjector(FaultProfile("test", "test", request_rate=rate, kinds=kinds))
    injectors.append(injector)
    CLIENT_HOOKS[:] = [injector.attach]
    return build_client(service)


def test_a_throttled_request_is_retried_by_botocore_and_then_refused(
    stack: Stack, hooked: list[FaultInjector]
) -> None:
    # GIVEN an S3 client whose every request is throttled
    s3 = _client("s3", hooked, FaultKind.THROTTLED)

    # WHEN it puts an object
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=stack.bucket, Key="k", Body=b"x")

    # THEN botocore retried, S3 saw none of the attempts, and the error is S3's throttling code
    assert refused.value.response["Error"]["Code"] == "SlowDown"
    assert set(hooked[0].injected) == {"throttled:PutObject"}
    assert hooked[0].total > 1
    assert stack.keys() == []


def test_a_lost_answer_raises_although_the_work_was_done(stack: Stack, hooked: list[FaultInjector]) -> None:
    # GIVEN an S3 client that loses every answer
    s3 = _client("s3", hooked, FaultKind.ANSWER_LOST, rate=float(ANSWER_LOST_SHARE))

    # WHEN it puts an object
    with pytest.raises(ReadTimeoutError):
        s3.put_object(Bucket=stack.bucket, Key="k", Body=b"x")

    # THEN the object is there all the same
    assert stack.keys() == ["k"]


def test_a_partial_batch_failure_withholds_the_entries_it_reports(
    stack: Stack, hooked: list[FaultInjector]
) -> None:
    # GIVEN an SQS client whose batches fail in part
    sqs = _client("sqs", hooked, FaultKind.PARTIAL_BATCH)
    entries = [{"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(5)]

    # WHEN it sends five messages
    response = sqs.send_message_batch(QueueUrl=stack.queue_url, Entries=entries)

    # THEN the failed entries are exactly those not in the queue, and at least one of each
    failed = {entry["Id"] for entry in response["Failed"]}
    sent = {entry["Id"] for entry in response["Successful"]}
    assert failed
    assert sent
    assert failed | sent == {entry["Id"] for entry in entries}
    bodies = {message["Body"] for message in stack.drain()}
    assert bodies == {entry["MessageBody"] for entry in entries if entry["Id"] in sent}


def test_cleared_faults_let_every_request_through(stack: Stack, hooked: list[FaultInjector]) -> None:
    # GIVEN a client whose every request would be refused, and the faults cleared
    s3 = _client("s3", hooked, FaultKind.SERVER_ERROR, FaultKind.CONNECTION_DROPPED)
    hooked[0].clear()

    # WHEN it puts an object THEN it is stored and nothing was injected
    s3.put_object(Bucket=stack.bucket, Key="k", Body=b"x")
    assert stack.keys() == ["k"]
    assert hooked[0].total == 0


def test_crashes_happen_at_the_rate_of_the_profile(hooked: list[FaultInjector]) -> None:
    # GIVEN a profile where every invocation crashes (half before the work, half before the answer)
    injector = FaultInjector(FaultProfile("test", "test", crash_rate=2.0))

    # WHEN an invocation reaches its first crash point THEN it crashes there
    with pytest.raises(RuntimeError, match="crash_before_work"):
        injector.crash(FaultKind.CRASH_BEFORE_WORK)
    assert injector.injected == {"crash_before_work:invoke": 1}
