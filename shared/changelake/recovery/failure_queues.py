"""What the readers of the failure queues (stream failures, async failures) do alike: file a message
they cannot read whole in quarantine before the run deletes it, and sample the queue for a dry run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from changelake.exceptions import DeliveryError, RecordRejected
from changelake.ingest.quarantine import QuarantinedRecord, QuarantineWriter
from changelake.integrations.base import Queue
from changelake.recovery.receive import SAMPLE_SIZE, HoldingRun, Message, RecoveryResult

Result = TypeVar("Result", bound=RecoveryResult)


def quarantine_message(
    writer: QuarantineWriter, message: dict[str, Any], error: RecordRejected, *, source: str, day: date
) -> None:
    """File an unreadable message's body whole under the unknown-table folder of ``day``, with the reason;
    raises ``DeliveryError`` if it is not stored (the message must then stay in its queue)."""
    entry = QuarantinedRecord.filed(  # a message that cannot be read names no table or day
        message.get("Body"),
        error.reason,
        today=day,
        context={"message_id": str(message.get("MessageId")), "source": source},
    )
    writer.write_folder(entry.table, entry.day, [entry])


def quarantine_and_delete(
    writer: QuarantineWriter,
    run: HoldingRun[Result],
    message: Message,
    error: RecordRejected,
    *,
    source: str,
    day: date,
) -> bool:
    """Quarantine an unreadable ``message`` whole, then delete it from the run's queue; False (and the
    reason in the run's errors) if quarantine refused it: the message must then stay in its queue."""
    try:
        quarantine_message(writer, message, error, source=source, day=day)
    except DeliveryError as exc:
        run.outcome.errors.append(f"malformed message from {source} not quarantined: {exc}")
        return False
    run.delete({"r": str(message["ReceiptHandle"])})
    return True


def sample_queue(queue: Queue, max_records: int, describe: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """A dry run: the queue's depth and what ``describe`` reads from the first few bodies (a body it
    rejects is listed with its reason); messages are received with no visibility timeout, so
    nothing is hidden."""
    visible = queue.approximate_visible()
    sample: list[dict[str, Any]] = []
    for message in queue.receive(min(SAMPLE_SIZE, max_records), visibility_timeout=0):
        item: dict[str, Any] = {"message_id": message["MessageId"]}
        try:
            item.update(describe(message.get("Body")))
        except RecordRejected as exc:
            item["malformed"] = exc.reason
        sample.append(item)
    return {"failure_records_visible": visible, "sample": sample}
