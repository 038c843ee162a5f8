"""DLQ redrive: moving ChangeDLQ messages back to ChangeQueue, one safe step at a time.

Order of work for every batch: receive (hidden from other readers for the rest of the run), send
to ChangeQueue, and delete from the DLQ only what the send reported stored. Messages that are not
moved (filtered out, redriven too often, send failed) are made visible again when the run ends.
A crash at any point leaves each message in the DLQ, in ChangeQueue, or in both; never in neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from changelake.integrations.base import OutboundMessage, Queue
from changelake.recovery.events import RedriveRequest
from changelake.recovery.receive import (
    SAMPLE_SIZE,
    Deadline,
    HoldingRun,
    Message,
    RateLimiter,
    RecoveryResult,
)

#: Message attribute counting how often a message was redriven (added by the redrive).
REDRIVE_COUNT_ATTRIBUTE = "changelake-redrive-count"


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
class RedriveResult(RecoveryResult):
    """What one redrive run did with the DLQ."""

    moved: int = 0
    failed: int = 0
    skipped: int = 0
    left_too_many_redrives: int = 0
    left_message_ids: list[str] = field(default_factory=list)
    failed_message_ids: list[str] = field(default_factory=list)


Outbound = list[tuple[Message, OutboundMessage]]


class DlqRedriver:
    """Moves messages from the DLQ back to the queue.

    Delivery guarantee: at-least-once, never lost. A message is deleted from the DLQ only after
    ChangeQueue acknowledged it; a failure (or crash) between the two leaves it in both queues,
    which the aggregator tolerates (raw/ is at-least-once, compaction removes duplicates).
    Messages not moved stay in the DLQ and are made visible again at the end of the run.
    """

    def __init__(
        self,
        dlq: Queue,
        queue: Queue,
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
        with HoldingRun(self.dlq, deadline, result, limiter) as run:
            for messages in run.batches(lambda: request.max_messages - result.moved - result.failed):
                outbound = self._select(messages, request, run)
                limiter.admit(len(outbound))
                if outbound and not self._move(outbound, run):
                    result.stopped = "send_failed"
                    break
        return result

    def _select(
        self, messages: list[Message], request: RedriveRequest, run: HoldingRun[RedriveResult]
    ) -> Outbound:
        """The messages of one receive to move now; the others are held back (and counted)."""
        result = run.outcome
        outbound: Outbound = []
        for message in messages:
            attributes = message.get("MessageAttributes") or {}
            if not matches(attributes, request.attribute_filter):
                result.skipped += 1
                run.hold(message)
            elif redrive_count(attributes) >= self.max_redrives:
                result.left_too_many_redrives += 1
                result.left_message_ids.append(str(message["MessageId"]))
                run.hold(message)
            else:
                outbound.append((message, redriven(message, f"m{len(outbound)}")))
        return outbound

    def _move(self, outbound: Outbound, run: HoldingRun[RedriveResult]) -> bool:
        """Send, then delete what was sent; False if nothing of the batch could be sent."""
        result = run.outcome
        failed = self.queue.send_batch([message for _, message in outbound])
        sent: dict[str, str] = {}
        for original, message in outbound:
            error = failed.get(message.entry_id)
            if error is None:
                sent[message.entry_id] = str(original["ReceiptHandle"])
                result.moved += 1
                continue
            result.failed += 1
            result.failed_message_ids.append(str(original["MessageId"]))
            result.errors.append(str(error))
            run.hold(original)
        if sent:
            run.delete(sent)
        return len(failed) < len(outbound)

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
