"""The pure parts of `changelake bootstrap`: which export it uses, how it waits, what it refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from changelake_cli.bootstrap import (
    ExportOutcome,
    ExportState,
    SourceTable,
    Tables,
    check_followed,
    export_table,
)
from changelake_cli.errors import UsageError

TABLE = SourceTable(
    name="orders",
    arn="arn:aws:dynamodb:us-east-1:123456789012:table/orders",
    stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-20T08:00:00.000",
    view_type="NEW_AND_OLD_IMAGES",
    point_in_time_recovery=True,
)
RUNNING = ExportState(
    arn=f"{TABLE.arn}/export/01795780800000-0a1b2c3d",
    status="IN_PROGRESS",
    bucket="lake",
    prefix="exports/orders",
    manifest=None,
    started=datetime(2026, 11, 27, 12, tzinfo=UTC),
    items=None,
    failure=None,
)
DONE = replace(
    RUNNING,
    status="COMPLETED",
    manifest="exports/orders/AWSDynamoDB/01795780800000-0a1b2c3d/manifest-summary.json",
)


class FakeTables(Tables):
    """Exports as DynamoDB answers them: ``existing`` found, then ``states`` in turn per describe."""

    def __init__(self, existing: ExportState | None, states: list[ExportState]) -> None:
        super().__init__(client=object())
        self.existing, self.states, self.started = existing, states, 0

    def find_export(self, table_arn: str, bucket: str, prefix: str) -> ExportState | None:
        assert (table_arn, bucket, prefix) == (TABLE.arn, "lake", "exports/orders")
        return self.existing

    def start_export(self, table_arn: str, bucket: str, prefix: str) -> ExportState:
        self.started += 1
        return RUNNING

    def describe_export(self, arn: str) -> ExportState:
        return self.states.pop(0)


def run(tables: FakeTables, table: SourceTable = TABLE) -> tuple[ExportOutcome, list[str], list[float]]:
    shown: list[str] = []
    slept: list[float] = []
    outcome = export_table(
        tables,
        table,
        "lake",
        progress=lambda state, elapsed: shown.append(state.status),
        sleep=slept.append,
        monotonic=lambda: 100.0,
        poll_seconds=7,
    )
    return outcome, shown, slept


def test_a_new_export_is_started_and_polled_until_it_finishes() -> None:
    # GIVEN no export of the table yet, and DynamoDB finishing it at the second look
    tables = FakeTables(None, [RUNNING, DONE])

    # WHEN the table is exported
    outcome, shown, slept = run(tables)

    # THEN one export was started, its progress shown at every poll, and the finished one returned
    assert tables.started == 1
    assert shown == ["IN_PROGRESS", "IN_PROGRESS", "COMPLETED"]
    assert slept == [7, 7]
    assert (outcome.export, outcome.resumed) == (DONE, False)


@pytest.mark.parametrize("existing", [RUNNING, DONE], ids=["running", "finished"])
def test_an_export_already_there_is_resumed_never_started_twice(existing: ExportState) -> None:
    # GIVEN an export of the table to the stack's bucket, running or finished
    tables = FakeTables(existing, [DONE])

    # WHEN the table is exported again (an interrupted bootstrap run again)
    outcome, _, _ = run(tables)

    # THEN that export is used
    assert tables.started == 0
    assert (outcome.export, outcome.resumed) == (DONE, True)


def test_a_table_without_point_in_time_recovery_is_refused_before_any_call() -> None:
    # GIVEN a table without point-in-time recovery
    tables = FakeTables(None, [])

    # WHEN it is exported THEN the refusal says how to turn it on, and nothing was started
    with pytest.raises(UsageError, match="update-continuous-backups --table-name orders"):
        run(tables, replace(TABLE, point_in_time_recovery=False))
    assert tables.started == 0


def test_only_a_followed_stream_may_be_bootstrapped() -> None:
    # GIVEN the stack's FollowedStreamArns output
    outputs = {
        "FollowedStreamArns": f"arn:aws:dynamodb:us-east-1:123456789012:table/a/stream/x,{TABLE.stream_arn}"
    }

    # WHEN tables are checked THEN a followed one passes; another stream of it, or none, is refused
    check_followed(TABLE, "changelake", outputs)
    for other in (
        replace(TABLE, stream_arn=f"{TABLE.arn}/stream/2026-12-01T00:00:00.000"),
        replace(TABLE, stream_arn=None),
    ):
        with pytest.raises(UsageError, match="does not follow table orders: attach it first"):
            check_followed(other, "changelake", outputs)
