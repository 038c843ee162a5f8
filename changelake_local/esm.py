"""Event source mappings, run locally the way Lambda runs them, from the template's settings.

``StreamMapping`` polls a DynamoDB stream (DescribeStream, GetShardIterator, and GetRecords read
as the service's JSON by ``changelake_local.streams_wire``), turns the records into the Lambda
event format (TTL deletes marked by ``changelake_local.ttl``, as moto never expires items) and
invokes the function with Lambda's semantics:
batch size and batching window, ReportBatchItemFailures as a checkpoint (everything before the
lowest reported sequence number is done; the rest is retried), bisect on function error, finite
retries, maximum record age, and the on-failure destination (a DDBStreamBatchInfo record sent to
the SQS queue) once a range is given up.

``SqsMapping`` long-polls an SQS queue with the batch size, batching window and Lambda's 6 MB
payload limit, and applies ReportBatchItemFailures per message: the messages reported (or all,
on a function error) are not deleted and come back after the queue's visibility timeout, so the
queue's redrive policy moves them to the DLQ after maxReceiveCount receives.

Differences from Lambda: one poller per mapping (Lambda scales SQS pollers out; moto's stream has
one shard, so one poller is what Lambda would use too); ``failed_visibility_seconds`` can shorten
the wait before a failed message returns (off by default, used by tests); a drain flushes the
batching window early.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from changelake.formats.lambda_events import lambda_record, sqs_event
from changelake_local.aws import client
from changelake_local.deployed_stack import DeployedStack, MappingSpec
from changelake_local.endpoint import REGION
from changelake_local.functions import LocalFunction
from changelake_local.mapping_rules import (
    Attempt,
    GiveUp,
    Outcome,
    StreamRetryRules,
    on_failure_record,
    read_response,
    sequence_numbers,
)
from changelake_local.streams_wire import StreamsWire
from changelake_local.ttl import marked_if_ttl_delete

#: Lambda's synchronous invocation payload limit, which also caps an SQS batch.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024

StreamRecordsHook = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
InvokeHook = Callable[[str, dict[str, Any]], None]


@dataclass
class Hooks:
    """Fault injection for tests and experiments (all optional).

    ``stream_records`` rewrites each converted stream batch before delivery (e.g. a poison
    record); ``before_invoke(logical_id, event)`` runs before every invocation and may raise,
    which the mapping treats as the function failing; ``after_invoke`` likewise after a
    successful invocation (the work is done, the answer lost); ``on_drain`` is called when the
    writes stop and the pipeline drains (a fault profile's outage ends there).
    """

    stream_records: StreamRecordsHook | None = None
    before_invoke: InvokeHook | None = None
    after_invoke: InvokeHook | None = None
    on_drain: Callable[[], None] | None = None


@dataclass
class MappingStats:
    batches: int = 0
    records: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    retries: int = 0
    bisects: int = 0
    sent_to_on_failure: int = 0
    last_error: str | None = None


class IteratorAge:
    """Lambda's IteratorAge metric of a stream mapping: at each invocation, the age of the batch's
    last record (now minus its ApproximateCreationDateTime, epoch seconds). ``take`` returns the
    largest since the previous ``take`` (CloudWatch's Maximum over a period) and starts a new one."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._largest: float | None = None

    def observe(self, batch: list[dict[str, Any]]) -> None:
        created = batch[-1]["dynamodb"].get("ApproximateCreationDateTime")
        if not isinstance(created, int | float):
            return
        age = max(0.0, self._clock() - created)
        with self._lock:
            self._largest = age if self._largest is None else max(self._largest, age)

    def take(self) -> float | None:
        with self._lock:
            largest, self._largest = self._largest, None
        return largest


def lambda_stream_record(record: dict[str, Any], stream_arn: str, *, wire: bool = False) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it to the function: parsed by boto3 (binary as
    bytes, times as datetime; converted as the redrive's replay does), or with ``wire`` as the
    service's JSON (already Lambda's encoding); a REMOVE of an expired item marked as DynamoDB's
    TTL marks it (``changelake_local.ttl``: moto never expires items).
    """
    converted = {**record, "eventSourceARN": stream_arn} if wire else lambda_record(record, stream_arn)
    converted = {"eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": REGION, **converted}
    dynamodb = dict(converted["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, int | float):
        dynamodb["ApproximateCreationDateTime"] = round(created, 3)
    converted["dynamodb"] = dynamodb
    return marked_if_ttl_delete(converted)


@dataclass(frozen=True)
class MappingRun:
    """What every mapping of one run shares: the stack, the fault hooks, and the run's signals to
    stop and to drain (flush the batching window: the writes have stopped)."""

    stack: DeployedStack
    hooks: Hooks
    stop: threading.Event
    drain: threading.Event


class _Mapping(threading.Thread):
    def __init__(self, spec: MappingSpec, function: LocalFunction, run: MappingRun) -> None:
        super().__init__(name=spec.logical_id, daemon=True)
        self.spec = spec
        self.function = function
        self.stack = run.stack
        self.hooks = run.hooks
        self.stop_event = run.stop
        self.drain_event = run.drain
        self.stats = MappingStats()
        self.idle = False
        self.crashed: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - reported by the pipeline, which then stops
            self.crashed = exc

    def _loop(self) -> None:
        raise NotImplementedError

    def _injected(self, hook: InvokeHook | None, event: dict[str, Any]) -> None:
        """Run a fault hook; its failure counts as the function's own."""
        if hook is None:
            return
        try:
            hook(self.function.logical_id, event)
        except Exception as exc:
            self.function.errors += 1
            self.function.last_error = f"{type(exc).__name__}: {exc}"
            raise

    def _invoke(self, event: dict[str, Any], identifiers: list[str]) -> Outcome:
        """Invoke and read the response with ReportBatchItemFailures semantics."""
        self.stats.batches += 1
        try:
            self._injected(self.hooks.before_invoke, event)
            response = self.function.invoke(event)
            self._injected(self.hooks.after_invoke, event)
        except Exception as exc:  # noqa: BLE001 - any exception is a function error to Lambda
            self.stats.function_errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            return Outcome.function_error(identifiers, self.stats.last_error)
        outcome = read_response(
            response, identifiers, report_batch_item_failures=self.spec.report_batch_item_failures
        )
        if not outcome.ok:
            self.stats.partial_failures += 1
        return outcome


class StreamMapping(_Mapping):
    """DynamoDB stream -> function, with Lambda's checkpoint, retry, bisect and destination."""

    def __init__(
        self,
        spec: MappingSpec,
        function: LocalFunction,
        run: MappingRun,
        *,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        poll_interval: float = 0.25,
        retry_backoff: float = 0.2,
    ) -> None:
        super().__init__(spec, function, run)
        self.streams = client("dynamodbstreams", run.stack.endpoint)
        self.wire = StreamsWire(run.stack.endpoint)
        self.sqs = client("sqs", run.stack.endpoint)
        self.on_record = on_record
        self.poll_interval = poll_interval
        self.retry_backoff = retry_backoff
        self.records_read = 0
        self.iterator_age = IteratorAge()

    def _loop(self) -> None:
        description = self.streams.describe_stream(StreamArn=self.spec.source_arn)["StreamDescription"]
        shards = description["Shards"]
        # moto's stream has one shard that never rotates; a real table's stream has many
        shard_id = shards[0]["ShardId"]
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.spec.source_arn,
            ShardId=shard_id,
            ShardIteratorType=self.spec.starting_position or "TRIM_HORIZON",
        )["ShardIterator"]
        try:
            self._poll(shard_id, iterator)
        finally:
            self.wire.close()

    def _poll(self, shard_id: str, iterator: str) -> None:
        buffer: list[dict[str, Any]] = []
        window_start = 0.0
        while not self.stop_event.is_set():
            response = self.wire.call("GetRecords", {"ShardIterator": iterator, "Limit": 1000})
            iterator = response.get("NextShardIterator") or iterator
            records = [
                lambda_stream_record(item, self.spec.source_arn, wire=True)
                for item in response.get("Records", [])
            ]
            if records:
                self.records_read += len(records)
                if self.on_record is not None:
                    for record in records:
                        self.on_record(record)
                if not buffer:
                    window_start = time.monotonic()
                buffer.extend(records)
            window_over = time.monotonic() - window_start >= self.spec.batching_window
            if buffer and (len(buffer) >= self.spec.batch_size or window_over or self.drain_event.is_set()):
                self.idle = False
                batch, buffer = buffer[: self.spec.batch_size], buffer[self.spec.batch_size :]
                self._deliver(shard_id, batch)
                if buffer:
                    window_start = time.monotonic()
                continue
            self.idle = not buffer and not records
            if not records:
                self.stop_event.wait(self.poll_interval)

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        """One batch to the end: success, or retries/bisects, or the on-failure destination."""
        if self.hooks.stream_records is not None:
            records = self.hooks.stream_records(records)
        rules = StreamRetryRules.of(self.spec)
        pending: deque[Attempt] = deque([Attempt(records)])
        while pending and not self.stop_event.is_set():
            attempt = pending.popleft()
            if not attempt.records:
                continue
            expired = rules.expired(attempt, time.time())
            if expired is not None:
                self._give_up(shard_id, expired)
                continue
            self.stats.records += len(attempt.records)
            self.iterator_age.observe(attempt.records)
            identifiers = sequence_numbers(attempt.records)
            next_step = rules.after(attempt, self._invoke({"Records": attempt.records}, identifiers))
            if isinstance(next_step, GiveUp):
                self._give_up(shard_id, next_step)
                continue
            if not next_step:
                continue
            self.stats.retries += 1
            if len(next_step) > 1:
                self.stats.bisects += 1
            self.stop_event.wait(min(2.0, self.retry_backoff * 2**attempt.number))
            pending.extendleft(reversed(next_step))

    def _give_up(self, shard_id: str, give_up: GiveUp) -> None:
        """Send Lambda's on-failure record for the batch to the destination (or drop, as Lambda does)."""
        self.stats.sent_to_on_failure += len(give_up.records)
        if self.spec.on_failure_arn is None:
            return
        record = on_failure_record(
            give_up,
            shard_id=shard_id,
            stream_arn=self.spec.source_arn,
            function_arn=self.function.spec.arn,
            request_id=str(uuid.uuid4()),
            now=time.time(),
        )
        self.sqs.send_message(
            QueueUrl=self.stack.queue_url_of_arn(self.spec.on_failure_arn), MessageBody=json.dumps(record)
        )


class SqsMapping(_Mapping):
    """SQS queue -> function, with per-message ReportBatchItemFailures."""

    def __init__(
        self,
        spec: MappingSpec,
        function: LocalFunction,
        run: MappingRun,
        *,
        failed_visibility_seconds: int | None = None,
        wait_seconds: int = 1,
    ) -> None:
        super().__init__(spec, function, run)
        self.sqs = client("sqs", run.stack.endpoint)
        self.queue_url = run.stack.queue_url_of_arn(spec.source_arn)
        self.failed_visibility_seconds = failed_visibility_seconds
        self.wait_seconds = wait_seconds
        self.messages_deleted = 0

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            batch = self._gather()
            if not batch:
                self.idle = True
                continue
            self.idle = False
            self._deliver(batch)

    def _gather(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        payload = 0
        window_start = 0.0
        while not self.stop_event.is_set() and len(batch) < self.spec.batch_size:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.spec.batch_size - len(batch)),
                WaitTimeSeconds=self.wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if messages and not batch:
                window_start = time.monotonic()
            batch.extend(messages)
            payload += sum(len(message["Body"]) + 1024 for message in messages)
            if not batch:
                return batch
            if (
                payload >= MAX_PAYLOAD_BYTES - 300 * 1024
                or time.monotonic() - window_start >= self.spec.batching_window
                or (self.drain_event.is_set() and not messages)
            ):
                break
        return batch

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        self.stats.records += len(messages)
        identifiers = [message["MessageId"] for message in messages]
        outcome = self._invoke(sqs_event(messages, self.spec.source_arn, REGION), identifiers)
        failed = set(outcome.failed_ids)
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(chunk)
                ],
            )
        self.messages_deleted += len(done)
        if failed and self.failed_visibility_seconds is not None:
            retry = [message for message in messages if message["MessageId"] in failed]
            for start in range(0, len(retry), 10):
                chunk = retry[start : start + 10]
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {
                            "Id": str(index),
                            "ReceiptHandle": m["ReceiptHandle"],
                            "VisibilityTimeout": self.failed_visibility_seconds,
                        }
                        for index, m in enumerate(chunk)
                    ],
                )
