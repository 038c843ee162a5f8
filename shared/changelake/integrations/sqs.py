"""SQS: sending bodies in batches of ten with per-entry retries, receiving and deleting."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from changelake.exceptions import RETRYABLE_CODES, DeliveryError, ThrottledError
from changelake.integrations.base import AwsAdapter, OutboundMessage

#: SQS's limits on one SendMessageBatch / DeleteMessageBatch request.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_REQUEST_BYTES = 1_048_576


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter; ``sleep`` is injected so tests never wait."""

    attempts: int = 6
    base_seconds: float = 0.05
    cap_seconds: float = 2.0
    sleep: Callable[[float], None] = time.sleep

    def pause(self, attempt: int) -> None:
        self.sleep(random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt)))  # noqa: S311


def request_batches(messages: Sequence[OutboundMessage]) -> Iterator[list[OutboundMessage]]:
    """Group ``messages``, in order, into requests SQS accepts: 10 entries, 1 MiB in all."""
    batch: list[OutboundMessage] = []
    batch_bytes = 0
    for message in messages:
        if batch and (
            len(batch) == MAX_BATCH_ENTRIES or batch_bytes + message.size > MAX_BATCH_REQUEST_BYTES
        ):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(message)
        batch_bytes += message.size
    if batch:
        yield batch


class SqsQueue(AwsAdapter):
    """One SQS queue (a ``Queue``).

    Delivery guarantee of ``send_batch``: at-least-once per entry. An entry reported sent is in
    the queue; an entry reported failed may still have been enqueued (a lost response), so
    senders must tolerate duplicates downstream. Nothing is reported sent that was not.
    """

    service = "sqs"

    def __init__(self, queue_url: str, *, client: Any = None, backoff: Backoff | None = None) -> None:
        super().__init__(client=client)
        self.queue_url = queue_url
        self.backoff = backoff or Backoff()

    def _call(self, operation: str, **kwargs: Any) -> Any:
        return self._request(operation, self.queue_url, QueueUrl=self.queue_url, **kwargs)

    def send_batch(self, messages: Sequence[OutboundMessage]) -> dict[str, DeliveryError]:
        """Send up to ten messages, retrying throttled or transient failures with backoff.

        Returns the entries not sent, by ``entry_id``, each with its error (empty when all were
        sent). A request that fails as a whole (queue missing, access denied, throttled on every
        attempt) fails every entry still pending.
        """
        pending = {message.entry_id: message for message in messages}
        failed: dict[str, DeliveryError] = {}
        for attempt in range(self.backoff.attempts):
            last_attempt = attempt + 1 == self.backoff.attempts
            try:
                response = self._call("send_message_batch", Entries=[_entry(m) for m in pending.values()])
            except DeliveryError as exc:
                if _is_retryable(exc) and not last_attempt:
                    self.backoff.pause(attempt)
                    continue
                failed.update(dict.fromkeys(pending, exc))
                return failed
            for sent in response.get("Successful", []):
                pending.pop(sent["Id"], None)
                failed.pop(sent["Id"], None)
            for failure in response.get("Failed", []):
                entry_id, code = failure["Id"], failure.get("Code", "")
                failed[entry_id] = DeliveryError(f"{self.queue_url}: entry {entry_id}: {code}", code)
                if failure.get("SenderFault") and code not in RETRYABLE_CODES:
                    pending.pop(entry_id, None)  # the message itself is refused; retrying cannot help
            if not pending:
                break
            if not last_attempt:
                self.backoff.pause(attempt)
        return failed

    def receive(
        self,
        max_messages: int = 10,
        *,
        wait_seconds: int = 0,
        visibility_timeout: int | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``max_messages`` (at most 10) messages, with all their attributes."""
        kwargs: dict[str, Any] = {
            "MaxNumberOfMessages": max(1, min(max_messages, MAX_BATCH_ENTRIES)),
            "WaitTimeSeconds": wait_seconds,
            "MessageAttributeNames": ["All"],
            "MessageSystemAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        return list(self._call("receive_message", **kwargs).get("Messages", []))

    def delete_batch(self, receipts: dict[str, str]) -> dict[str, DeliveryError]:
        """Delete messages by ``{entry_id: receipt_handle}``; returns the entries not deleted."""
        failed: dict[str, DeliveryError] = {}
        items = list(receipts.items())
        for start in range(0, len(items), MAX_BATCH_ENTRIES):
            chunk = items[start : start + MAX_BATCH_ENTRIES]
            entries = [{"Id": entry_id, "ReceiptHandle": handle} for entry_id, handle in chunk]
            response = self._call("delete_message_batch", Entries=entries)
            for failure in response.get("Failed", []):
                code = failure.get("Code", "")
                failed[failure["Id"]] = DeliveryError(
                    f"{self.queue_url}: delete {failure['Id']}: {code}", code
                )
        return failed

    def change_visibility(self, receipt_handle: str, timeout_seconds: int) -> None:
        self._call(
            "change_message_visibility", ReceiptHandle=receipt_handle, VisibilityTimeout=timeout_seconds
        )

    def approximate_visible(self) -> int:
        """Messages visible now (``ApproximateNumberOfMessages``), as SQS estimates them."""
        response = self._call("get_queue_attributes", AttributeNames=["ApproximateNumberOfMessages"])
        return int(response.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))

    def approximate_depth(self) -> int:
        """Messages visible plus in flight, as SQS estimates them."""
        response = self._call(
            "get_queue_attributes",
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        attributes = response.get("Attributes", {})
        return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )


def _entry(message: OutboundMessage) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": message.entry_id, "MessageBody": message.body}
    if message.attributes:
        entry["MessageAttributes"] = message.attributes
    return entry


def _is_retryable(error: DeliveryError) -> bool:
    return isinstance(error, ThrottledError) or error.code in RETRYABLE_CODES
