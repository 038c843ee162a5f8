"""What the failure-queue readers share (``changelake.recovery.failure_queues``): an unreadable
message is deleted only once quarantine holds it, a dry run hides nothing, and the run over the
queue deletes, keeps or releases each record as redoing it came to."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest

from changelake.exceptions import MalformedFailureRecordError, StorageError
from changelake.ingest.quarantine import QuarantineWriter
from changelake.recovery.failure_queues import FailureQueueReader, Redone, quarantine_and_delete, sample_queue
from changelake.recovery.receive import Deadline, HoldingRun, Message, RecoveryResult
from tests.unit.recovery.test_receive import ScriptedQueue, message


@dataclass
class PutOnlyStore:
    """Just what ``QuarantineWriter`` calls: ``put``; it refuses every write when ``refuse`` is set."""

    refuse: bool = False
    objects: dict[str, bytes] = field(default_factory=dict)

    def put(self, key: str, body: bytes, **_: Any) -> None:
        if self.refuse:
            raise StorageError("s3: put refused")
        self.objects[key] = body


def quarantine_one(store: PutOnlyStore, queue: ScriptedQueue) -> tuple[bool, HoldingRun[RecoveryResult]]:
    writer = QuarantineWriter(store, "quarantine")  # type: ignore[arg-type]
    poison = {**message(1), "Body": "not json"}
    with HoldingRun(queue, Deadline(lambda: 600_000), RecoveryResult()) as run:  # type: ignore[arg-type]
        done = quarantine_and_delete(
            writer,
            run,
            poison,
            MalformedFailureRecordError("not JSON"),
            source="test-queue",
            day=date(2026, 11, 30),
        )
    return done, run


def test_an_unreadable_message_is_deleted_once_quarantine_holds_its_body() -> None:
    # GIVEN a store that accepts the write
    store, queue = PutOnlyStore(), ScriptedQueue([])

    # WHEN an unreadable message is quarantined
    done, run = quarantine_one(store, queue)

    # THEN its body is in quarantine, with the reason and the source, and the message is deleted
    assert done
    assert queue.deleted == [{"r": "r-1"}]
    [body] = store.objects.values()
    entry = json.loads(gzip.decompress(body))
    assert (entry["record"], entry["source"]) == ("not json", "test-queue")
    assert run.outcome.errors == []


def test_a_refused_quarantine_write_keeps_the_message_in_its_queue() -> None:
    # GIVEN a store that refuses every write
    store, queue = PutOnlyStore(refuse=True), ScriptedQueue([])

    # WHEN an unreadable message is to be quarantined
    done, run = quarantine_one(store, queue)

    # THEN nothing is deleted: the message stays for a later run, and the run says why
    assert not done
    assert queue.deleted == []
    assert run.outcome.errors == ["malformed message from test-queue not quarantined: s3: put refused"]


def test_a_dry_run_samples_without_hiding_and_names_what_it_cannot_read() -> None:
    # GIVEN a queue with one readable and one unreadable message
    queue = ScriptedQueue([[{**message(1), "Body": "ok"}, {**message(2), "Body": "bad"}]], visible=2)

    def describe(body: Any) -> dict[str, Any]:
        if body != "ok":
            raise MalformedFailureRecordError("not a failure record")
        return {"read": body}

    # WHEN it is sampled
    sample = sample_queue(queue, 50, describe)  # type: ignore[arg-type]

    # THEN both are listed, nothing was hidden, and the depth is reported
    assert sample == {
        "failure_records_visible": 2,
        "sample": [
            {"message_id": "id-1", "read": "ok"},
            {"message_id": "id-2", "malformed": "not a failure record"},
        ],
    }
    assert queue.hold_timeouts == [0]


# ------------------------------------------------------------------ the run, written once


@dataclass(slots=True)
class TallyResult(RecoveryResult):
    redone: int = 0
    malformed: int = 0
    failed: int = 0


NOON = datetime(2026, 11, 30, 12, tzinfo=UTC)


class BodyReader(FailureQueueReader[str, TallyResult]):
    """A failure queue whose bodies say what redoing them comes to: ``done``, ``kept`` or ``retry``."""

    SOURCE = "test-queue"

    def parse(self, body: object) -> str:
        if body not in ("done", "kept", "retry"):
            raise MalformedFailureRecordError("not a failure record")
        return str(body)

    def describe(self, failure: str) -> dict[str, Any]:
        return {"says": failure}

    def count_malformed(self, result: TallyResult) -> None:
        result.malformed += 1

    def count_failed(self, result: TallyResult) -> None:
        result.failed += 1


def redo_as_it_says(failure: str, _: Message, run: HoldingRun[TallyResult]) -> Redone:
    run.outcome.redone += 1
    return Redone(failure)


def reader_over(
    queue: ScriptedQueue, store: PutOnlyStore | None = None, reader_class: type[BodyReader] = BodyReader
) -> BodyReader:
    store = store or PutOnlyStore()
    return reader_class(queue, store, quarantine_prefix="quarantine", clock=lambda: NOON)  # type: ignore[arg-type]


def body(number: int, text: str) -> dict[str, Any]:
    return {**message(number), "Body": text}


def test_a_redone_record_is_deleted_a_kept_one_stays_hidden_and_a_failed_one_is_released() -> None:
    # GIVEN a failure queue holding one record of each kind and an unreadable one
    queue = ScriptedQueue([[body(1, "done"), body(2, "kept"), body(3, "retry"), body(4, "junk")]])
    store = PutOnlyStore()
    reader = reader_over(queue, store)

    # WHEN a run redoes them
    result = reader.replay(TallyResult(), 100, Deadline(lambda: 600_000), redo_as_it_says)

    # THEN the redone and the quarantined records are deleted, the failed one is visible again
    # at the end, and the kept one is neither (it stays hidden for its visibility timeout)
    assert queue.deleted == [{"r": "r-1"}, {"r": "r-4"}]
    assert queue.made_visible == ["r-3"]
    assert (result.redone, result.malformed, result.failed) == (3, 1, 0)
    [quarantined] = store.objects.values()
    assert json.loads(gzip.decompress(quarantined))["record"] == "junk"


class SlowRecordReader(BodyReader):
    DEADLINE_PER_RECORD = True


@pytest.mark.parametrize(("reader_class", "redone"), [(BodyReader, 3), (SlowRecordReader, 1)])
def test_a_reader_whose_records_take_long_checks_the_deadline_before_each(
    reader_class: type[BodyReader], redone: int
) -> None:
    # GIVEN one receive of three records, and a deadline that passes while the first is redone
    queue = ScriptedQueue([[body(1, "done"), body(2, "done"), body(3, "done")]])
    remaining = [600_000]

    def redo_slowly(failure: str, message: Message, run: HoldingRun[TallyResult]) -> Redone:
        remaining[0] = 0
        return redo_as_it_says(failure, message, run)

    reader = reader_over(queue, reader_class=reader_class)

    # WHEN a run redoes them
    result = reader.replay(TallyResult(), 100, Deadline(lambda: remaining[0]), redo_slowly)

    # THEN a reader that checks the deadline per record holds the rest for a later run;
    # one that checks it per receive finishes the batch it has
    assert result.redone == redone
    assert sorted(queue.made_visible) == ["r-2", "r-3"][: 3 - redone]


def test_a_dry_run_describes_what_the_reader_parses() -> None:
    # GIVEN a failure queue with a readable and an unreadable record
    queue = ScriptedQueue([[body(1, "kept"), body(2, "junk")]], visible=2)
    reader = reader_over(queue)

    # WHEN it is sampled THEN each is described by the reader's hooks and nothing is hidden
    assert reader.sample(10)["sample"] == [
        {"message_id": "id-1", "says": "kept"},
        {"message_id": "id-2", "malformed": "not a failure record"},
    ]
    assert queue.hold_timeouts == [0]
