"""What the readers of the failure queues (stream failures, async failures) do alike with a message
they handled or cannot read: delete it, or file it whole in quarantine first."""

from __future__ import annotations

from datetime import date
from typing import Any

from changelake.exceptions import DeliveryError, RecordRejected
from changelake.formats.layout import UNKNOWN_TABLE
from changelake.ingest.quarantine import QuarantinedRecord, QuarantineWriter
from changelake.integrations.sqs import SqsQueue


def delete_handled(queue: SqsQueue, receipt: str) -> list[str]:
    """Delete one handled message; the errors if it was not deleted (a later run then handles it
    again: every reader's work is idempotent or at-least-once)."""
    try:
        not_deleted = queue.delete_batch({"r": receipt})
    except DeliveryError as exc:
        return [str(exc)]
    return [str(error) for error in not_deleted.values()]


def quarantine_message(
    writer: QuarantineWriter, message: dict[str, Any], error: RecordRejected, *, source: str, day: date
) -> None:
    """File an unreadable message's body whole under the unknown-table folder, with the reason;
    raises ``DeliveryError`` if it is not stored (the message must then stay in its queue)."""
    entry = QuarantinedRecord(
        UNKNOWN_TABLE,
        day,
        error.reason,
        message.get("Body"),
        {"message_id": str(message.get("MessageId")), "source": source},
    )
    writer.write_folder(UNKNOWN_TABLE, day, [entry])
