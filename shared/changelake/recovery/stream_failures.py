"""Stream-failure replay: reading failed stream ranges back from DynamoDB Streams.

For each failure record (``changelake.formats.lambda_events``) the replayer reads the shard from
``startSequenceNumber`` through ``endSequenceNumber`` (``changelake.integrations.streams``) and
hands the records, in the format Lambda delivers, to the consumer's own
``StreamConsumer.process``. The failure record is deleted only when the whole range is in SQS (or
quarantine). Where the stream has trimmed the start of a range (it keeps records 24 hours), what
it still holds of the range is replayed and only the part that is gone is reported lost. A range
with a lost part is reported under ``lost/`` with the part's bounds, and its failure record is
kept (hidden for a while, so scheduled runs do not hot-loop on it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from changelake.clock import Clock, utc_now
from changelake.exceptions import (
    DeliveryError,
    PreconditionFailedError,
    StreamRangeExpiredError,
)
from changelake.formats.lambda_events import FailedRange, parse_failure_record
from changelake.formats.layout import loss_report_key
from changelake.ingest.consumer import StreamConsumer
from changelake.integrations.base import ObjectStore, Queue
from changelake.integrations.streams import LostPart, StreamReader
from changelake.recovery.failure_queues import FailureQueueReader, Redone
from changelake.recovery.receive import (
    Deadline,
    HoldingRun,
    Message,
    RecoveryResult,
)

#: How long a failure record whose range is lost stays hidden before a later run reports it again.
LOST_HOLD_SECONDS = 6 * 3600
#: Service codes meaning the shard or stream no longer exists.
_GONE_CODES = frozenset({"ResourceNotFoundException"})

#: How quarantine names this queue in a malformed message's context.
SOURCE = "stream-failure-queue"


@dataclass(slots=True)
class ReplayResult(RecoveryResult):
    """What one run did with the stream-failure queue."""

    ranges_replayed: int = 0
    records_replayed: int = 0
    records_quarantined: int = 0
    ranges_lost: int = 0
    ranges_partly_lost: int = 0
    ranges_lost_already_reported: int = 0
    ranges_failed: int = 0
    malformed: int = 0
    loss_reports: list[str] = field(default_factory=list)


class StreamFailureReplayer(FailureQueueReader[tuple[FailedRange, dict[str, Any]], ReplayResult]):
    """Replays the ranges in the stream-failure queue into ChangeQueue.

    Delivery guarantee: at-least-once, never lost. A failure record is deleted only after every
    record of its range is in ChangeQueue or quarantine (a retried range re-sends duplicates). A
    range the stream no longer holds gets a loss report under ``lost/`` and its failure record
    stays in the queue; a malformed failure record is quarantined whole before it is deleted.
    """

    SOURCE = SOURCE
    DEADLINE_PER_RECORD = True  # a range is read from its shard page by page

    def __init__(
        self,
        failures: Queue,
        consumer: StreamConsumer,
        reader: StreamReader,
        store: ObjectStore,
        *,
        lost_prefix: str = "lost",
        quarantine_prefix: str = "quarantine",
        lost_hold_seconds: int = LOST_HOLD_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(failures, store, quarantine_prefix=quarantine_prefix, clock=clock)
        self.consumer = consumer
        self.reader = reader
        self.store = store
        self.lost_prefix = lost_prefix
        self.lost_hold_seconds = lost_hold_seconds

    def run(self, max_records: int, deadline: Deadline) -> ReplayResult:
        """Replay up to ``max_records`` failure records, stopping before ``deadline``."""
        return self.replay(ReplayResult(), max_records, deadline, self._replay_range)

    def _replay_range(
        self, record: tuple[FailedRange, dict[str, Any]], message: Message, run: HoldingRun[ReplayResult]
    ) -> Redone:
        """Replay one failure record's range; done once all of it is in ChangeQueue or quarantine."""
        failed, document = record
        result = run.outcome
        try:
            replayed = self._replay(failed, run.deadline)
        except DeliveryError as exc:
            if isinstance(exc, StreamRangeExpiredError) or exc.code in _GONE_CODES:
                whole = _Replayed([LostPart.whole_range(exc)])
                return self._report_lost(message, failed, document, whole, result)
            result.ranges_failed += 1
            result.errors.append(str(exc))
            return Redone.RETRY
        result.records_replayed += replayed.sent
        result.records_quarantined += replayed.quarantined
        if replayed.lost:
            return self._report_lost(message, failed, document, replayed, result)
        result.ranges_replayed += 1
        return Redone.DONE

    def _replay(self, failed: FailedRange, deadline: Deadline) -> _Replayed:
        """Send what the stream holds of the range through the consumer; collect what it no longer holds."""
        replayed = _Replayed([])
        for page in self.reader.pages(failed):
            if isinstance(page, LostPart):
                replayed.lost.append(page)
                continue
            outcome = self.consumer.process(page)
            if outcome.failed_sequence_number is not None:
                raise DeliveryError(
                    f"{failed.stream_arn}/{failed.shard_id}: not all records reached the queue: "
                    + "; ".join(outcome.errors[:3])
                )
            replayed.sent += outcome.records_sent
            replayed.quarantined += outcome.quarantined
            if deadline.expired():
                raise DeliveryError(f"{failed.stream_arn}/{failed.shard_id}: deadline reached mid-range")
        return replayed

    def _report_lost(
        self,
        message: Message,
        failed: FailedRange,
        document: dict[str, Any],
        replayed: _Replayed,
        result: ReplayResult,
    ) -> Redone:
        """Write the loss report (once per failure record) and hide the record for a while."""
        now = self.clock()
        body = str(message.get("Body"))
        digest = hashlib.sha256(body.encode()).hexdigest()[:32]
        key = loss_report_key(
            self.lost_prefix, failed.table, _arrival_day(failed.first_arrival) or now.date(), digest
        )
        report = loss_report(failed, document, replayed, message.get("MessageId"), now)
        # Strict JSON: the failure record was read strictly and nests at most FAILURE_RECORD_NESTING.
        payload = json.dumps(report, indent=2, sort_keys=True, default=str, allow_nan=False).encode()
        try:
            self.store.put(key, payload, content_type="application/json", if_none_match=True)
        except PreconditionFailedError:
            result.ranges_lost_already_reported += 1  # an earlier run wrote this record's report
        except DeliveryError as exc:
            result.ranges_failed += 1
            result.errors.append(f"loss report not written: {exc}")
            return Redone.RETRY
        else:
            result.ranges_lost += 1
            result.ranges_partly_lost += not replayed.lost_whole_range
        result.loss_reports.append(key)
        try:
            self.failures.change_visibility(str(message["ReceiptHandle"]), self.lost_hold_seconds)
        except DeliveryError as exc:
            result.errors.append(str(exc))
        return Redone.KEPT

    def parse(self, body: object) -> tuple[FailedRange, dict[str, Any]]:
        return parse_failure_record(body)

    def describe(self, failure: tuple[FailedRange, dict[str, Any]]) -> dict[str, Any]:
        failed, _ = failure
        return failed.described()

    def count_malformed(self, result: ReplayResult) -> None:
        result.malformed += 1

    def count_failed(self, result: ReplayResult) -> None:
        result.ranges_failed += 1


@dataclass(slots=True)
class _Replayed:
    """What replaying one range did: records sent and quarantined, parts the stream no longer held."""

    lost: list[LostPart]
    sent: int = 0
    quarantined: int = 0

    @property
    def lost_whole_range(self) -> bool:
        return len(self.lost) == 1 and self.lost[0].is_whole_range


def loss_report(
    failed: FailedRange, document: dict[str, Any], replayed: _Replayed, message_id: object, now: datetime
) -> dict[str, Any]:
    """The loss report of a range with lost parts: the range, what is gone (bounds), what was replayed."""
    first = replayed.lost[0]
    return {
        "reason": "the stream no longer holds this range"
        if replayed.lost_whole_range
        else "the stream no longer holds part of this range; the rest was replayed",
        "error_code": first.error_code,
        "error": first.error,
        "lost_parts": [part.bounds(failed) for part in replayed.lost],
        "records_replayed": replayed.sent,
        "stream_arn": failed.stream_arn,
        **failed.described(),
        "detected_at": now.isoformat().replace("+00:00", "Z"),
        "failure_message_id": message_id,
        "failure_record": document,
    }


def _arrival_day(text: str | None) -> date | None:
    """The UTC day of an ISO 8601 timestamp from the invocation record, if readable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC).date() if parsed.tzinfo else parsed.date()
