"""Stream-failure replay: reading failed stream ranges back from DynamoDB Streams.

The stream consumer's event source mapping sends an *invocation record* to the stream-failure
queue when a batch fails past its retries. It holds only the range, never the records:

    {"requestContext": {...}, "responseContext": {...}, "version": "1.0", "timestamp": "...",
     "DDBStreamBatchInfo": {"shardId": "...", "startSequenceNumber": "...",
                            "endSequenceNumber": "...", "approximateArrivalOfFirstRecord": "...",
                            "approximateArrivalOfLastRecord": "...", "batchSize": N,
                            "streamArn": "arn:aws:dynamodb:...:table/<t>/stream/<label>"}}

For each, the replayer reads the shard from ``startSequenceNumber`` through ``endSequenceNumber``,
converts the records to the format Lambda delivers and hands them to the consumer's own
``StreamConsumer.process``. The failure record is deleted only when the whole range is in SQS (or
quarantine). Where the stream has trimmed the start of a range (it keeps records 24 hours), what
it still holds of the range is replayed and only the part that is gone is reported lost. A range
with a lost part is reported under ``lost/`` with the part's bounds, and its failure record is
kept (hidden for a while, so scheduled runs do not hot-loop on it).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from changelake.clock import Clock, utc_now
from changelake.consumer import StreamConsumer
from changelake.exceptions import (
    DeliveryError,
    PreconditionFailedError,
    RecordRejected,
    StreamRangeExpiredError,
)
from changelake.failure_queues import delete_handled, quarantine_message
from changelake.integrations.clients import AwsAdapter
from changelake.integrations.s3 import S3Store
from changelake.integrations.sqs import MAX_BATCH_ENTRIES, SqsQueue
from changelake.layout import loss_report_key
from changelake.quarantine import QuarantineWriter
from changelake.records import table_from_arn
from changelake.redrive import MAX_LISTED_IDS, SAMPLE_SIZE, Deadline
from changelake.strict_json import loads_checked, rejecting

#: GetRecords returns at most this many records per call.
GET_RECORDS_LIMIT = 1000
#: Empty GetRecords pages in a row after which an open shard is taken to hold nothing more yet.
MAX_EMPTY_PAGES = 5
#: Fresh iterators fetched for one range after ExpiredIteratorException or a trim while reading
#: (from where reading stands, or from the trim horizon) before giving up.
MAX_ITERATOR_REFRESHES = 3
#: How long a failure record whose range is lost stays hidden before a later run reports it again.
LOST_HOLD_SECONDS = 6 * 3600
#: Service codes meaning the shard or stream no longer exists.
_GONE_CODES = frozenset({"ResourceNotFoundException"})
#: The code of a read the stream refuses because it trimmed the records (past its 24 hours).
_TRIMMED = "TrimmedDataAccessException"
_DIGITS = r"^[0-9]{1,64}$"
#: Lambda's invocation records nest three levels deep. A deeper one is not from Lambda, and its
#: document is written again (indented, by json's recursive pure-Python encoder) in a loss report.
FAILURE_RECORD_NESTING = 32


class MalformedFailureRecordError(RecordRejected):
    """A stream-failure queue message is not a Lambda DynamoDB invocation record."""


class StreamRangeIncompleteError(DeliveryError):
    """The shard did not (yet) hold the whole range; the failure record is kept for a later run."""


class _BatchInfo(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    shard_id: str = Field(alias="shardId", min_length=1, max_length=128)
    start_sequence_number: str = Field(alias="startSequenceNumber", pattern=_DIGITS)
    end_sequence_number: str = Field(alias="endSequenceNumber", pattern=_DIGITS)
    stream_arn: str = Field(alias="streamArn", min_length=1, max_length=2048)
    approximate_arrival_of_first_record: str | None = Field(
        default=None, alias="approximateArrivalOfFirstRecord"
    )
    batch_size: int | None = Field(default=None, alias="batchSize")


class _InvocationRecord(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    batch_info: _BatchInfo = Field(alias="DDBStreamBatchInfo")


@dataclass(frozen=True, slots=True)
class FailedRange:
    """One failed stream batch: sequence numbers ``start`` through ``end`` of one shard."""

    stream_arn: str
    shard_id: str
    start: str
    end: str
    table: str
    first_arrival: str | None = None
    batch_size: int | None = None

    def holds(self, sequence_number: str) -> bool:
        return int(self.start) <= int(sequence_number) <= int(self.end)


def parse_failure_record(body: object) -> tuple[FailedRange, dict[str, Any]]:
    """The range in one stream-failure queue body, and the body as parsed JSON."""
    if not isinstance(body, str):
        raise MalformedFailureRecordError("failure record body is not a string")
    reason = "not a DynamoDB stream invocation record"
    document = loads_checked(body, reason, MalformedFailureRecordError, FAILURE_RECORD_NESTING)
    with rejecting(reason, MalformedFailureRecordError, detail=True):
        info = _InvocationRecord.model_validate(document).batch_info
    if int(info.start_sequence_number) > int(info.end_sequence_number):
        raise MalformedFailureRecordError("startSequenceNumber is after endSequenceNumber")
    try:
        table = table_from_arn(info.stream_arn)
    except RecordRejected as exc:
        raise MalformedFailureRecordError(f"streamArn: {exc.reason}") from exc
    failed = FailedRange(
        stream_arn=info.stream_arn,
        shard_id=info.shard_id,
        start=info.start_sequence_number,
        end=info.end_sequence_number,
        table=table,
        first_arrival=info.approximate_arrival_of_first_record,
        batch_size=info.batch_size,
    )
    return failed, document


def _epoch_seconds(value: object) -> object:
    """``ApproximateCreationDateTime`` as Lambda delivers it: epoch seconds (boto3 gives a datetime)."""
    if not isinstance(value, datetime):
        return value
    seconds = int((value - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() // 1)
    micros = value.microsecond
    return seconds if micros == 0 else seconds + micros / 1_000_000


def _wire_value(attribute: Any) -> Any:
    """One attribute value with binary data base64-encoded, as in the Lambda event."""
    if not isinstance(attribute, dict):
        return attribute
    converted: dict[str, Any] = {}
    for tag, value in attribute.items():
        if tag == "B" and isinstance(value, bytes | bytearray):
            converted[tag] = base64.b64encode(value).decode()
        elif tag == "BS" and isinstance(value, list):
            converted[tag] = [
                base64.b64encode(item).decode() if isinstance(item, bytes) else item for item in value
            ]
        elif tag == "M" and isinstance(value, dict):
            converted[tag] = {name: _wire_value(item) for name, item in value.items()}
        elif tag == "L" and isinstance(value, list):
            converted[tag] = [_wire_value(item) for item in value]
        else:
            converted[tag] = value
    return converted


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (as boto3 returns it) in the format Lambda delivers to the consumer."""
    converted: dict[str, Any] = {
        key: value for key, value in record.items() if key not in ("dynamodb", "userIdentity")
    }
    stream = dict(record.get("dynamodb") or {})
    if "ApproximateCreationDateTime" in stream:
        stream["ApproximateCreationDateTime"] = _epoch_seconds(stream["ApproximateCreationDateTime"])
    for image in ("Keys", "NewImage", "OldImage"):
        if isinstance(stream.get(image), dict):
            stream[image] = {name: _wire_value(value) for name, value in stream[image].items()}
    converted["dynamodb"] = stream
    converted["eventSourceARN"] = stream_arn
    identity = record.get("userIdentity")
    if isinstance(identity, dict):
        # The API spells these PrincipalId/Type; Lambda's event principalId/type.
        converted["userIdentity"] = {
            "type": identity.get("Type", identity.get("type")),
            "principalId": identity.get("PrincipalId", identity.get("principalId")),
        }
    return converted


@dataclass(frozen=True, slots=True)
class LostPart:
    """Records of a range that the stream no longer held when they were to be read.

    Every sequence number of the range after ``after`` (None: from the range's start, itself
    gone) and before ``first_held`` (None: through the range's end). The sequence numbers in
    between are not knowable any more: the stream no longer lists them.
    """

    after: str | None
    first_held: str | None
    error_code: str
    error: str

    @classmethod
    def whole_range(cls, error: DeliveryError) -> LostPart:
        """All of a range: the stream no longer holds any of it (or the shard is gone)."""
        return cls(None, None, error.code, str(error))

    @property
    def is_whole_range(self) -> bool:
        return self.after is None and self.first_held is None

    def bounds(self, failed: FailedRange) -> dict[str, str | None]:
        """The part as the loss report states it: one of from/after, one of before/through."""
        start = f"from {failed.start} (the range's start)" if self.after is None else f"after {self.after}"
        stop = (
            f"through {failed.end} (the range's end)"
            if self.first_held is None
            else f"up to, not including, {self.first_held} (the first record the stream still holds)"
        )
        return {
            "from_sequence_number": failed.start if self.after is None else None,
            "after_sequence_number": self.after,
            "before_sequence_number": self.first_held,
            "through_sequence_number": failed.end if self.first_held is None else None,
            "description": f"sequence numbers {start} {stop}",
        }


def _sequence_number(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


class _RangeRead:
    """Pure bookkeeping of reading one range: what is new, where the stream had trimmed it."""

    def __init__(self, failed: FailedRange) -> None:
        self.failed = failed
        self.last: str | None = None  # the highest sequence number read so far, in the range or not
        self.trim: StreamRangeExpiredError | None = None  # the stream trimmed what was to be read next
        self.done = False

    def trimmed(self, error: StreamRangeExpiredError) -> None:
        """The stream refused to read on from here; reading restarts at its trim horizon."""
        self.trim = self.trim or error

    def take(self, records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]] | LostPart]:
        """The lost part a trim left before ``records`` (a GetRecords page), then the page's new
        records of the range in Lambda's format."""
        if not records:
            return
        new = [record for record in records if self._is_new(_sequence_number(record))]
        if self.trim is not None:
            error, self.trim = self.trim, None
            if not self._still_held(_sequence_number(records[0])):
                first_held = _sequence_number(new[0]) if new else None  # None: past the range's end
                yield LostPart(self.last, first_held, error.code, str(error))
        if new:
            yield [lambda_record(record, self.failed.stream_arn) for record in new]
        last = int(_sequence_number(records[-1]))
        self.last = str(last if self.last is None else max(last, int(self.last)))
        self.done = int(self.last) >= int(self.failed.end)

    def _is_new(self, sequence_number: str) -> bool:
        """In the range and not read yet (reading from a trim horizon may meet records read before)."""
        return self.failed.holds(sequence_number) and (
            self.last is None or int(sequence_number) > int(self.last)
        )

    def _still_held(self, oldest: str) -> bool:
        """Whether the trim horizon ``oldest`` is no later than where reading stood (the range's start,
        or the last record read): then the refusal lost nothing."""
        return int(oldest) <= int(self.failed.start if self.last is None else self.last)


class StreamReader(AwsAdapter):
    """Reads one shard range of a DynamoDB stream (``client=None`` builds one lazily)."""

    service = "dynamodbstreams"

    def __init__(self, *, client: Any = None, max_empty_pages: int = MAX_EMPTY_PAGES) -> None:
        super().__init__(client=client)
        self.max_empty_pages = max_empty_pages

    def _call(self, operation: str, resource: str, **kwargs: Any) -> Any:
        return self._request(operation, resource, **kwargs)

    def _iterator(self, failed: FailedRange, resource: str, **position: str) -> str | None:
        response = self._call(
            "get_shard_iterator", resource, StreamArn=failed.stream_arn, ShardId=failed.shard_id, **position
        )
        iterator = response.get("ShardIterator")
        return str(iterator) if iterator else None

    def _resume(self, read: _RangeRead, resource: str) -> str | None:
        """An iterator where reading stands: the range's start, or just after the last record read;
        the shard's trim horizon where the stream no longer holds that point."""
        if read.trim is None:
            position = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": read.failed.start}
            if read.last is not None:
                position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": read.last}
            try:
                return self._iterator(read.failed, resource, **position)
            except StreamRangeExpiredError as exc:
                if exc.code != _TRIMMED:
                    raise
                read.trimmed(exc)
        # The oldest record the shard still holds; refused too, the range is lost as a whole.
        return self._iterator(read.failed, resource, ShardIteratorType="TRIM_HORIZON")

    def pages(self, failed: FailedRange) -> Iterator[list[dict[str, Any]] | LostPart]:
        """The range's records in Lambda's format, a GetRecords page at a time, and a ``LostPart``
        for each part of it the stream no longer held (before the records that follow it).

        Raises ``StreamRangeExpiredError`` when the stream refuses even its trim horizon (or
        iterators keep expiring), and ``StreamRangeIncompleteError`` when the shard ends before
        the range does.
        """
        resource = f"{failed.stream_arn}/{failed.shard_id}"
        read = _RangeRead(failed)
        iterator, empty, restarts = self._resume(read, resource), 0, 0
        while iterator:
            try:
                response = self._call(
                    "get_records", resource, ShardIterator=iterator, Limit=GET_RECORDS_LIMIT
                )
            except StreamRangeExpiredError as exc:
                # An iterator lives 15 minutes, and the stream may trim past one being read: a fresh
                # iterator from where reading stands (or from the trim horizon) is not a loss.
                if restarts >= MAX_ITERATOR_REFRESHES:
                    raise
                restarts += 1
                if exc.code == _TRIMMED:
                    read.trimmed(exc)
                iterator = self._resume(read, resource)
                continue
            records = response.get("Records", [])
            yield from read.take(records)
            if read.done:
                return
            empty = 0 if records else empty + 1
            if empty >= self.max_empty_pages:
                break
            iterator = response.get("NextShardIterator")
        raise StreamRangeIncompleteError(f"{resource}: the shard ended before sequence number {failed.end}")


@dataclass(slots=True)
class ReplayResult:
    """What one run did with the stream-failure queue."""

    ranges_replayed: int = 0
    records_replayed: int = 0
    records_quarantined: int = 0
    ranges_lost: int = 0
    ranges_partly_lost: int = 0
    ranges_lost_already_reported: int = 0
    ranges_failed: int = 0
    malformed: int = 0
    delete_failed: int = 0
    remaining_estimate: int | None = None
    stopped: str = "empty"
    loss_reports: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "ranges_replayed": self.ranges_replayed,
            "records_replayed": self.records_replayed,
            "records_quarantined": self.records_quarantined,
            "ranges_lost": self.ranges_lost,
            "ranges_partly_lost": self.ranges_partly_lost,
            "ranges_lost_already_reported": self.ranges_lost_already_reported,
            "ranges_failed": self.ranges_failed,
            "malformed": self.malformed,
            "delete_failed": self.delete_failed,
            "remaining_estimate": self.remaining_estimate,
            "stopped": self.stopped,
            "loss_reports": self.loss_reports[:MAX_LISTED_IDS],
            "errors": self.errors[:10],
        }


class StreamFailureReplayer:
    """Replays the ranges in the stream-failure queue into ChangeQueue.

    Delivery guarantee: at-least-once, never lost. A failure record is deleted only after every
    record of its range is in ChangeQueue or quarantine (a retried range re-sends duplicates). A
    range the stream no longer holds gets a loss report under ``lost/`` and its failure record
    stays in the queue; a malformed failure record is quarantined whole before it is deleted.
    """

    def __init__(
        self,
        failures: SqsQueue,
        consumer: StreamConsumer,
        reader: StreamReader,
        store: S3Store,
        *,
        lost_prefix: str = "lost",
        quarantine_prefix: str = "quarantine",
        lost_hold_seconds: int = LOST_HOLD_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        self.failures = failures
        self.consumer = consumer
        self.reader = reader
        self.store = store
        self.lost_prefix = lost_prefix
        self.quarantine = QuarantineWriter(store, quarantine_prefix)
        self.lost_hold_seconds = lost_hold_seconds
        self.clock = clock

    def run(self, max_records: int, deadline: Deadline) -> ReplayResult:
        """Replay up to ``max_records`` failure records, stopping before ``deadline``."""
        result = ReplayResult()
        held: dict[str, str] = {}  # failure records to make visible again at the end
        seen: set[str] = set()
        handled = 0
        try:
            while True:
                if handled >= max_records:
                    result.stopped = "max_messages"
                    break
                if deadline.expired():
                    result.stopped = "deadline"
                    break
                messages = self.failures.receive(
                    min(MAX_BATCH_ENTRIES, max_records - handled), visibility_timeout=deadline.hold_seconds()
                )
                if not messages:
                    result.stopped = "empty"
                    break
                handled += self._handle_batch(messages, result, deadline, held, seen)
        except DeliveryError as exc:
            result.stopped = "error"
            result.errors.append(str(exc))
        finally:
            self._release(held, result)
        try:
            result.remaining_estimate = self.failures.approximate_visible()
        except DeliveryError as exc:
            result.errors.append(str(exc))
        return result

    def _handle_batch(
        self,
        messages: list[dict[str, Any]],
        result: ReplayResult,
        deadline: Deadline,
        held: dict[str, str],
        seen: set[str],
    ) -> int:
        """Handle one receive's failure records; returns how many were new to this run."""
        new = 0
        for message in messages:
            message_id, receipt = str(message["MessageId"]), str(message["ReceiptHandle"])
            if message_id in seen:
                held[message_id] = receipt  # its visibility lapsed mid-run; it was handled already
                continue
            seen.add(message_id)
            new += 1
            if deadline.expired() or not self._handle(message, result, deadline):
                held[message_id] = receipt
        return new

    def _release(self, held: dict[str, str], result: ReplayResult) -> None:
        """Make held failure records visible again (if this fails, their timeout does it)."""
        for receipt in held.values():
            try:
                self.failures.change_visibility(receipt, 0)
            except DeliveryError as exc:
                result.errors.append(f"visible again after the run's timeout: {exc}")

    def _handle(self, message: dict[str, Any], result: ReplayResult, deadline: Deadline) -> bool:
        """Deal with one failure record; False if it must be made visible again at the end."""
        body, receipt = message.get("Body"), str(message["ReceiptHandle"])
        try:
            failed, document = parse_failure_record(body)
        except RecordRejected as exc:
            return self._quarantine(message, exc, result)
        try:
            replayed = self._replay(failed, deadline)
        except DeliveryError as exc:
            if isinstance(exc, StreamRangeExpiredError) or exc.code in _GONE_CODES:
                whole = _Replayed([LostPart.whole_range(exc)])
                return self._report_lost(message, failed, document, whole, result)
            result.ranges_failed += 1
            result.errors.append(str(exc))
            return False
        result.records_replayed += replayed.sent
        result.records_quarantined += replayed.quarantined
        if replayed.lost:
            return self._report_lost(message, failed, document, replayed, result)
        result.ranges_replayed += 1
        self._delete(receipt, result)
        return True

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
        message: dict[str, Any],
        failed: FailedRange,
        document: dict[str, Any],
        replayed: _Replayed,
        result: ReplayResult,
    ) -> bool:
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
            return False
        else:
            result.ranges_lost += 1
            result.ranges_partly_lost += not replayed.lost_whole_range
        result.loss_reports.append(key)
        try:
            self.failures.change_visibility(str(message["ReceiptHandle"]), self.lost_hold_seconds)
        except DeliveryError as exc:
            result.errors.append(str(exc))
        return True

    def _quarantine(self, message: dict[str, Any], error: RecordRejected, result: ReplayResult) -> bool:
        """File a malformed failure record whole in quarantine, then delete it from the queue."""
        try:
            quarantine_message(
                self.quarantine, message, error, source="stream-failure-queue", day=self.clock().date()
            )
        except DeliveryError as exc:
            result.ranges_failed += 1
            result.errors.append(f"malformed failure record not quarantined: {exc}")
            return False
        result.malformed += 1
        self._delete(str(message["ReceiptHandle"]), result)
        return True

    def _delete(self, receipt: str, result: ReplayResult) -> None:
        """Delete a handled failure record (if this fails, a later run replays it again: duplicates)."""
        errors = delete_handled(self.failures, receipt)
        result.delete_failed += len(errors)
        result.errors.extend(errors)

    def sample(self, max_records: int) -> dict[str, Any]:
        """A dry run: the queue's depth and the first few ranges; nothing is hidden or replayed."""
        visible = self.failures.approximate_visible()
        sample: list[dict[str, Any]] = []
        for message in self.failures.receive(min(SAMPLE_SIZE, max_records), visibility_timeout=0):
            item: dict[str, Any] = {"message_id": message["MessageId"]}
            try:
                failed, _ = parse_failure_record(message.get("Body"))
            except RecordRejected as exc:
                item["malformed"] = exc.reason
            else:
                item.update(
                    table=failed.table,
                    shard_id=failed.shard_id,
                    start_sequence_number=failed.start,
                    end_sequence_number=failed.end,
                    batch_size=failed.batch_size,
                    approximate_arrival_of_first_record=failed.first_arrival,
                )
            sample.append(item)
        return {"failure_records_visible": visible, "sample": sample}


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
        "table": failed.table,
        "shard_id": failed.shard_id,
        "start_sequence_number": failed.start,
        "end_sequence_number": failed.end,
        "batch_size": failed.batch_size,
        "approximate_arrival_of_first_record": failed.first_arrival,
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
