"""SqsQueue and request_batches against a fake client that records calls and injects failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from changelake.exceptions import DeliveryError, QueueUnavailableError, ThrottledError
from changelake.integrations.base import OutboundMessage
from changelake.integrations.sqs import MAX_BATCH_REQUEST_BYTES, Backoff, SqsQueue, request_batches

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/changelake-ChangeQueue"

Step = Callable[[list[dict[str, Any]]], dict[str, Any]]


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "SendMessageBatch")


def ok(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Successful": [{"Id": e["Id"], "MessageId": f"m-{e['Id']}"} for e in entries], "Failed": []}


def fail_ids(ids: set[str], code: str, *, sender_fault: bool) -> Step:
    def step(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Successful": [{"Id": e["Id"], "MessageId": "m"} for e in entries if e["Id"] not in ids],
            "Failed": [
                {"Id": e["Id"], "Code": code, "SenderFault": sender_fault, "Message": "m"}
                for e in entries
                if e["Id"] in ids
            ],
        }

    return step


def raise_error(error: Exception) -> Step:
    def step(entries: list[dict[str, Any]]) -> dict[str, Any]:
        raise error

    return step


class FakeSqsClient:
    """Records every call; ``send_message_batch`` plays ``steps`` in turn, then succeeds."""

    def __init__(self, steps: list[Step] | None = None, delete_failures: set[str] | None = None) -> None:
        self.steps = list(steps or [])
        self.delete_failures = delete_failures or set()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("send_message_batch", kwargs))
        assert kwargs["QueueUrl"] == QUEUE
        step = self.steps.pop(0) if self.steps else ok
        return step(kwargs["Entries"])

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("delete_message_batch", kwargs))
        entries = kwargs["Entries"]
        return {
            "Successful": [{"Id": e["Id"]} for e in entries if e["Id"] not in self.delete_failures],
            "Failed": [
                {"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "SenderFault": True, "Message": "m"}
                for e in entries
                if e["Id"] in self.delete_failures
            ],
        }

    def sent_ids(self) -> list[list[str]]:
        return [
            [e["Id"] for e in kwargs["Entries"]] for op, kwargs in self.calls if op == "send_message_batch"
        ]


def messages(count: int, size: int = 10) -> list[OutboundMessage]:
    return [OutboundMessage(f"e{i}", f"{i:0{size}d}") for i in range(count)]


def queue(client: FakeSqsClient, attempts: int = 4) -> tuple[SqsQueue, list[float]]:
    sleeps: list[float] = []
    return SqsQueue(QUEUE, client=client, backoff=Backoff(attempts=attempts, sleep=sleeps.append)), sleeps


# ---------------------------------------------------------------- request_batches


def test_request_batches_of_ten_in_order() -> None:
    # GIVEN 25 small messages
    outbound = messages(25)
    # WHEN grouped into requests
    batches = list(request_batches(outbound))
    # THEN there are 10, 10 and 5 entries, in input order, none lost
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [m for b in batches for m in b] == outbound


def test_request_batches_stay_under_one_mebibyte() -> None:
    # GIVEN 7 messages of 300 KB (four would exceed 1 MiB together)
    outbound = [OutboundMessage(f"e{i}", "x" * 300_000) for i in range(7)]
    # WHEN grouped THEN each request holds at most three, in order
    batches = list(request_batches(outbound))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [m for b in batches for m in b] == outbound
    for batch in batches:
        assert sum(m.size for m in batch) <= MAX_BATCH_REQUEST_BYTES


def test_request_batches_count_attributes() -> None:
    # GIVEN two messages whose bodies fit together but whose attributes push them over 1 MiB
    attrs = {"redrives": {"DataType": "Number", "StringValue": "1" * 100}}
    half = MAX_BATCH_REQUEST_BYTES // 2
    outbound = [
        OutboundMessage("a", "x" * (half - 50), attrs),
        OutboundMessage("b", "x" * (half - 50), attrs),
    ]
    assert outbound[0].size > half - 50
    # WHEN grouped THEN they go in separate requests
    assert [len(b) for b in request_batches(outbound)] == [1, 1]


def test_request_batches_of_nothing() -> None:
    # GIVEN no messages WHEN grouped THEN there is no request
    assert list(request_batches([])) == []


def test_message_size_counts_body_bytes_not_characters() -> None:
    # GIVEN a body of multi-byte characters WHEN sized THEN UTF-8 bytes are counted
    assert OutboundMessage("a", "é" * 10).size == 20


# ---------------------------------------------------------------- send_batch


def test_send_batch_all_ok() -> None:
    # GIVEN a queue whose client accepts everything
    client = FakeSqsClient()
    sqs, sleeps = queue(client)
    attrs = {"redrives": {"DataType": "Number", "StringValue": "1"}}
    outbound = [*messages(2), OutboundMessage("with-attrs", "body", attrs)]
    # WHEN a batch is sent
    failed = sqs.send_batch(outbound)
    # THEN nothing failed, one request carried every entry in order, with attributes
    assert failed == {}
    assert len(client.calls) == 1
    entries = client.calls[0][1]["Entries"]
    assert entries == [
        {"Id": "e0", "MessageBody": outbound[0].body},
        {"Id": "e1", "MessageBody": outbound[1].body},
        {"Id": "with-attrs", "MessageBody": "body", "MessageAttributes": attrs},
    ]
    assert sleeps == []
    assert sqs.requests == 1


def test_partial_failure_is_retried_until_sent() -> None:
    # GIVEN a client that fails two entries (server side) on the first request
    client = FakeSqsClient([fail_ids({"e1", "e3"}, "InternalError", sender_fault=False)])
    sqs, sleeps = queue(client)
    # WHEN a batch of five is sent
    failed = sqs.send_batch(messages(5))
    # THEN only the failed entries were sent again, after a pause, and all are reported sent
    assert failed == {}
    assert client.sent_ids() == [["e0", "e1", "e2", "e3", "e4"], ["e1", "e3"]]
    assert len(sleeps) == 1
    assert sqs.requests == 2


def test_entry_failing_on_every_attempt_is_reported() -> None:
    # GIVEN a client that fails entry e2 on every request
    step = fail_ids({"e2"}, "InternalError", sender_fault=False)
    client = FakeSqsClient([step] * 10)
    sqs, sleeps = queue(client, attempts=3)
    # WHEN sent
    failed = sqs.send_batch(messages(4))
    # THEN e2 alone is reported failed with its code, after three attempts and two pauses
    assert set(failed) == {"e2"}
    assert failed["e2"].code == "InternalError"
    assert client.sent_ids() == [["e0", "e1", "e2", "e3"], ["e2"], ["e2"]]
    assert len(sleeps) == 2


def test_sender_fault_is_not_retried_and_is_reported() -> None:
    # GIVEN a client that refuses one entry as the sender's fault (the message itself is invalid)
    client = FakeSqsClient([fail_ids({"e1"}, "InvalidMessageContents", sender_fault=True)])
    sqs, sleeps = queue(client)
    # WHEN sent
    failed = sqs.send_batch(messages(3))
    # THEN that entry is reported failed with its code, never retried; the others are sent
    assert list(failed) == ["e1"]
    assert type(failed["e1"]) is DeliveryError
    assert failed["e1"].code == "InvalidMessageContents"
    assert client.sent_ids() == [["e0", "e1", "e2"]]
    assert sleeps == []


def test_sender_fault_with_retryable_code_is_retried() -> None:
    # GIVEN an entry failed with a throttling code, flagged as sender fault
    client = FakeSqsClient([fail_ids({"e0"}, "ThrottlingException", sender_fault=True)])
    sqs, _ = queue(client)
    # WHEN sent THEN it is retried and succeeds
    assert sqs.send_batch(messages(2)) == {}
    assert client.sent_ids() == [["e0", "e1"], ["e0"]]


def test_throttling_then_success() -> None:
    # GIVEN a client throttled twice as a whole request, then healthy
    client = FakeSqsClient([raise_error(client_error("ThrottlingException"))] * 2)
    sqs, sleeps = queue(client, attempts=4)
    # WHEN a batch is sent
    failed = sqs.send_batch(messages(3))
    # THEN it is sent after two recorded pauses (no real sleep), with the whole batch each time
    assert failed == {}
    assert client.sent_ids() == [["e0", "e1", "e2"]] * 3
    assert len(sleeps) == 2
    assert all(0 <= s <= 2.0 for s in sleeps)
    assert sqs.requests == 3


def test_throttled_on_every_attempt_fails_every_entry() -> None:
    # GIVEN a client throttled on every request
    client = FakeSqsClient([raise_error(client_error("ThrottlingException"))] * 10)
    sqs, sleeps = queue(client, attempts=4)
    # WHEN a batch is sent
    failed = sqs.send_batch(messages(3))
    # THEN every entry is failed with ThrottledError, after all attempts
    assert set(failed) == {"e0", "e1", "e2"}
    assert all(type(error) is ThrottledError for error in failed.values())
    assert len(client.calls) == 4
    assert len(sleeps) == 3


def test_throttled_after_partial_success_fails_only_pending() -> None:
    # GIVEN a first request that sends e0 but fails e1, then throttling on every request
    steps = [fail_ids({"e1"}, "InternalError", sender_fault=False)]
    steps += [raise_error(client_error("ThrottlingException"))] * 10
    client = FakeSqsClient(steps)
    sqs, _ = queue(client, attempts=3)
    # WHEN sent THEN only e1 is reported failed (e0 is in the queue)
    failed = sqs.send_batch(messages(2))
    assert list(failed) == ["e1"]
    assert type(failed["e1"]) is ThrottledError


@pytest.mark.parametrize("code", ["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"])
def test_missing_queue_fails_everything_without_retry(code: str) -> None:
    # GIVEN a queue that does not exist
    client = FakeSqsClient([raise_error(client_error(code))] * 10)
    sqs, sleeps = queue(client)
    # WHEN a batch is sent
    failed = sqs.send_batch(messages(3))
    # THEN every entry failed with QueueUnavailableError after one request and no pause
    assert set(failed) == {"e0", "e1", "e2"}
    assert all(type(error) is QueueUnavailableError for error in failed.values())
    assert len(client.calls) == 1
    assert sleeps == []


def test_unreachable_endpoint_fails_everything() -> None:
    # GIVEN an endpoint that cannot be reached
    client = FakeSqsClient([raise_error(EndpointConnectionError(endpoint_url=QUEUE))] * 10)
    sqs, _ = queue(client)
    # WHEN sent THEN every entry failed as QueueUnavailableError
    failed = sqs.send_batch(messages(2))
    assert set(failed) == {"e0", "e1"}
    assert all(isinstance(error, QueueUnavailableError) for error in failed.values())


def test_access_denied_fails_everything_without_retry() -> None:
    # GIVEN a role without sqs:SendMessage WHEN sending THEN all entries fail at once, unretried
    client = FakeSqsClient([raise_error(client_error("AccessDenied"))] * 10)
    sqs, sleeps = queue(client)
    assert set(sqs.send_batch(messages(2))) == {"e0", "e1"}
    assert len(client.calls) == 1
    assert sleeps == []


def test_requests_counter_adds_up_across_calls() -> None:
    # GIVEN a queue used for two sends (one retried) and a delete
    client = FakeSqsClient([fail_ids({"e0"}, "InternalError", sender_fault=False)])
    sqs, _ = queue(client)
    sqs.send_batch(messages(2))
    sqs.send_batch(messages(1))
    sqs.delete_batch({"a": "r-a"})
    # WHEN counted THEN every API call is counted once
    assert sqs.requests == len(client.calls) == 4


# ---------------------------------------------------------------- delete_batch


def test_delete_batch_chunks_by_ten_and_reports_failures() -> None:
    # GIVEN 23 receipts, two of which SQS refuses
    client = FakeSqsClient(delete_failures={"m3", "m17"})
    sqs, _ = queue(client)
    receipts = {f"m{i}": f"receipt-{i}" for i in range(23)}
    # WHEN deleted
    failed = sqs.delete_batch(receipts)
    # THEN three requests of 10, 10 and 3 carried the right handles
    deletes = [kwargs["Entries"] for op, kwargs in client.calls if op == "delete_message_batch"]
    assert [len(entries) for entries in deletes] == [10, 10, 3]
    assert {e["Id"]: e["ReceiptHandle"] for entries in deletes for e in entries} == receipts
    # AND exactly the refused ones are reported, with their code
    assert set(failed) == {"m3", "m17"}
    assert all(error.code == "ReceiptHandleIsInvalid" for error in failed.values())


def test_delete_batch_of_nothing_makes_no_request() -> None:
    # GIVEN no receipts WHEN deleted THEN no request is made
    client = FakeSqsClient()
    sqs, _ = queue(client)
    assert sqs.delete_batch({}) == {}
    assert client.calls == []


# ---------------------------------------------------------------- backoff


def test_backoff_pauses_are_bounded_by_cap() -> None:
    # GIVEN a backoff with a recorded sleep
    sleeps: list[float] = []
    backoff = Backoff(base_seconds=0.1, cap_seconds=0.5, sleep=sleeps.append)
    # WHEN pausing for attempts 0..9
    for attempt in range(10):
        backoff.pause(attempt)
    # THEN each pause is within [0, min(cap, base * 2**attempt)]
    for attempt, pause in enumerate(sleeps):
        assert 0 <= pause <= min(0.5, 0.1 * 2**attempt)
