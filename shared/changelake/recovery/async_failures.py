"""Asynchronous invocations that failed past their retries, re-run from AsyncFailureQueue.

CompactionFunction (its schedule, its own hand-off) and DlqRedriveFunction's schedule run
asynchronously. When Lambda gives up on such an event (``MaximumRetryAttempts`` or
``MaximumEventAgeInSeconds`` of the function's EventInvokeConfig), it sends a destination record
to AsyncFailureQueue (an alarm watches it)::

    {"version": "1.0", "timestamp": "...",
     "requestContext": {"requestId": "...", "functionArn": "arn:...:function:<name>:$LATEST",
                        "condition": "RetriesExhausted", "approximateInvokeCount": 3},
     "requestPayload": <the original event>,
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
     "responsePayload": <the error>}

The replayer invokes ``functionArn`` again, asynchronously, with ``requestPayload`` exactly, and
deletes the record only once Lambda accepted the invocation; a re-run that fails again comes
back to the queue through the same destination. A record of the redrive function itself is
deleted without an invocation: the run reading it is that re-run. A record that is not a
destination record is quarantined whole, then deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from changelake.clock import Clock, utc_now
from changelake.exceptions import DeliveryError, RecordRejected
from changelake.integrations.base import ObjectStore, Queue
from changelake.integrations.lambda_invoke import LambdaInvoker
from changelake.recovery.failure_queues import FailureQueueReader, Redone
from changelake.recovery.receive import (
    Deadline,
    HoldingRun,
    Message,
    RecoveryResult,
)

_FUNCTION_ARN = r"^arn:[a-z-]+:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[$A-Za-z0-9_-]+)?$"

#: How quarantine names this queue in a malformed message's context.
SOURCE = "async-failure-queue"


class MalformedDestinationRecordError(RecordRejected):
    """An AsyncFailureQueue message is not a Lambda on-failure destination record."""


class _RequestContext(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    function_arn: str = Field(alias="functionArn", pattern=_FUNCTION_ARN)
    condition: str | None = None
    approximate_invoke_count: int | None = Field(default=None, alias="approximateInvokeCount")


class _DestinationRecord(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    request_context: _RequestContext = Field(alias="requestContext")
    request_payload: Any = Field(alias="requestPayload")


@dataclass(frozen=True, slots=True)
class FailedInvocation:
    """One asynchronous invocation Lambda gave up on: which function, and the event it had."""

    function_arn: str
    payload: Any
    condition: str | None

    @property
    def function_name(self) -> str:
        """The function's name (the ARN's seventh field), without a version or alias."""
        return self.function_arn.split(":")[6]


def parse_destination_record(body: object) -> FailedInvocation:
    """The failed invocation in one AsyncFailureQueue body."""
    if not isinstance(body, str):
        raise MalformedDestinationRecordError("destination record body is not a string")
    try:
        record = _DestinationRecord.model_validate(json.loads(body))
    except (ValueError, RecursionError, ValidationError) as exc:
        reason = f"not a Lambda on-failure destination record: {type(exc).__name__}"
        raise MalformedDestinationRecordError(reason) from None
    context = record.request_context
    return FailedInvocation(context.function_arn, record.request_payload, context.condition)


@dataclass(slots=True)
class AsyncReplayResult(RecoveryResult):
    """What one run did with AsyncFailureQueue."""

    reinvoked: int = 0
    superseded: int = 0
    malformed: int = 0
    failed: int = 0
    functions: list[str] = field(default_factory=list)


class AsyncFailureReplayer(FailureQueueReader[FailedInvocation, AsyncReplayResult]):
    """Re-invokes the failed asynchronous invocations in AsyncFailureQueue.

    Delivery guarantee: at-least-once, never lost. A record is deleted only after Lambda accepted
    its re-invocation (or it was quarantined whole); a failed invoke or delete leaves it in the
    queue for a later run (a re-run may then happen twice: every target is idempotent).
    """

    SOURCE = SOURCE

    def __init__(
        self,
        failures: Queue,
        invoker: LambdaInvoker,
        store: ObjectStore,
        *,
        quarantine_prefix: str = "quarantine",
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(failures, store, quarantine_prefix=quarantine_prefix, clock=clock)
        self.invoker = invoker

    def run(self, max_records: int, deadline: Deadline, *, own_function_name: str) -> AsyncReplayResult:
        """Re-run up to ``max_records`` failed invocations, stopping before ``deadline``;
        ``own_function_name`` is the redrive function's (its own failed runs are superseded)."""

        def reinvoke(failed: FailedInvocation, _: Message, run: HoldingRun[AsyncReplayResult]) -> Redone:
            return self._reinvoke(failed, run.outcome, own_function_name)

        return self.replay(AsyncReplayResult(), max_records, deadline, reinvoke)

    def _reinvoke(
        self, failed: FailedInvocation, result: AsyncReplayResult, own_function_name: str
    ) -> Redone:
        if failed.function_name == own_function_name:
            result.superseded += 1  # a failed redrive: this run is its re-run
            return Redone.DONE
        payload = json.dumps(failed.payload, separators=(",", ":")).encode()
        try:
            self.invoker.invoke_event(failed.function_arn, payload)
        except DeliveryError as exc:
            result.failed += 1
            result.errors.append(str(exc))
            return Redone.RETRY
        result.reinvoked += 1
        result.functions.append(failed.function_name)
        return Redone.DONE

    def parse(self, body: object) -> FailedInvocation:
        return parse_destination_record(body)

    def describe(self, failure: FailedInvocation) -> dict[str, Any]:
        return {"function": failure.function_name, "condition": failure.condition}

    def count_malformed(self, result: AsyncReplayResult) -> None:
        result.malformed += 1

    def count_failed(self, result: AsyncReplayResult) -> None:
        result.failed += 1
