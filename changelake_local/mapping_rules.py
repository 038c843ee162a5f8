"""Lambda's rules for an event source mapping, as pure functions the local mappings apply.

* ``read_response``: ReportBatchItemFailures. An empty list is success; an identifier that is not
  one of the batch's (or not a string) fails the whole batch, as Lambda does.
* ``unprocessed``: the stream checkpoint. Everything before the lowest sequence number reported
  is done; that record and all after it are retried (all of them after a function error).
* ``StreamRetryRules.after``: what follows a failed stream batch: give up once the retries are
  spent (``RetryAttemptsExhausted``), else bisect a batch that failed as a whole (when
  ``BisectBatchOnFunctionError`` is on and it holds more than one record), else retry what is
  unprocessed. ``StreamRetryRules.expired``: a batch whose oldest record is older than
  ``MaximumRecordAgeInSeconds`` is given up unread (``RecordAgeExceeded``).
* ``on_failure_record``: the invocation record Lambda sends to the on-failure destination, with
  the range (``DDBStreamBatchInfo``) and never the records.

The "nothing lost" verdict of ``make run`` rests on these; tests/unit/local holds their tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from changelake_local.deployed_stack import MappingSpec

Record = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """One invocation's result as Lambda reads it; ``failed_ids`` are the items to retry."""

    ok: bool
    failed_ids: list[str] = field(default_factory=list)
    error: str | None = None
    whole_batch: bool = False

    @classmethod
    def function_error(cls, identifiers: Sequence[str], error: str) -> Outcome:
        """The function raised (or its response was unusable): every item of the batch failed."""
        return cls(ok=False, failed_ids=list(identifiers), error=error, whole_batch=True)


def read_response(
    response: object, identifiers: Sequence[str], *, report_batch_item_failures: bool
) -> Outcome:
    """The outcome of a response to a batch of ``identifiers`` (sequence numbers or message IDs)."""
    if not report_batch_item_failures or not isinstance(response, dict):
        return Outcome(ok=True)
    failures = response.get("batchItemFailures") or []
    failed = [item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures]
    if not failed:
        return Outcome(ok=True)
    known = set(identifiers)
    if any(not isinstance(item, str) or item not in known for item in failed):
        return Outcome.function_error(identifiers, "invalid batchItemFailures")
    return Outcome(ok=False, failed_ids=[str(item) for item in failed])


def sequence_numbers(records: Sequence[Record]) -> list[str]:
    return [record["dynamodb"]["SequenceNumber"] for record in records]


def unprocessed(records: list[Record], outcome: Outcome) -> list[Record]:
    """The records a failed stream batch still has to deliver (the checkpoint)."""
    if outcome.whole_batch:
        return records
    first_failed = min(outcome.failed_ids, key=int)
    return records[sequence_numbers(records).index(first_failed) :]


@dataclass(frozen=True)
class Attempt:
    """Records to invoke with; ``number`` counts the retries before it (0: the first invocation)."""

    records: list[Record]
    number: int = 0


@dataclass(frozen=True)
class GiveUp:
    """Records sent to the on-failure destination; ``invokes`` is Lambda's approximateInvokeCount."""

    records: list[Record]
    condition: str
    invokes: int


@dataclass(frozen=True)
class StreamRetryRules:
    """A stream mapping's retry settings (-1: unlimited, as the template writes it)."""

    maximum_retry_attempts: int
    maximum_record_age: int
    bisect_on_error: bool

    @classmethod
    def of(cls, spec: MappingSpec) -> StreamRetryRules:
        return cls(spec.maximum_retry_attempts, spec.maximum_record_age, spec.bisect_on_error)

    def expired(self, attempt: Attempt, now: float) -> GiveUp | None:
        """Give up a batch whose oldest record is past the maximum record age (epoch seconds ``now``)."""
        oldest = float(attempt.records[0]["dynamodb"].get("ApproximateCreationDateTime", now))
        if 0 <= self.maximum_record_age < now - oldest:
            return GiveUp(attempt.records, "RecordAgeExceeded", attempt.number)
        return None

    def after(self, attempt: Attempt, outcome: Outcome) -> GiveUp | list[Attempt]:
        """What follows ``outcome``: nothing (success), a give-up, or the attempts to make next, in order."""
        if outcome.ok:
            return []
        remaining = unprocessed(attempt.records, outcome)
        if 0 <= self.maximum_retry_attempts <= attempt.number:
            return GiveUp(remaining, "RetryAttemptsExhausted", attempt.number + 1)
        number = attempt.number + 1
        if self.bisect_on_error and outcome.whole_batch and len(remaining) > 1:
            middle = len(remaining) // 2
            return [Attempt(remaining[:middle], number), Attempt(remaining[middle:], number)]
        return [Attempt(remaining, number)]


def on_failure_record(
    give_up: GiveUp,
    *,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    request_id: str,
    now: float,
) -> dict[str, Any]:
    """The invocation record Lambda sends to a stream mapping's on-failure destination."""
    first, last = give_up.records[0]["dynamodb"], give_up.records[-1]["dynamodb"]
    return {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": give_up.condition,
            "approximateInvokeCount": give_up.invokes,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": iso_time(now),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": iso_time(float(first["ApproximateCreationDateTime"])),
            "approximateArrivalOfLastRecord": iso_time(float(last["ApproximateCreationDateTime"])),
            "batchSize": len(give_up.records),
            "streamArn": stream_arn,
        },
    }


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
