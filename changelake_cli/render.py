"""How each command's result reads on a terminal or in a log (``--json`` prints the same data whole)."""

from __future__ import annotations

from typing import Any

from changelake.runs import RunRecord
from changelake_cli.activity import CHART_HOURS, HourlyChanges, sparkline
from changelake_cli.download import Download
from changelake_cli.invoke import Invocation
from changelake_cli.lake import BootstrapState, DayReport, LayerDay, SnapshotState
from changelake_cli.output import Cell, Output, Styled, human_age, human_bytes, utc_text
from changelake_cli.query import QueryResult
from changelake_cli.status import FanOutProgress, Status, TableRun, TableStatus

HOUR_MARKS = {"compacted": "C", "stale": "s", "pending": "p"}
RESULT_STYLES = {"succeeded": "ok", "failed": "bad", "error": "bad"}


def hours_strip(day: DayReport) -> str:
    """24 characters, one per UTC hour: C compacted, s stale, p pending, . no raw data."""
    return "".join(HOUR_MARKS.get(day.hours.get(f"{h:02d}", ""), ".") for h in range(24))


def _changes(layer: LayerDay) -> str:
    if layer.changes is None:
        return "-"
    return f"{layer.changes}" if layer.complete else f">={layer.changes}"


def _layer_cells(layer: LayerDay) -> list[Cell]:
    return [str(layer.files), human_bytes(layer.bytes), _changes(layer)]


def render_status(o: Output, status: Status) -> None:
    s = status.settings
    where = s.endpoint or s.region
    o.line(Styled(f"stack {s.stack}", "title"), f" ({where}, {s.stack_status})  bucket {s.bucket}")
    o.line(f"as of {utc_text(status.generated_at)}")
    o.line()
    o.table(
        "Last change stored, per table",
        ["table", "event time", "stored", "age", "partition"],
        [
            [
                t.table,
                t.last_change.event_time or "-",
                utc_text(t.last_change.stored_at),
                human_age(t.last_change_age_seconds),
                t.last_change.partition,
            ]
            if t.last_change
            else [t.table, "-", "-", "-", "-"]
            for t in status.tables
        ],
    )
    render_tables(o, status.tables)
    o.table(
        "Last 7 days (files, bytes, changes per layer; hours: C compacted, s stale, p pending, . none)",
        [
            "table",
            "day",
            "raw files",
            "raw bytes",
            "raw changes",
            "compacted files",
            "compacted bytes",
            "compacted changes",
            "snapshot files",
            "snapshot bytes",
            "snapshot items",
            "hours 00-23",
        ],
        [
            [
                t.table,
                d.dt.isoformat(),
                *_layer_cells(d.raw),
                *_layer_cells(d.compacted),
                *_layer_cells(d.snapshot),
                hours_strip(d),
            ]
            for t in status.tables
            for d in t.days
        ],
    )
    o.table(
        "Queues",
        ["queue", "name", "visible", "in flight", "oldest message"],
        [
            [
                q.logical_id,
                q.name,
                _count(q.visible, q.logical_id != "ChangeQueue"),
                str(q.in_flight),
                human_age(q.oldest_age_seconds),
            ]
            for q in status.queues
        ],
    )
    alarming = [a for a in status.alarms if a.state == "ALARM"]
    o.table(
        f"Alarms in ALARM ({len(alarming)} of {len(status.alarms)})",
        ["alarm", "since", "reason"],
        [[Styled(a.name, "bad"), utc_text(a.since), a.reason] for a in alarming],
    )
    render_runs(o, [run for run in status.last_runs.values() if run is not None], "Last runs")
    render_fan_outs(o, status.fan_outs)
    if status.queued_by_late_markers:
        queued = status.queued_by_late_markers
        o.line(
            f"{len(queued)} hour(s) with late data queued for the next scheduled compaction: "
            + ", ".join(queued[:5])
        )
    if status.attention:
        o.line(Styled("Needs attention:", "bad"))
        for problem in status.attention:
            o.line(Styled(f"  - {problem}", "bad"))
    else:
        o.line(Styled("Nothing needs attention.", "ok"))


def render_fan_outs(o: Output, running: list[FanOutProgress]) -> None:
    """The fan-out's running executions: what each builds, and how many of its pieces are built."""
    if not running:
        o.line("No fan-out running (no day or hour is being built in pieces).")
        return
    o.table(
        f"Fan-out running ({len(running)} executions: days and hours built in pieces)",
        ["execution", "started", "table", "started for", "building", "pieces built"],
        [
            [
                f.execution,
                utc_text(f.started_at),
                f.table,
                f.started_for,
                f.folder or "planning",
                f"{f.built} of {f.pieces}" if f.pieces is not None else "-",
            ]
            for f in running
        ],
    )


def render_tables(o: Output, tables: list[TableStatus]) -> None:
    """Each table's changes per hour as a sparkline, its last runs, snapshot day and bootstrap."""
    o.table(
        f"Changes per hour, last {CHART_HOURS} hours (raw/ lines by event time; oldest left, this hour last)",
        ["table", f"changes per hour, {CHART_HOURS} h", "total", "peak"],
        [[t.table, *_chart_cells(t.changes_per_hour)] for t in tables],
    )
    o.table(
        "Last runs, snapshot and bootstrap per table (runs of the last 7 days)",
        ["table", "last compaction", "last snapshot", "last snapshot day", "items", "bootstrap"],
        [
            [
                t.table,
                _table_run(t.last_compaction),
                _table_run(t.last_snapshot),
                *_snapshot_cells(t.snapshot),
                _bootstrap(t.snapshot.bootstrap if t.snapshot else None),
            ]
            for t in tables
        ],
    )


def _chart_cells(changes: HourlyChanges | None) -> list[Cell]:
    if changes is None:
        return ["-", "-", "-"]
    total = f"{changes.total}" if changes.complete else f">={changes.total}"
    peak = f"{changes.peak} at {changes.peak_hour:%Y-%m-%d %H:00} UTC" if changes.peak_hour else "-"
    return [sparkline(changes.counts), total, peak]


def _table_run(run: TableRun | None) -> Cell:
    if run is None:
        return "none"
    unit = "hour(s)" if run.kind == "compaction" else "day(s)"
    done = "" if run.trigger == "bootstrap" else f", {run.partitions} {unit}"
    text = f"{run.started_at:%Y-%m-%d %H:%M} UTC {run.result} ({run.trigger}){done}"
    return Styled(text, RESULT_STYLES.get(run.result, "warn"))


def _snapshot_cells(state: SnapshotState | None) -> list[Cell]:
    if state is None or state.last_day is None:
        return ["none", "-"]
    return [state.last_day.dt.isoformat(), str(state.last_day.items)]


def _bootstrap(bootstrap: BootstrapState | None) -> Cell:
    if bootstrap is None:
        return "no"
    text = (
        f"{_minute(bootstrap.bootstrapped_at)} from an export of {_minute(bootstrap.export_time)}, "
        f"{bootstrap.items} items"
    )
    if bootstrap.missing_possible:
        return Styled(text + " (changes between the export and the stream may be missing)", "warn")
    return text


def _minute(iso: str) -> str:
    """``2026-11-30T06:00:12.345Z`` as ``2026-11-30 06:00 UTC``."""
    return f"{iso[:10]} {iso[11:16]} UTC"


def _count(value: int, alarming: bool) -> Cell:
    return Styled(str(value), "bad") if alarming and value else str(value)


def render_runs(o: Output, runs: list[RunRecord], title: str) -> None:
    o.table(
        title,
        ["kind", "started", "duration", "result", "trigger", "tables", "rows", "bytes"],
        [
            [
                run.kind,
                utc_text(run.started_at),
                f"{run.seconds:.1f} s",
                Styled(run.result, RESULT_STYLES.get(run.result, "warn")),
                run.trigger,
                ", ".join(run.tables) or "-",
                str(run.rows),
                human_bytes(run.bytes_out),
            ]
            for run in runs
        ],
    )


def render_invocation(o: Output, invocation: Invocation) -> None:
    o.line(f"{invocation.function} {invocation.event} ({invocation.seconds:.1f} s)")
    if invocation.error:
        o.line(Styled(f"failed: {invocation.error}", "bad"))
        return
    result = invocation.result
    if isinstance(result, dict):
        o.table("Summary", ["field", "value"], [[k, _short(v)] for k, v in result.items()])
    else:
        o.line(str(result))


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 100 else text[:97] + "..."


def render_download(o: Output, result: Download) -> None:
    folder = f"{result.target}/{result.partition.prefix}"
    o.line(f"{len(result.files)} file(s), {human_bytes(result.bytes)} under {folder}")
    for path in result.files:
        o.line(f"  {path}")


def render_query(o: Output, result: QueryResult) -> None:
    o.table(f"{len(result.rows)} row(s)", result.columns, [[_cell(v) for v in row] for row in result.rows])


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)
