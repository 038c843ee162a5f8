"""The pure parts of each table's view in ``changelake status``: changes per hour over the last 48
hours, their sparkline, the newest run of a table, and how the per-table tables print."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta

from changelake.runs import RunRecord
from changelake_cli.activity import BLOCKS, CHART_HOURS, hourly_changes, sparkline
from changelake_cli.lake import BootstrapState, DayReport, SnapshotDay, SnapshotState
from changelake_cli.output import Output
from changelake_cli.render import render_tables
from changelake_cli.status import TableRun, TableStatus

NOW = datetime(2026, 11, 30, 12, 41, tzinfo=UTC)
TODAY, YESTERDAY, TWO_DAYS_AGO = date(2026, 11, 30), date(2026, 11, 29), date(2026, 11, 28)


def report(dt: date, changes: dict[str, int], in_part: tuple[str, ...] = ()) -> DayReport:
    return DayReport("orders", dt, changes_by_hour=changes, hours_counted_in_part=list(in_part))


def three_days(**overrides: DayReport) -> list[DayReport]:
    days = {
        "today": report(TODAY, {}),
        "yesterday": report(YESTERDAY, {}),
        "before": report(TWO_DAYS_AGO, {}),
    }
    return list((days | overrides).values())


def test_the_48_hours_end_with_the_current_one_and_take_each_hour_from_its_day() -> None:
    # GIVEN changes at 12:00 today (the current hour), 13:00 two days ago (the oldest hour of the
    # window) and 12:00 two days ago (just before it)
    reports = three_days(
        today=report(TODAY, {"12": 4, "03": 1}),
        before=report(TWO_DAYS_AGO, {"12": 99, "13": 2}),
        yesterday=report(YESTERDAY, {"20": 7}),
    )
    # WHEN the hours are laid out
    changes = hourly_changes(reports, NOW)
    # THEN 48 counts, oldest first, from 13:00 two days ago to 12:00 today; 12:00 two days ago is out
    assert len(changes.counts) == CHART_HOURS == 48
    assert changes.first_hour == datetime(2026, 11, 28, 13, tzinfo=UTC)
    assert (changes.counts[0], changes.counts[-1]) == (2, 4)
    assert (
        changes.counts[(datetime(2026, 11, 29, 20, tzinfo=UTC) - changes.first_hour) // timedelta(hours=1)]
        == 7
    )
    assert changes.counts[-10] == 1  # 03:00 today
    assert (changes.total, changes.peak, changes.complete) == (14, 7, True)
    assert changes.peak_hour == datetime(2026, 11, 29, 20, tzinfo=UTC)


def test_the_first_of_equal_peaks_is_the_peak_and_no_change_has_none() -> None:
    tied = hourly_changes(three_days(today=report(TODAY, {"01": 5, "09": 5})), NOW)
    assert (tied.peak, tied.peak_hour) == (5, datetime(2026, 11, 30, 1, tzinfo=UTC))
    quiet = hourly_changes(three_days(), NOW)
    assert (quiet.total, quiet.peak, quiet.peak_hour, quiet.complete) == (0, 0, None, True)


def test_counts_are_floors_when_an_hour_was_read_in_part_or_a_day_not_read() -> None:
    # GIVEN an hour of yesterday whose raw/ objects were not all read within the budget
    partly = hourly_changes(three_days(yesterday=report(YESTERDAY, {"05": 3}, in_part=("05",))), NOW)
    # THEN the count is there but marked a floor
    assert (partly.total, partly.complete) == (3, False)
    # GIVEN no report of two days ago (its hours are in the window)  THEN the counts are floors too
    missing = hourly_changes([report(TODAY, {}), report(YESTERDAY, {})], NOW)
    assert missing.complete is False
    # AND an hour read in part outside the window does not matter
    outside = hourly_changes(three_days(before=report(TWO_DAYS_AGO, {"02": 1}, in_part=("02",))), NOW)
    assert (outside.total, outside.complete) == (0, True)


def test_a_sparkline_has_one_block_per_hour_the_peak_full_and_any_change_above_none() -> None:
    assert sparkline([0, 1, 7, 14, 100]) == "▁▂▂▂█"
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([0, 0, 0]) == BLOCKS[0] * 3
    assert sparkline([]) == ""
    assert len(sparkline(list(range(48)))) == 48


def run(kind: str, tables: tuple[str, ...], started: datetime, summary: dict[str, object]) -> RunRecord:
    return RunRecord(
        kind=kind,  # type: ignore[arg-type]
        request_id=f"r-{started:%H%M}",
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        trigger=str(summary.get("trigger", "manual")),
        result="succeeded",
        tables=tables,
        rows=10,
        bytes_out=100,
        summary=summary,
    )


def test_a_tables_last_run_is_the_newest_that_names_it_and_counts_its_own_partitions() -> None:
    # GIVEN runs newest first: a compaction of "invoices" only, then one of both tables
    runs = [
        run("compaction", ("invoices",), NOW, {"compacted": ["invoices/dt=2026-11-30/hour=01"]}),
        run(
            "compaction",
            ("invoices", "orders"),
            NOW - timedelta(hours=1),
            {"compacted": ["orders/dt=2026-11-29/hour=01", "orders/dt=2026-11-29/hour=02", "invoices/x"]},
        ),
        run("snapshot", ("orders",), NOW - timedelta(hours=2), {"built": ["orders/dt=2026-11-29"]}),
    ]
    # WHEN the newest run of each kind of "orders" is picked
    compaction = TableRun.newest(runs, "compaction", "orders")
    snapshot = TableRun.newest(runs, "snapshot", "orders")
    # THEN it is the newest that names the table, with that table's partitions only
    assert compaction is not None
    assert snapshot is not None
    assert (compaction.started_at, compaction.partitions) == (NOW - timedelta(hours=1), 2)
    assert (snapshot.kind, snapshot.partitions) == ("snapshot", 1)
    assert TableRun.newest(runs, "snapshot", "invoices") is None


def test_each_table_prints_its_sparkline_runs_snapshot_day_and_bootstrap() -> None:
    # GIVEN two tables: one compacted and bootstrapped with a possible gap, one with nothing yet
    changes = hourly_changes(three_days(today=report(TODAY, {"11": 2, "12": 8})), NOW)
    bootstrapped = TableStatus(
        "orders",
        None,
        None,
        [],
        changes_per_hour=changes,
        last_compaction=TableRun("compaction", "r", NOW, 2.0, "succeeded", "scheduled", 3),
        last_snapshot=TableRun("snapshot", "s", NOW, 1.0, "succeeded", "bootstrap", 0),
        snapshot=SnapshotState(
            SnapshotDay(YESTERDAY, 498, "2026-11-30T00:45:00Z", "bootstrap"),
            BootstrapState(
                "2026-11-29T10:00:05.123Z", "2026-11-29T06:00:00.000Z", "arn:x", 400, YESTERDAY, True
            ),
        ),
    )
    quiet = TableStatus("payments", None, None, [], changes_per_hour=hourly_changes(three_days(), NOW))
    out = io.StringIO()
    # WHEN they print (not on a terminal)
    render_tables(Output(out=out, environ={}), [bootstrapped, quiet])
    tables = [
        [re.split(r"\s{2,}", line) for line in block.splitlines()[2:]]
        for block in out.getvalue().strip().split("\n\n")
    ]
    charts, runs = ({row[0]: row[1:] for row in rows} for rows in tables)
    # THEN each table has a row with its 48-hour sparkline, total and peak
    assert charts["orders"] == ["▁" * 46 + "▃█", "10", "8 at 2026-11-30 12:00 UTC"]
    assert charts["payments"] == ["▁" * 48, "0", "-"]
    # AND its runs, last snapshot day, items and bootstrap (a possible gap said so)
    assert runs["orders"] == [
        "2026-11-30 12:41 UTC succeeded (scheduled), 3 hour(s)",
        "2026-11-30 12:41 UTC succeeded (bootstrap)",
        "2026-11-29",
        "498",
        "2026-11-29 10:00 UTC from an export of 2026-11-29 06:00 UTC, 400 items "
        "(changes between the export and the stream may be missing)",
    ]
    assert runs["payments"] == ["none", "none", "none", "-", "no"]
