"""How each command's result reads on a terminal or in a log (``--json`` prints the same data whole)."""

from __future__ import annotations

from typing import Any

from changelake.runs import RunRecord
from changelake_cli.download import Download
from changelake_cli.invoke import Invocation
from changelake_cli.lake import DayReport, LayerDay
from changelake_cli.output import Cell, Output, Styled, human_age, human_bytes, utc_text
from changelake_cli.query import QueryResult
from changelake_cli.status import Status

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
