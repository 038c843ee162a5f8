"""Late data on a moto server: raw/ files of past days are marked, and the next scheduled
compaction covers their hours however old, clearing only the markers it listed."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from changelake.compaction.compactor import CompactionSummary, Compactor
from changelake.compaction.service import CompactionService
from changelake.formats.layout import Partition
from changelake.ingest.aggregator import Aggregator, AggregatorResult
from changelake.integrations.s3 import S3Store
from changelake.late import LateMarkers
from changelake_testing.stream_records import change_batch
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.fakes import FailingPutS3, WrappingClient
from tests.functional.helpers import sqs_event

HOUR_START = datetime(2026, 11, 22, 12, tzinfo=UTC)  # the late hour: 2026-11-22, 12h
LATE_HOUR = "orders/dt=2026-11-22/hour=12"
DAY_AFTER = datetime(2026, 11, 23, 0, 15, tzinfo=UTC)  # its first nightly run
FIVE_DAYS_LATER = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # a redrive
NEXT_NIGHT = datetime(2026, 11, 28, 0, 15, tzinfo=UTC)  # look-back 2: the 25th to the 27th
THE_NIGHT_AFTER = datetime(2026, 11, 29, 0, 15, tzinfo=UTC)


@pytest.fixture
def deliver(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> Callable[[int, int, datetime], list[dict[str, Any]]]:
    """SQS messages (as the aggregator receives them) of ``count`` changes of one hour from ``start``."""
    consumer = load_handler("stream_consumer", stack.environment)

    def messages(seed: int, count: int, start: datetime) -> list[dict[str, Any]]:
        records = change_batch(
            random.Random(seed),
            count,
            start=start.timestamp(),
            span_seconds=3599,
            first_sequence=seed * 10**20,
        )
        assert consumer.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
        return stack.drain()

    return messages


def aggregate(
    stack: Stack, messages: list[dict[str, Any]], now: datetime, client: Any = None
) -> AggregatorResult:
    """The aggregator's batch, processed at ``now``."""
    store = S3Store(stack.bucket, client=client or stack.s3)
    return Aggregator(store, clock=lambda: now).process(sqs_event(messages)["Records"])


def nightly(stack: Stack, now: datetime, client: Any = None) -> CompactionSummary:
    """The scheduled compaction run at ``now``, look-back two days."""
    store = S3Store(stack.bucket, client=client or stack.s3)
    service = CompactionService(
        Compactor(store), markers=LateMarkers(store), lookback_days=2, clock=lambda: now
    )
    with open("events/compaction_scheduled.json") as file:
        return service.handle(json.load(file), FakeLambdaContext())


def compacted_ids(stack: Stack, path: str = LATE_HOUR) -> Counter[str]:
    """How often each event_id is in the hour's compacted parts (what a globbing reader sees)."""
    keys = [key for key in stack.keys(f"compacted/{path}/") if key.endswith(".jsonl.gz")]
    lines = [line for key in keys for line in gzip.decompress(stack.read(key)).splitlines()]
    return Counter(json.loads(line)["event_id"] for line in lines)


def raw_ids(stack: Stack, path: str = LATE_HOUR) -> set[str]:
    keys = stack.keys(f"raw/{path}/")
    return {
        json.loads(line)["event_id"] for key in keys for line in gzip.decompress(stack.read(key)).splitlines()
    }


def test_a_redrive_five_days_late_is_compacted_by_the_next_scheduled_run(
    stack: Stack, deliver: Callable[[int, int, datetime], list[dict[str, Any]]]
) -> None:
    # GIVEN an hour stored on its day and compacted by the next night's run
    assert aggregate(stack, deliver(1, 30, HOUR_START), HOUR_START).response()["batchItemFailures"] == []
    assert nightly(stack, DAY_AFTER).compacted == [LATE_HOUR]
    assert stack.keys("late/") == []  # stored on its own day: nothing is late
    first_files = {key.rsplit("/", 1)[1] for key in stack.keys(f"raw/{LATE_HOUR}/")}

    # WHEN five days later a redrive brings more changes of that hour to the aggregator
    stored = aggregate(stack, deliver(2, 20, HOUR_START), FIVE_DAYS_LATER)
    markers = stack.keys("late/")
    # AND the next scheduled run comes, whose look-back window (25th to 27th) misses the 22nd
    summary = nightly(stack, NEXT_NIGHT)

    # THEN the redelivery was acknowledged with a marker for each consumer, naming its raw file
    assert stored.response()["batchItemFailures"] == []
    (raw_name,) = {key.rsplit("/", 1)[1] for key in stack.keys(f"raw/{LATE_HOUR}/")} - first_files
    assert markers == [f"late/{c}/{LATE_HOUR}/{raw_name}" for c in ("compaction", "snapshot")]
    # AND the run compacted the late hour: every change of its raw/ exactly once
    assert (summary.late, summary.compacted, summary.failed) == ([LATE_HOUR], [LATE_HOUR], [])
    assert compacted_ids(stack) == Counter(raw_ids(stack))
    assert len(raw_ids(stack)) == 50
    # AND its compaction marker is cleared; the snapshot's is left for the snapshot layer
    assert stack.keys("late/compaction/") == []
    assert stack.keys("late/snapshot/") == [f"late/snapshot/{LATE_HOUR}/{raw_name}"]
    # AND the night after, nothing is late any more
    assert nightly(stack, THE_NIGHT_AFTER).late == []


def test_a_late_hour_that_fails_keeps_its_marker_and_the_next_run_retries_it(
    stack: Stack, deliver: Callable[[int, int, datetime], list[dict[str, Any]]]
) -> None:
    # GIVEN a late hour stored five days after it happened
    aggregate(stack, deliver(3, 20, HOUR_START), FIVE_DAYS_LATER)
    (marker,) = stack.keys("late/compaction/")

    # WHEN the next scheduled run cannot commit that hour (S3 refuses its manifest)
    failing = FailingPutS3(stack.s3, f"compacted/{LATE_HOUR}/")
    summary = nightly(stack, NEXT_NIGHT, failing)

    # THEN the hour is reported failed and its marker is kept
    assert [failure["partition"] for failure in summary.failed] == [LATE_HOUR]
    assert stack.keys("late/compaction/") == [marker]
    # AND the run after compacts it and clears the marker
    retry = nightly(stack, THE_NIGHT_AFTER)
    assert (retry.compacted, retry.failed) == ([LATE_HOUR], [])
    assert compacted_ids(stack) == Counter(raw_ids(stack))
    assert stack.keys("late/compaction/") == []


class BeforeCommit(WrappingClient):
    """Runs ``hook`` once, just before the first manifest commit (after the inputs were read)."""

    def __init__(self, real: Any, hook: Callable[[], None]) -> None:
        super().__init__(real)
        self.hook: Callable[[], None] | None = hook

    def put_object(self, **kwargs: Any) -> Any:
        if self.hook is not None and str(kwargs["Key"]).endswith("/_manifest.json"):
            hook, self.hook = self.hook, None
            hook()
        return self.real.put_object(**kwargs)


def test_a_marker_written_during_a_run_survives_it_and_the_next_run_compacts_its_file(
    stack: Stack, deliver: Callable[[int, int, datetime], list[dict[str, Any]]]
) -> None:
    # GIVEN a late hour stored five days after it happened, and a second redrive of that hour on
    # its way: it is stored while the next run compacts the hour, after the run read its inputs
    aggregate(stack, deliver(4, 20, HOUR_START), FIVE_DAYS_LATER)
    (first_marker,) = stack.keys("late/compaction/")
    second = deliver(5, 10, HOUR_START)

    def second_redrive() -> None:
        assert aggregate(stack, second, NEXT_NIGHT).response()["batchItemFailures"] == []

    # WHEN the scheduled run compacts the hour while the second redrive is stored
    summary = nightly(stack, NEXT_NIGHT, BeforeCommit(stack.s3, second_redrive))

    # THEN the run cleared the marker it listed, and kept the one written after it listed them
    assert summary.compacted == [LATE_HOUR]
    (second_marker,) = stack.keys("late/compaction/")
    assert second_marker != first_marker
    assert len(compacted_ids(stack)) == 20  # the second file came after the run read its inputs
    # AND the next run compacts the second file too and clears its marker
    retry = nightly(stack, THE_NIGHT_AFTER)
    assert retry.late == [LATE_HOUR]
    assert compacted_ids(stack) == Counter(raw_ids(stack))
    assert len(raw_ids(stack)) == 30
    assert stack.keys("late/compaction/") == []


def test_a_late_message_whose_marker_cannot_be_written_is_not_acknowledged(
    stack: Stack, deliver: Callable[[int, int, datetime], list[dict[str, Any]]]
) -> None:
    # GIVEN a message of today's hour and a message of an hour five days ago, and S3 refusing
    # every write under late/
    today = deliver(6, 10, FIVE_DAYS_LATER.replace(hour=8))
    late = deliver(7, 10, HOUR_START)
    (late_message,) = late
    failing = FailingPutS3(stack.s3, "late/")

    # WHEN the aggregator processes them together
    result = aggregate(stack, today + late, FIVE_DAYS_LATER, failing)

    # THEN only the late message is reported failed (SQS redelivers it): today's needs no marker
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": late_message["MessageId"]}]}
    assert stack.keys("late/") == []
    # AND redelivered once S3 takes the writes again, it is acknowledged with its markers
    again = aggregate(stack, late, FIVE_DAYS_LATER)
    assert again.response() == {"batchItemFailures": []}
    (raw_key,) = stack.keys(f"raw/{LATE_HOUR}/")
    name = raw_key.rsplit("/", 1)[1]
    assert stack.keys("late/") == [f"late/{c}/{LATE_HOUR}/{name}" for c in ("compaction", "snapshot")]


def test_pending_markers_are_typed_and_keys_that_are_not_markers_are_ignored(stack: Stack) -> None:
    # GIVEN two markers and objects under late/ that no aggregator writes
    markers = LateMarkers(S3Store(stack.bucket, client=stack.s3))
    partition = Partition("orders", HOUR_START.date(), 12)
    markers.mark(partition, "b.jsonl.gz")
    markers.mark(Partition("users", HOUR_START.date(), 7), "a.jsonl.gz")
    for junk in ("late/compaction/readme.txt", "late/compaction/orders/dt=2026-13-01/hour=01/x.jsonl.gz"):
        stack.s3.put_object(Bucket=stack.bucket, Key=junk, Body=b"")

    # WHEN the compaction's markers are listed
    pending = markers.pending("compaction")

    # THEN they carry consumer, table, day, hour and key, and the junk is passed over
    assert [(m.consumer, m.partition.path, m.key) for m in pending] == [
        ("compaction", LATE_HOUR, f"late/compaction/{LATE_HOUR}/b.jsonl.gz"),
        (
            "compaction",
            "users/dt=2026-11-22/hour=07",
            "late/compaction/users/dt=2026-11-22/hour=07/a.jsonl.gz",
        ),
    ]
    # AND clearing them deletes exactly those keys
    markers.clear(pending)
    assert stack.keys("late/compaction/") == sorted(
        ["late/compaction/readme.txt", "late/compaction/orders/dt=2026-13-01/hour=01/x.jsonl.gz"]
    )
    assert len(stack.keys("late/snapshot/")) == 2
    with pytest.raises(ValueError, match="not a raw file name"):
        markers.mark(partition, "../x.jsonl.gz")
