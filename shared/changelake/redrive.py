"""DLQ redrive: moving ChangeDLQ messages back to ChangeQueue, one safe step at a time.

Order of work for every batch: receive (hidden from other readers for the rest of the run), send
to ChangeQueue, and delete from the DLQ only what the send reported stored. Messages that are not
moved (filtered out, redriven too often, send failed) are made visible again when the run ends.
A crash at any point leaves each message in the DLQ, in ChangeQueue, or in both; never in neither.

Also here: the manual event (``RedriveRequest``), the Lambda deadline and the rate limiter, which
the stream-failure replay (``changelake.replay``) shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from changelake.exceptions import DeliveryError, InvalidEventError
from changelake.integrations.sqs import MAX_BATCH_ENTRIES, OutboundMessage, SqsQueue

#: Message attribute counting how often a message was redriven (added by the redrive).
REDRIVE_COUNT_ATTRIBUTE = "changelake-redrive-count"
#: Stop this long before the Lambda deadline: one batch (receive, send, delete) fits well within.
DEFAULT_SAFETY_MARGIN_MS = 15_000
#: Longest visibility timeout SQS allows (12 hours).
MAX_VISIBILITY_SECONDS = 43_200
#: How many sampled messages a dry run returns (one receive).
SAMPLE_SIZE = 10
#: Message ids listed in a summary per category, so the response stays small.
MAX_LISTED_IDS = 50


class RedriveRequest(BaseModel):
    """The manual (or scheduled) event of DlqRedriveFunction; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    max_messages: int = Field(default=1000, ge=1, le=1_000_000)
    dry_run: bool = False
    #: At most this many DLQ messages per second are moved (None: as fast as SQS allows).
    rate_per_second: float | None = Field(default=None, gt=0, le=10_000)
    #: Only messages whose attributes have exactly these string values are moved; others are skipped.
    attribute_filter: dict[str, str] | None = Field(default=None, min_length=1, max_length=10)
    #: Also replay the stream ranges in the stream-failure queue (before the DLQ: they expire first).
    replay_stream_failures: bool = True
    #: Also re-run the asynchronous invocations (compaction) in the async-failure queue.
    replay_async_failures: bool = True


def parse_request(event: object) -> RedriveRequest:
    """The validated request in ``event``; ``InvalidEventError`` names the first bad field."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise InvalidEventError("event", "must be a JSON object")
    try:
        return RedriveRequest.model_validate(event)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"]) or "event"
        raise InvalidEventError(name, str(error["msg"])) from exc


class _RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a run must stop: ``margin_ms`` before the invocation's remaining time runs out."""

    remaining_ms: Callable[[], int]
    margin_ms: int = DEFAULT_SAFETY_MARGIN_MS

    @classmethod
    def of_context(cls, context: _RemainingTime, margin_ms: int = DEFAULT_SAFETY_MARGIN_MS) -> Deadline:
        return cls(context.get_remaining_time_in_millis, margin_ms)

    @classmethod
    def after_seconds(
        cls, seconds: float, *, monotonic: Callable[[], float] = time.monotonic, margin_ms: int = 0
    ) -> Deadline:
        """A deadline ``seconds`` from now (for runs outside Lambda)."""
        end = monotonic() + seconds
        return cls(lambda: int((end - monotonic()) * 1000), margin_ms)

    def seconds_left(self) -> float:
        """Seconds of work left before the run must stop (never negative)."""
        return max(0.0, (self.remaining_ms() - self.margin_ms) / 1000)

    def expired(self) -> bool:
        return self.remaining_ms() <= self.margin_ms

    def hold_seconds(self) -> int:
        """A visibility timeout that hides a received message until just after this run ends."""
        return int(min(MAX_VISIBILITY_SECONDS, self.remaining_ms() / 1000 + 30))


class RateLimiter:
    """At most ``per_second`` items per second, on an injected clock and sleep (None: no limit)."""

    def __init__(
        self,
        per_second: float | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self.monotonic = monotonic
        self.sleep = sleep
        self._start: float | None = None
        self._admitted = 0

    def delay(self) -> float:
        """Seconds to wait before the next item may go."""
        if self.per_second is None or self._start is None:
            return 0.0
        return max(0.0, self._start + self._admitted / self.per_second - self.monotonic())

    def batch_size(self, wanted: int) -> int:
        """``wanted`` capped so that one batch never exceeds one second's allowance (at least 1)."""
        if self.per_second is None:
            return wanted
        return max(1, min(wanted, int(self.per_second)))

    def wait(self) -> None:
        pause = self.delay()
        if pause > 0:
            self.sleep(pause)

    def admit(self, count: int) -> None:
        """Record that ``count`` items went."""
        if self._start is None:
            self._start = self.monotonic()
        self._admitted += count


def send_attributes(received: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Received message attributes (``StringValue``/``BinaryValue``/``DataType``) in send format."""
    converted: dict[str, dict[str, Any]] = {}
    for name, attribute in received.items():
        value: dict[str, Any] = {"DataType": attribute["DataType"]}
        if attribute.get("StringValue") is not None:
            value["StringValue"] = attribute["StringValue"]
        if attribute.get("BinaryValue") is not None:
            value["BinaryValue"] = attribute["BinaryValue"]
        converted[name] = value
    return converted


def redrive_count(attributes: Mapping[str, Any]) -> int:
    """How often a message was redriven before (0 without, or with an unreadable, counter)."""
    text = attributes.get(REDRIVE_COUNT_ATTRIBUTE, {}).get("StringValue")
    return int(text) if isinstance(text, str) and text.isdigit() else 0


def matches(attributes: Mapping[str, Any], attribute_filter: Mapping[str, str] | None) -> bool:
    """True if every filter entry equals the attribute's string value exactly."""
    if not attribute_filter:
        return True
    return all(
        attributes.get(name, {}).get("StringValue") == value for name, value in attribute_filter.items()
    )


def redriven(message: Mapping[str, Any], entry_id: str) -> OutboundMessage:
    """The message to send back: same body and attributes, redrive counter incremented."""
    attributes = dict(message.get("MessageAttributes") or {})
    converted = send_attributes(attributes)
    converted[REDRIVE_COUNT_ATTRIBUTE] = {
        "DataType": "Number",
        "StringValue": str(redrive_count(attributes) + 1),
    }
    return OutboundMessage(entry_id, str(message["Body"]), converted)


@dataclass(slots=True)
class RedriveResult:
    """What one redrive run did with the DLQ."""

    moved: int = 0
    failed: int = 0
    skipped: int = 0
    left_too_many_redrives: int = 0
    delete_failed: int = 0
    remaining_estimate: int | None = None
    stopped: str = "empty"
    left_message_ids: list[str] = field(default_factory=list)
    failed_message_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "moved": self.moved,
            "failed": self.failed,
            "skipped": self.skipped,
            "left_too_many_redrives": self.left_too_many_redrives,
            "delete_failed": self.delete_failed,
            "remaining_estimate": self.remaining_estimate,
            "stopped": self.stopped,
            "left_message_ids": self.left_message_ids[:MAX_LISTED_IDS],
            "failed_message_ids": self.failed_message_ids[:MAX_LISTED_IDS],
            "errors": self.errors[:10],
        }


class DlqRedriver:
    """Moves messages from the DLQ back to the queue.

    Delivery guarantee: at-least-once, never lost. A message is deleted from the DLQ only after
    ChangeQueue acknowledged it; a failure (or crash) between the two leaves it in both queues,
    which the aggregator tolerates (raw/ is at-least-once, compaction removes duplicates).
    Messages not moved stay in the DLQ and are made visible again at the end of the run.
    """

    def __init__(
        self,
        dlq: SqsQueue,
        queue: SqsQueue,
        *,
        max_redrives: int = 5,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dlq = dlq
        self.queue = queue
        self.max_redrives = max_redrives
        self.monotonic = monotonic
        self.sleep = sleep

    def run(self, request: RedriveRequest, deadline: Deadline) -> RedriveResult:
        """Move up to ``request.max_messages`` messages, stopping before ``deadline``."""
        result = RedriveResult()
        limiter = RateLimiter(request.rate_per_second, monotonic=self.monotonic, sleep=self.sleep)
        held: dict[str, str] = {}  # message id -> receipt handle, to make visible again at the end
        seen: set[str] = set()
        try:
            while True:
                wanted = request.max_messages - result.moved - result.failed
                if wanted <= 0:
                    result.stopped = "max_messages"
                    break
                if deadline.expired() or limiter.delay() >= deadline.seconds_left():
                    result.stopped = "deadline"
                    break
                limiter.wait()
                batch_size = limiter.batch_size(min(wanted, MAX_BATCH_ENTRIES))
                messages = self.dlq.receive(batch_size, visibility_timeout=deadline.hold_seconds())
                if not messages:
                    result.stopped = "empty"
                    break
                outbound = self._select(messages, request, result, held, seen)
                limiter.admit(len(outbound))
                if outbound and not self._move(outbound, result, held):
                    result.stopped = "send_failed"
                    break
        except DeliveryError as exc:
            result.stopped = "error"
            result.errors.append(str(exc))
        finally:
            self._release(held, result)
        result.remaining_estimate = self._remaining(result)
        return result

    def _select(
        self,
        messages: list[dict[str, Any]],
        request: RedriveRequest,
        result: RedriveResult,
        held: dict[str, str],
        seen: set[str],
    ) -> list[tuple[dict[str, Any], OutboundMessage]]:
        """The messages of one receive to move now; the others are held back (and counted)."""
        outbound: list[tuple[dict[str, Any], OutboundMessage]] = []
        for message in messages:
            message_id, receipt = str(message["MessageId"]), str(message["ReceiptHandle"])
            if message_id in seen:
                # Received again in this run (its visibility lapsed): already counted once.
                held[message_id] = receipt
                continue
            seen.add(message_id)
            attributes = message.get("MessageAttributes") or {}
            if not matches(attributes, request.attribute_filter):
                result.skipped += 1
                held[message_id] = receipt
            elif redrive_count(attributes) >= self.max_redrives:
                result.left_too_many_redrives += 1
                result.left_message_ids.append(message_id)
                held[message_id] = receipt
            else:
                outbound.append((message, redriven(message, f"m{len(outbound)}")))
        return outbound

    def _move(
        self,
        outbound: list[tuple[dict[str, Any], OutboundMessage]],
        result: RedriveResult,
        held: dict[str, str],
    ) -> bool:
        """Send, then delete what was sent; False if nothing of the batch could be sent."""
        failed = self.queue.send_batch([message for _, message in outbound])
        sent: dict[str, str] = {}
        for original, message in outbound:
            message_id = str(original["MessageId"])
            error = failed.get(message.entry_id)
            if error is None:
                sent[message.entry_id] = str(original["ReceiptHandle"])
                result.moved += 1
                continue
            result.failed += 1
            result.failed_message_ids.append(message_id)
            result.errors.append(str(error))
            held[message_id] = str(original["ReceiptHandle"])
        if sent:
            try:
                not_deleted = self.dlq.delete_batch(sent)
            except DeliveryError as exc:
                # Sent but still in the DLQ: a later run moves it again (a duplicate, never a loss).
                result.delete_failed += len(sent)
                result.errors.append(str(exc))
            else:
                result.delete_failed += len(not_deleted)
                result.errors.extend(str(error) for error in not_deleted.values())
        return len(failed) < len(outbound)

    def _release(self, held: dict[str, str], result: RedriveResult) -> None:
        """Make every held-back message visible again (if this fails, its timeout does it)."""
        for receipt in held.values():
            try:
                self.dlq.change_visibility(receipt, 0)
            except DeliveryError as exc:
                result.errors.append(f"visible again after the run's timeout: {exc}")

    def _remaining(self, result: RedriveResult) -> int | None:
        try:
            return self.dlq.approximate_visible()
        except DeliveryError as exc:
            result.errors.append(str(exc))
            return None

    def sample(self, request: RedriveRequest) -> dict[str, Any]:
        """A dry run: counts and a small sample; nothing moves and no message is hidden."""
        visible = self.dlq.approximate_visible()
        messages = self.dlq.receive(min(SAMPLE_SIZE, request.max_messages), visibility_timeout=0)
        sample = [self._describe(message, request) for message in messages]
        return {
            "dlq_visible": visible,
            "would_move_at_most": min(visible, request.max_messages),
            "sample": sample,
            "sample_matching_filter": sum(1 for item in sample if item["matches_filter"]),
            "sample_too_many_redrives": sum(1 for item in sample if item["too_many_redrives"]),
        }

    def _describe(self, message: Mapping[str, Any], request: RedriveRequest) -> dict[str, Any]:
        attributes = message.get("MessageAttributes") or {}
        system = message.get("Attributes") or {}
        count = redrive_count(attributes)
        return {
            "message_id": message["MessageId"],
            "size_bytes": len(str(message.get("Body", "")).encode()),
            "attributes": {
                name: {"type": value.get("DataType"), "value": value.get("StringValue")}
                for name, value in attributes.items()
            },
            "redrive_count": count,
            "receive_count": system.get("ApproximateReceiveCount"),
            "sent_timestamp": system.get("SentTimestamp"),
            "matches_filter": matches(attributes, request.attribute_filter),
            "too_many_redrives": count >= self.max_redrives,
        }


class _Replayer(Protocol):
    """What ``run_redrive`` needs of ``changelake.replay.StreamFailureReplayer``."""

    def run(self, max_records: int, deadline: Deadline) -> Any: ...

    def sample(self, max_records: int) -> dict[str, Any]: ...


class _AsyncReplayer(Protocol):
    """What ``run_redrive`` needs of ``changelake.async_failures.AsyncFailureReplayer``."""

    def run(self, max_records: int, deadline: Deadline, *, own_function_name: str) -> Any: ...

    def sample(self, max_records: int) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Replayers:
    """The optional sources a redrive run reads besides the DLQ (None: not configured)."""

    stream_failures: _Replayer | None = None
    async_failures: _AsyncReplayer | None = None
    #: The redrive function's own name (its failed scheduled runs are superseded by this one).
    own_function_name: str = ""


def run_redrive(
    request: RedriveRequest,
    deadline: Deadline,
    redriver: DlqRedriver,
    replayer: _Replayer | None = None,
    *,
    replayers: Replayers | None = None,
) -> dict[str, Any]:
    """One invocation: stream-failure ranges first (they expire after 24 hours), then the DLQ,
    then failed asynchronous invocations (their payloads never expire in the function).

    A dry run samples all and changes nothing.
    """
    sources = replayers or Replayers(stream_failures=replayer)
    replay = sources.stream_failures if request.replay_stream_failures else None
    rerun = sources.async_failures if request.replay_async_failures else None
    summary: dict[str, Any] = {"dry_run": request.dry_run}
    if request.dry_run:
        summary.update(moved=0, failed=0, skipped=0, left_too_many_redrives=0)
        summary["dlq"] = redriver.sample(request)
        summary["remaining_estimate"] = summary["dlq"]["dlq_visible"]
        summary["stream_failures"] = None if replay is None else replay.sample(request.max_messages)
        summary["async_failures"] = None if rerun is None else rerun.sample(request.max_messages)
        return summary
    stream = None if replay is None else replay.run(request.max_messages, deadline).summary()
    summary.update(redriver.run(request, deadline).summary())
    summary["stream_failures"] = stream
    summary["async_failures"] = (
        None
        if rerun is None
        else rerun.run(request.max_messages, deadline, own_function_name=sources.own_function_name).summary()
    )
    return summary


def redrive_metrics(summary: Mapping[str, Any]) -> dict[str, int]:
    """The CloudWatch metrics of one run's summary (``LostRanges`` is watched by an alarm)."""
    stream = summary.get("stream_failures") or {}
    rerun = summary.get("async_failures") or {}
    return {
        "MessagesRedriven": int(summary.get("moved", 0)),
        "MessagesRedriveFailed": int(summary.get("failed", 0)),
        "MessagesSkipped": int(summary.get("skipped", 0)),
        "MessagesLeftTooManyRedrives": int(summary.get("left_too_many_redrives", 0)),
        "RangesReplayed": int(stream.get("ranges_replayed", 0)),
        "RecordsReplayed": int(stream.get("records_replayed", 0)),
        "RangesFailed": int(stream.get("ranges_failed", 0)),
        "LostRanges": int(stream.get("ranges_lost", 0)),
        "AsyncInvocationsReplayed": int(rerun.get("reinvoked", 0)),
        "AsyncInvocationsReplayFailed": int(rerun.get("failed", 0)),
    }
