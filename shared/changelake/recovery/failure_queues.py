"""What the readers of the failure queues (stream failures, async failures) do alike with a message
they cannot read: file it whole in quarantine (then the run deletes it, ``HoldingRun.delete``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from changelake.exceptions import RecordRejected
from changelake.ingest.quarantine import QuarantinedRecord, QuarantineWriter


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
