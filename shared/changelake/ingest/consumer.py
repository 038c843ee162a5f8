"""The stream consumer: DynamoDB stream records in, packed SQS micro-batches out.

Order of work for one batch: convert (rejects go to quarantine), pack in stream order, store
claim checks, send in requests of ten, write quarantine. Whatever was not stored is reported
as the sequence number of the first record not yet safe, so Lambda retries from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from changelake.clock import Clock, utc_now
from changelake.exceptions import BatchUnrecoverableError, ChangelakeError, DeliveryError, RecordRejected
from changelake.formats.change_line import ChangeLine, stream_record_folder, to_change_line
from changelake.formats.envelope import (
    MessagePacker,
    OversizedRecord,
    PackedMessage,
    claim_body,
    claim_payload,
)
from changelake.formats.lambda_events import PartialItemFailureResponse
from changelake.formats.layout import claim_key
from changelake.ingest.quarantine import QuarantinedRecord, QuarantineWriter, group_by_folder
from changelake.ingest.schema import SchemaRegistry
from changelake.integrations.base import ObjectStore, OutboundMessage, Queue
from changelake.integrations.sqs import request_batches


@dataclass(slots=True)
class ConsumerResult:
    """What one batch did; ``first_unstored`` is the index of the first record not yet safe."""

    BYTES_METRICS: ClassVar[frozenset[str]] = frozenset({"BytesSent"})

    records_in: int = 0
    records_sent: int = 0
    quarantined: int = 0
    messages_sent: int = 0
    claims: int = 0
    bytes_sent: int = 0
    sqs_requests: int = 0
    first_unstored: int | None = None
    failed_sequence_number: str | None = None
    errors: list[str] = field(default_factory=list)

    def mark_unstored(self, index: int, error: ChangelakeError) -> None:
        if self.first_unstored is None or index < self.first_unstored:
            self.first_unstored = index
        self.errors.append(str(error))

    def metrics(self) -> dict[str, int]:
        return {
            "RecordsIn": self.records_in,
            "RecordsSent": self.records_sent,
            "Quarantined": self.quarantined,
            "ClaimChecks": self.claims,
            "SqsRequests": self.sqs_requests,
            "BytesSent": self.bytes_sent,
        }

    def report(self) -> dict[str, Any]:
        """What the handler logs of a batch."""
        return {
            "records_in": self.records_in,
            "messages": self.messages_sent,
            "quarantined": self.quarantined,
        }

    def failure_report(self) -> dict[str, Any] | None:
        """Where Lambda resumes the batch, for the handler's ERROR line; None when all of it is in SQS."""
        if self.failed_sequence_number is None:
            return None
        return {"failed_sequence_number": self.failed_sequence_number}

    def response(self) -> PartialItemFailureResponse:
        """The partial batch response Lambda expects for a stream with ReportBatchItemFailures."""
        if self.failed_sequence_number is None:
            return {"batchItemFailures": []}
        return {"batchItemFailures": [{"itemIdentifier": self.failed_sequence_number}]}


@dataclass(frozen=True, slots=True)
class _Outbound:
    first_index: int
    count: int
    message: OutboundMessage


class StreamConsumer:
    """Converts and forwards stream batches.

    Delivery guarantee: at-least-once into SQS. A record is reported done only when it is in the
    queue (inline or as a stored claim check) or in quarantine; on any failure the batch reports
    the first record not yet safe and everything from there is retried by Lambda.
    """

    def __init__(
        self,
        queue: Queue,
        store: ObjectStore,
        *,
        max_message_bytes: int,
        quarantine_prefix: str = "quarantine",
        claims_prefix: str = "claims",
        schemas: SchemaRegistry | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.queue = queue
        self.store = store
        self.max_message_bytes = max_message_bytes
        self.quarantine = QuarantineWriter(store, quarantine_prefix)
        self.claims_prefix = claims_prefix
        self.schemas = schemas or SchemaRegistry()
        self.clock = clock

    def process(self, records: Sequence[Any]) -> ConsumerResult:
        """Forward one batch of stream records (the ``Records`` of a Lambda event)."""
        result = ConsumerResult(records_in=len(records))
        requests_before = self.queue.requests
        changes, rejected = self._convert(records)
        outbound = self._pack(changes, result)
        self._send(outbound, result)
        self._quarantine(rejected, result)
        result.sqs_requests = self.queue.requests - requests_before
        if result.first_unstored is not None:
            result.failed_sequence_number = _checkpoint(records, result.first_unstored)
        return result

    def _convert(
        self, records: Sequence[Any]
    ) -> tuple[list[tuple[int, ChangeLine]], list[tuple[int, QuarantinedRecord]]]:
        changes: list[tuple[int, ChangeLine]] = []
        rejected: list[tuple[int, QuarantinedRecord]] = []
        check = self.schemas.check if self.schemas.tables else None
        for index, record in enumerate(records):
            try:
                change = to_change_line(record)
                if check is not None:
                    check(change)
            except RecordRejected as exc:
                rejected.append((index, self._rejection(record, exc)))
                continue
            changes.append((index, change))
        return changes, rejected

    def _rejection(self, record: Any, exc: RecordRejected) -> QuarantinedRecord:
        table, day = stream_record_folder(record)
        return QuarantinedRecord.filed(record, exc.reason, table=table, day=day, today=self.clock().date())

    def _pack(self, changes: list[tuple[int, ChangeLine]], result: ConsumerResult) -> list[_Outbound]:
        """Bodies in stream order; oversized records become claim checks."""
        packer = MessagePacker(self.max_message_bytes)
        outbound: list[_Outbound] = []
        for item in packer.pack((index, change.line) for index, change in changes):
            if isinstance(item, PackedMessage):
                body, count = item.body, item.count
            else:
                claim = self._store_claim(item, result)
                if claim is None:
                    continue
                body, count = claim, 1
            outbound.append(_Outbound(item.first_index, count, OutboundMessage(f"m{len(outbound)}", body)))
        return outbound

    def _store_claim(self, record: OversizedRecord, result: ConsumerResult) -> str | None:
        payload, digest = claim_payload(record.line)
        key = claim_key(self.claims_prefix, digest)
        try:
            self.store.put(key, payload)
        except DeliveryError as exc:
            result.mark_unstored(record.first_index, exc)
            return None
        result.claims += 1
        return claim_body(key, digest)

    def _send(self, outbound: list[_Outbound], result: ConsumerResult) -> None:
        by_id = {item.message.entry_id: item for item in outbound}
        for batch in request_batches([item.message for item in outbound]):
            if (
                result.first_unstored is not None
                and by_id[batch[0].entry_id].first_index > result.first_unstored
            ):
                break  # Lambda retries from the first unstored record anyway; more would only duplicate
            failed = self.queue.send_batch(batch)
            for message in batch:
                item = by_id[message.entry_id]
                error = failed.get(message.entry_id)
                if error is None:
                    result.messages_sent += 1
                    result.records_sent += item.count
                    result.bytes_sent += message.size
                else:
                    result.mark_unstored(item.first_index, error)

    def _quarantine(self, rejected: list[tuple[int, QuarantinedRecord]], result: ConsumerResult) -> None:
        index_of = {id(entry): index for index, entry in rejected}
        for (table, day), entries in group_by_folder([entry for _, entry in rejected]).items():
            try:
                self.quarantine.write_folder(table, day, entries)
            except DeliveryError as exc:
                result.mark_unstored(min(index_of[id(entry)] for entry in entries), exc)
                continue
            result.quarantined += len(entries)


def _checkpoint(records: Sequence[Any], first_unstored: int) -> str:
    """The sequence number to report: the first unstored record's, or the nearest readable before it.

    Reporting an earlier record only re-sends records (duplicates); reporting a later one would
    lose data, so when no sequence number at or before ``first_unstored`` is readable the whole
    batch is failed.
    """
    for index in range(first_unstored, -1, -1):
        try:
            sequence_number = records[index]["dynamodb"]["SequenceNumber"]
        except (KeyError, TypeError, IndexError):
            continue
        if isinstance(sequence_number, str) and sequence_number:
            return sequence_number
    raise BatchUnrecoverableError("no readable sequence number at or before the first unstored record")


class ConsumerConfiguration(Protocol):
    """What building a consumer needs from a function's settings (consumer and redrive both have it)."""

    @property
    def max_message_bytes(self) -> int: ...
    @property
    def quarantine_prefix(self) -> str: ...
    @property
    def claims_prefix(self) -> str: ...
    @property
    def schema_dir(self) -> Path | None: ...


def consumer_from_settings(
    settings: ConsumerConfiguration, queue: Queue, store: ObjectStore
) -> StreamConsumer:
    """The stream consumer as the stream-consumer and redrive functions wire it (schemas loaded now)."""
    return StreamConsumer(
        queue,
        store,
        max_message_bytes=settings.max_message_bytes,
        quarantine_prefix=settings.quarantine_prefix,
        claims_prefix=settings.claims_prefix,
        schemas=SchemaRegistry.from_directory(settings.schema_dir),
    )
