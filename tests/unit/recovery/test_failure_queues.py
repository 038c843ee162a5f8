"""What the failure-queue readers share (``changelake.recovery.failure_queues``): an unreadable
message is deleted only once quarantine holds it, and a dry run hides nothing."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from changelake.exceptions import MalformedFailureRecordError, StorageError
from changelake.ingest.quarantine import QuarantineWriter
from changelake.recovery.failure_queues import quarantine_and_delete, sample_queue
from changelake.recovery.receive import Deadline, HoldingRun, RecoveryResult
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
