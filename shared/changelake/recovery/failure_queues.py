"""What the readers of the failure queues (stream failures, async failures) do alike, written once:
the run over the queue (read each record, redo what failed, delete the record once it is redone),
a message they cannot read filed whole in quarantine before the run deletes it, and a dry run's
sample of the queue. Each reader fills a few hooks (``FailureQueueReader``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import date
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar

from changelake.budget import Deadline
from changelake.clock import Clock
from changelake.exceptions import DeliveryError, RecordRejected
from changelake.ingest.quarantine import QuarantinedRecord, QuarantineWriter
from changelake.integrations.base import ObjectStore, Queue
from changelake.recovery.receive import SAMPLE_SIZE, HoldingRun, Message, RecoveryResult

Result = TypeVar("Result", bound=RecoveryResult)
Failure = TypeVar("Failure")


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


class Redone(Enum):
    """What redoing one failure record came to, and so what becomes of the record."""

    #: Redone (or nothing left to redo): the record is deleted.
    DONE = "done"
    #: Dealt with for now but not done (a loss reported): it stays in the queue, hidden as it is.
    KEPT = "kept"
    #: Not redone (a delivery failed): it is made visible again when the run ends, for a later run.
    RETRY = "retry"


Redo = Callable[[Failure, Message, HoldingRun[Result]], Redone]


class FailureQueueReader(ABC, Generic[Failure, Result]):
    """One run over a failure queue, the protocol written once: receive up to a number of records
    before a deadline (``HoldingRun``), read each (``parse``; one it cannot read is quarantined
    whole, then deleted), redo what it names (the run's ``redo``), delete it once redone, and leave
    the rest in the queue; a dry run only samples (``describe``). A variant fills those hooks, says
    what its result counts (``count_malformed``, ``count_failed``) and names its queue (``SOURCE``).
    """

    #: How quarantine names this queue in a malformed message's context.
    SOURCE: ClassVar[str]
    #: Also check the deadline before each record, not only before each receive (redoing one
    #: record can take long, so a record started late would outlast the run).
    DEADLINE_PER_RECORD: ClassVar[bool] = False

    def __init__(self, failures: Queue, store: ObjectStore, *, quarantine_prefix: str, clock: Clock) -> None:
        self.failures = failures
        self.quarantine = QuarantineWriter(store, quarantine_prefix)
        self.clock = clock

    @abstractmethod
    def parse(self, body: object) -> Failure:
        """The failure in one record's body; ``RecordRejected`` if it cannot be read."""

    @abstractmethod
    def describe(self, failure: Failure) -> dict[str, Any]:
        """What a dry run lists of one failure."""

    @abstractmethod
    def count_malformed(self, result: Result) -> None:
        """Count a record quarantined as unreadable (and deleted)."""

    @abstractmethod
    def count_failed(self, result: Result) -> None:
        """Count a record that stays in the queue because a write failed."""

    def replay(
        self, result: Result, max_records: int, deadline: Deadline, redo: Redo[Failure, Result]
    ) -> Result:
        """Redo up to ``max_records`` records with ``redo``, stopping before ``deadline``; ``result``
        counts what happened."""
        with HoldingRun(self.failures, deadline, result) as run:
            for messages in run.batches(lambda: max_records - run.received):
                for message in messages:
                    if (self.DEADLINE_PER_RECORD and deadline.expired()) or not self._handle(
                        message, run, redo
                    ):
                        run.hold(message)
        return result

    def _handle(self, message: Message, run: HoldingRun[Result], redo: Redo[Failure, Result]) -> bool:
        """Deal with one record; False if it must be made visible again at the end."""
        try:
            failure = self.parse(message.get("Body"))
        except RecordRejected as exc:
            return self._quarantine(message, exc, run)
        redone = redo(failure, message, run)
        if redone is Redone.DONE:
            run.delete({"r": str(message["ReceiptHandle"])})
        return redone is not Redone.RETRY

    def _quarantine(self, message: Message, error: RecordRejected, run: HoldingRun[Result]) -> bool:
        """File a malformed record whole in quarantine, then delete it from the queue."""
        day = self.clock().date()
        if not quarantine_and_delete(self.quarantine, run, message, error, source=self.SOURCE, day=day):
            self.count_failed(run.outcome)
            return False
        self.count_malformed(run.outcome)
        return True

    def sample(self, max_records: int) -> dict[str, Any]:
        """A dry run: the queue's depth and the first few records; nothing is hidden or redone."""
        return sample_queue(self.failures, max_records, lambda body: self.describe(self.parse(body)))
