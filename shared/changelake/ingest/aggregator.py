"""The aggregator: SQS messages of change records in, one raw/ object per partition out.

Records are grouped by table and event-time hour. Each partition's object is named by its
content, so a redelivered batch rewrites the same key. A message is reported failed exactly
when some record of it is not stored (in raw/ or in quarantine), or is stored in an hour of a
past day whose late-data markers could not be written (``changelake.late``).
"""

from __future__ import annotations

import gzip
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from changelake.clock import Clock, utc_now
from changelake.exceptions import DeliveryError, InvalidEventError, ObjectNotFoundError, RecordRejected
from changelake.formats.change_line import (
    ChangeLine,
    change_line_folder,
    escape_line_break_bytes,
    order_key,
    parse_change_line,
)
from changelake.formats.envelope import Claim, decode_body, decode_claim_object
from changelake.formats.lambda_events import PartialItemFailureResponse
from changelake.formats.layout import Partition, partition_key, raw_file_name
from changelake.ingest.quarantine import QuarantinedRecord, QuarantineWriter, group_by_folder
from changelake.integrations.base import ObjectStore
from changelake.late import LateMarkers

#: gzip level of raw/ objects. They are read once (by compaction) but kept for good (tiered to IA,
#: then Glacier), so stored bytes outlive write CPU. ``python -m bench.studies.levels``: level 1 writes
#: 228 B/record at 5.4 us, 6: 179 B at 18 us, 9: 175 B at 33 us; inflating costs ~1.8 us whatever
#: the level. 6's 12.6 us/record more than 1 is a one-off $0.00017 of Lambda per million changes
#: against $0.0011 per month of S3 Standard for the 49 MB it saves; 9 saves 2% more for +80% CPU.
RAW_COMPRESSION_LEVEL = 6


@dataclass(slots=True)
class AggregatorResult:
    """What one SQS batch did."""

    BYTES_METRICS: ClassVar[frozenset[str]] = frozenset({"BytesWritten"})

    messages_in: int = 0
    records_in: int = 0
    records_stored: int = 0
    quarantined: int = 0
    objects_written: int = 0
    bytes_written: int = 0
    failed_message_ids: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, int]:
        return {
            "MessagesIn": self.messages_in,
            "RecordsIn": self.records_in,
            "RecordsStored": self.records_stored,
            "Quarantined": self.quarantined,
            "ObjectsWritten": self.objects_written,
            "BytesWritten": self.bytes_written,
            "MessagesFailed": len(self.failed_message_ids),
        }

    def report(self) -> dict[str, Any]:
        """What the handler logs of a batch."""
        return {"records_stored": self.records_stored, "objects": self.objects_written}

    def failure_report(self) -> dict[str, Any] | None:
        """How many messages Lambda delivers again, for the handler's ERROR line; None when all are stored."""
        if not self.failed_message_ids:
            return None
        return {"failed": len(self.failed_message_ids)}

    def response(self) -> PartialItemFailureResponse:
        """The partial batch response for an SQS event source with ReportBatchItemFailures."""
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in sorted(self.failed_message_ids)]}


def raw_object(changes: Sequence[ChangeLine]) -> tuple[str, bytes]:
    """The file name and gzip body of one partition's records: ordered, each ``event_id`` once.

    Pure and deterministic (gzip ``mtime`` is 0), so the same records always give the same key.
    """
    unique = {change.event_id: change for change in sorted(changes, key=order_key, reverse=True)}
    ordered = sorted(unique.values(), key=order_key)
    # Lines from a consumer older than the U+2028/U+2029 escaping get it here (one search per object).
    content = escape_line_break_bytes(b"".join(change.line + b"\n" for change in ordered))
    digest = hashlib.sha256(content).hexdigest()[:32]
    name = raw_file_name(ordered[0].event_time, ordered[-1].event_time, digest)
    return name, gzip.compress(content, compresslevel=RAW_COMPRESSION_LEVEL, mtime=0)


class Aggregator:
    """Writes SQS batches of change records into hourly raw/ partitions.

    Delivery guarantee: at-least-once into raw/. A message is acknowledged only when all of its
    records are in raw/ or quarantine; otherwise its ID is reported failed and SQS redelivers it
    (which may write its already-stored records again; compaction removes those duplicates).
    A raw/ object of a day before the processing day is acknowledged only once its late-data
    markers are stored too (``changelake.late``), so the nightly runs find it however old it is.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        raw_prefix: str = "raw",
        quarantine_prefix: str = "quarantine",
        clock: Clock = utc_now,
        late_markers: LateMarkers | None = None,
    ) -> None:
        self.store = store
        self.raw_prefix = raw_prefix
        self.quarantine = QuarantineWriter(store, quarantine_prefix)
        self.clock = clock
        self.late_markers = late_markers or LateMarkers(store)

    def process(self, messages: Sequence[Any]) -> AggregatorResult:
        """Store one batch of SQS records (the ``Records`` of a Lambda SQS event)."""
        result = AggregatorResult(messages_in=len(messages))
        partitions: dict[Partition, list[tuple[ChangeLine, str]]] = defaultdict(list)
        rejected: list[tuple[QuarantinedRecord, str]] = []
        for index, message in enumerate(messages):
            message_id = _message_id(message, index)
            try:
                lines = self._lines_of(message)
            except DeliveryError as exc:
                result.failed_message_ids.add(message_id)
                result.errors.append(str(exc))
                continue
            except RecordRejected as exc:
                body = message.get("body") if isinstance(message, dict) else message
                rejected.append((self._rejection(body, exc, message_id), message_id))
                continue
            result.records_in += len(lines)
            for line in lines:
                try:
                    change = parse_change_line(line)
                except RecordRejected as exc:
                    table, day = change_line_folder(line)
                    text = line.decode(errors="replace")
                    entry = self._rejection(text, exc, message_id, table=table, day=day)
                    rejected.append((entry, message_id))
                    continue
                partitions[Partition.of_event_time(change.table, change.event_time)].append(
                    (change, message_id)
                )
        self._write_partitions(partitions, result)
        self._write_quarantine(rejected, result)
        return result

    def _lines_of(self, message: Any) -> list[bytes]:
        if not isinstance(message, dict):
            raise RecordRejected("SQS record is not an object")
        decoded = decode_body(message.get("body"))
        if isinstance(decoded, Claim):
            return self._fetch_claim(decoded)
        return decoded

    def _fetch_claim(self, claim: Claim) -> list[bytes]:
        try:
            payload = self.store.get(claim.key)
        except ObjectNotFoundError as exc:
            # Strongly consistent S3: a missing claim will not appear on retry (it expired).
            raise RecordRejected(f"claim object {claim.key} is missing") from exc
        return decode_claim_object(payload, claim)

    def _rejection(
        self,
        record: Any,
        exc: RecordRejected,
        message_id: str,
        *,
        table: str | None = None,
        day: date | None = None,
    ) -> QuarantinedRecord:
        return QuarantinedRecord.filed(
            record,
            exc.reason,
            table=table,
            day=day,
            today=self.clock().date(),
            context={"message_id": message_id},
        )

    def _write_partitions(
        self, partitions: dict[Partition, list[tuple[ChangeLine, str]]], result: AggregatorResult
    ) -> None:
        today = self.clock().date()
        for partition, entries in sorted(partitions.items()):
            name, body = raw_object([change for change, _ in entries])
            try:
                self.store.put(partition_key(self.raw_prefix, partition, name), body)
                if partition.dt < today:  # its hour may be compacted (or in a snapshot) already
                    self.late_markers.mark(partition, name)
            except DeliveryError as exc:
                result.failed_message_ids.update(message_id for _, message_id in entries)
                result.errors.append(str(exc))
                continue
            result.objects_written += 1
            result.bytes_written += len(body)
            result.records_stored += len(entries)

    def _write_quarantine(
        self, rejected: list[tuple[QuarantinedRecord, str]], result: AggregatorResult
    ) -> None:
        message_of = {id(entry): message_id for entry, message_id in rejected}
        for (table, day), entries in group_by_folder([entry for entry, _ in rejected]).items():
            try:
                self.quarantine.write_folder(table, day, entries)
            except DeliveryError as exc:
                result.failed_message_ids.update(message_of[id(entry)] for entry in entries)
                result.errors.append(str(exc))
                continue
            result.quarantined += len(entries)


def _message_id(message: Any, index: int) -> str:
    """The record's message ID; an event without one is not an SQS event (a clear error, before
    anything is written: nothing can be reported failed or acknowledged without it)."""
    if isinstance(message, dict) and isinstance(message.get("messageId"), str):
        return str(message["messageId"])
    raise InvalidEventError(f"Records[{index}].messageId", "an SQS record needs its messageId")
