"""SnapshotFunction's runs on moto: scheduled (look-back window, late markers), manual, hand-off,
failures reported after publishing, and malformed events refused with nothing written."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from changelake.exceptions import ConfigurationError, InvalidEventError, SnapshotError
from changelake.formats.layout import Partition
from changelake.integrations.s3 import S3Store
from changelake.late import LateMarkers
from changelake.snapshot.builder import SnapshotBuilder
from changelake.snapshot.events import ManualEvent
from changelake.snapshot.service import SnapshotService
from changelake.storage.limits import BuildLimits
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.snapshot.support import assert_snapshot_is, clock, manifest, put_raw, read_snapshot
from tests.snapshot_support import change

SEQ = 10**20
NIGHT = "2026-11-26T00:45:00+00:00"  # the scheduled run after 2026-11-25
DAYS = [date(2026, 11, day) for day in range(20, 26)]


@dataclass
class Invocations:
    events: list[tuple[str, list[ManualEvent]]] = field(default_factory=list)

    def __call__(self, function_name: str, events: list[ManualEvent]) -> int:
        self.events.append((function_name, events))
        return len(events)


def one_change_a_day(table: str = "orders") -> list:
    return [
        change(
            f"item-{day.day}", f"{day.isoformat()}T12:00:00+00:00", SEQ + day.day, name="INSERT", table=table
        )
        for day in DAYS
    ]


def service(stack: Stack, tmp_path: Path, **options: Any) -> SnapshotService:
    builder = SnapshotBuilder(
        S3Store(stack.bucket, client=stack.s3), limits=BuildLimits(spill_dir=tmp_path), clock=clock(NIGHT)
    )
    return SnapshotService(builder, clock=clock(NIGHT), lookback_days=2, **options)


def test_the_nightly_run_builds_every_table_up_to_yesterday(stack: Stack, tmp_path: Path) -> None:
    # GIVEN six days of two tables in raw/, nothing built yet
    changes = {table: one_change_a_day(table) for table in ("orders", "invoices")}
    for lines in changes.values():
        put_raw(stack, lines)

    # WHEN the scheduled run comes on 2026-11-26
    summary = service(stack, tmp_path).handle({"detail-type": "Scheduled Event"}, FakeLambdaContext())

    # THEN every day of both tables up to yesterday is built (missing days are built wherever they are)
    assert summary.days_built == 12
    assert summary.failed == []
    assert summary.items == 12  # 6 items in each table's snapshot of yesterday
    for table, lines in changes.items():
        for day in DAYS:
            assert_snapshot_is(stack, day, lines, table)


def late(stack: Stack, lines: list) -> list[str]:
    """``lines`` stored as late raw/ files, with the markers the aggregator writes for them."""
    markers = LateMarkers(S3Store(stack.bucket, client=stack.s3))
    keys = put_raw(stack, lines)
    for key in keys:
        folder, name = key.rsplit("/", 1)
        table, dt, hour = folder.split("/")[1:4]
        markers.mark(Partition(table, date.fromisoformat(dt[3:]), int(hour[5:])), name)
    return keys


def marker_keys(stack: Stack, consumer: str) -> list[str]:
    return stack.keys(f"late/{consumer}/")


def test_a_late_marker_of_an_old_day_rebuilds_it_and_every_later_day_then_is_cleared(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN every day built, then a late raw/ file of 2026-11-21 (before the look-back window, after the
    # table's first day, which is always checked) with the markers the aggregator writes
    lines = one_change_a_day()
    put_raw(stack, lines)
    service(stack, tmp_path).handle({"detail-type": "Scheduled Event"}, FakeLambdaContext())
    late_lines = [change("item-21", "2026-11-21T23:00:00+00:00", SEQ + 100, v="late")]
    (key,) = late(stack, late_lines)
    markers = LateMarkers(S3Store(stack.bucket, client=stack.s3))

    # WHEN the next scheduled run comes
    summary = service(stack, tmp_path, markers=markers).handle(
        {"detail-type": "Scheduled Event"}, FakeLambdaContext()
    )

    # THEN the marked day and every later day are rebuilt, with the late change in each
    assert summary.built == [f"orders/dt={day.isoformat()}" for day in DAYS[1:]]
    for day in DAYS:
        assert_snapshot_is(stack, day, lines + late_lines)
    # AND the snapshot's marker is cleared; compaction's is left to compaction
    assert summary.markers_cleared == 1
    assert marker_keys(stack, "snapshot") == []
    assert marker_keys(stack, "compaction") == [f"late/compaction/{key.split('/', 1)[1]}"]


def test_without_a_marker_an_old_late_file_waits_and_a_failed_day_keeps_its_marker(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN every day built, then late files of 2026-11-21 (unmarked) and 2026-11-22 (marked, unreadable)
    lines = one_change_a_day()
    put_raw(stack, lines)
    service(stack, tmp_path).handle({"detail-type": "Scheduled Event"}, FakeLambdaContext())
    put_raw(stack, [change("item-21", "2026-11-21T23:00:00+00:00", SEQ + 100, v="late")])
    bad = "raw/orders/dt=2026-11-22/hour=23/bad.jsonl.gz"
    stack.s3.put_object(Bucket=stack.bucket, Key=bad, Body=gzip.compress(b"{oops\n"))
    markers = LateMarkers(S3Store(stack.bucket, client=stack.s3))
    markers.mark(Partition("orders", date(2026, 11, 22), 23), "bad.jsonl.gz")

    # WHEN the scheduled run comes
    run = service(stack, tmp_path, markers=markers)
    summary = run.handle({"detail-type": "Scheduled Event"}, FakeLambdaContext())

    # THEN 2026-11-21 is not checked (outside the window, not marked), 2026-11-22 fails naming its line,
    # its marker is kept for the next run, and the later days stay as they were
    assert summary.built == []
    assert [failure["error"] for failure in summary.failed] == [
        f"orders/dt=2026-11-22: s3://{stack.bucket}/{bad} line 1: not a JSON change record"
    ]
    assert marker_keys(stack, "snapshot") == ["late/snapshot/orders/dt=2026-11-22/hour=23/bad.jsonl.gz"]
    assert read_snapshot(stack, DAYS[-1])
    with pytest.raises(SnapshotError):
        summary.raise_for_failures()


def test_a_run_short_of_time_hands_the_rest_to_a_new_invocation(stack: Stack, tmp_path: Path) -> None:
    # GIVEN two tables with six days each, and a Lambda deadline already inside the reserve
    for table in ("orders", "invoices"):
        put_raw(stack, one_change_a_day(table))
    invocations = Invocations()
    context = FakeLambdaContext(remaining_ms=100_000)

    # WHEN the scheduled run comes, with a reserve of 240 s
    summary = service(stack, tmp_path, invoker=invocations, reserve_seconds=240).handle(
        {"detail-type": "Scheduled Event"}, context
    )

    # THEN it builds one day (every invocation makes progress), then hands both tables to a new one
    assert summary.built == ["invoices/dt=2026-11-20"]
    assert summary.handed_off == ["invoices/dt=2026-11-25", "orders/dt=2026-11-25"]
    assert invocations.events == [
        (
            context.function_name,
            [ManualEvent(table="invoices", dt="2026-11-25"), ManualEvent(table="orders", dt="2026-11-25")],
        )
    ]
    # AND the hand-off event finishes the table
    finished = service(stack, tmp_path).handle({"table": "invoices", "dt": "2026-11-25"}, FakeLambdaContext())
    assert (finished.days_built, finished.days_unchanged) == (5, 1)
    assert manifest(stack, DAYS[-1], "invoices")["counts"]["items"] == 6


def test_the_manual_event_builds_the_day_and_what_it_needs(stack: Stack, tmp_path: Path) -> None:
    # GIVEN six days in raw/
    lines = one_change_a_day()
    put_raw(stack, lines)

    # WHEN a day in the middle is asked for
    summary = service(stack, tmp_path).handle({"table": "orders", "dt": "2026-11-22"}, FakeLambdaContext())

    # THEN it and every day before it are built, and the summary says so
    assert summary.as_dict() | {"seconds": 0} == {
        "trigger": "manual",
        "tables": 1,
        "days_built": 3,
        "days_completed": 0,
        "days_unchanged": 0,
        "days_retired": 0,
        "parquet_days_built": 0,
        "items": 3,
        "changes_read": 3,
        "changes_applied": 3,
        "removed": 0,
        "bytes_in": summary.bytes_in,
        "bytes_out": summary.bytes_out,
        "seconds": 0,
        "built": ["orders/dt=2026-11-20", "orders/dt=2026-11-21", "orders/dt=2026-11-22"],
        "failed": [],
        "handed_off": [],
        "markers_cleared": 0,
    }
    assert summary.bytes_in > 0
    assert summary.bytes_out > 0
    assert stack.keys("snapshot/orders/dt=2026-11-23/") == []


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        ({"table": "orders", "dt": "2026-11-27"}, "dt", "in the future"),
        ({"table": "orders", "dt": "2026-11-19"}, "dt", "before orders's first day 2026-11-20"),
        ({"table": "nothing-here", "dt": "2026-11-22"}, "table", "no changes in raw/ and no bootstrap"),
    ],
)
def test_a_manual_event_for_a_day_that_cannot_exist_is_refused(
    stack: Stack, tmp_path: Path, event: dict[str, Any], field: str, message: str
) -> None:
    # GIVEN six days in raw/
    put_raw(stack, one_change_a_day())
    # WHEN a day that cannot have a snapshot is asked for THEN it is refused, naming the field
    with pytest.raises(InvalidEventError, match=message) as refused:
        service(stack, tmp_path).handle(event, FakeLambdaContext())
    assert refused.value.field == field
    assert stack.keys("snapshot/") == []


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"table": "orders", "dt": "2026-02-30"}, "dt"),
        ({"table": "../orders", "dt": "2026-11-22"}, "table"),
        ({"table": "orders", "dt": "2026-11-22", "extra": 1}, "extra"),
        ({"table": "orders", "dt": "2026-11-22", "buckets": 2, "bucket": 2}, "bucket"),
        ({"table": "orders", "dt": "2026-11-22", "buckets": 2, "commit": "yes"}, "commit"),
        ({"table": "orders", "dt": "2026-11-22", "plan": False}, "plan"),
        ({"table": "orders", "bootstrap": "s3://bucket/export/manifest-summary.json"}, "bootstrap"),
        ("not an object", "event"),
    ],
)
@pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")  # refused: no run, no metrics
def test_the_handler_refuses_malformed_events_and_writes_nothing(
    stack: Stack, load_handler: HandlerLoader, event: Any, field: str
) -> None:
    # GIVEN SnapshotFunction and a lake with changes
    put_raw(stack, one_change_a_day())
    handler = load_handler("snapshot", stack.environment)
    # WHEN invoked with a malformed event THEN it is refused naming the field, and nothing is written
    with pytest.raises(InvalidEventError) as refused:
        handler.lambda_handler(event, FakeLambdaContext())
    assert refused.value.field == field
    assert stack.keys("snapshot/") == []


def test_the_handler_reports_then_raises_when_a_day_fails(stack: Stack, load_handler: HandlerLoader) -> None:
    # GIVEN a lake whose second day holds an unreadable object
    put_raw(stack, one_change_a_day())
    bad = "raw/orders/dt=2026-11-21/hour=23/bad.jsonl.gz"
    stack.s3.put_object(Bucket=stack.bucket, Key=bad, Body=gzip.compress(b"[]\n"))
    handler = load_handler("snapshot", stack.environment)

    # WHEN asked for the third day THEN it raises SnapshotError after publishing what it could
    with pytest.raises(SnapshotError, match="line 1: a change record must be a JSON object") as raised:
        handler.lambda_handler({"table": "orders", "dt": "2026-11-22"}, FakeLambdaContext())
    assert raised.value.summary["built"] == ["orders/dt=2026-11-20"]
    assert stack.keys("snapshot/orders/dt=2026-11-21/") == []


@pytest.mark.parametrize(("variable", "value"), [("SNAPSHOT_PREFIX", "../escape"), ("LOOKBACK_DAYS", "x")])
def test_a_malformed_variable_fails_the_cold_start_naming_it(
    stack: Stack, load_handler: HandlerLoader, variable: str, value: str
) -> None:
    # GIVEN SnapshotFunction's environment with one malformed variable
    # WHEN the handler is imported (a cold start) THEN it fails naming the variable
    with pytest.raises(ConfigurationError, match=variable):
        load_handler("snapshot", stack.environment, **{variable: value})
