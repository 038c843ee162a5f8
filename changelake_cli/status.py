"""What ``changelake status``, ``history`` and the status page show, gathered once for all three."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from changelake.clock import Clock, utc_now
from changelake.late import LateMarkers
from changelake.pieces import PIECES_FOLDER, Piece
from changelake.runs import RUN_KINDS, RunKind, RunRecord
from changelake_cli.activity import HourlyChanges, hourly_changes
from changelake_cli.errors import UsageError
from changelake_cli.lake import (
    DayReport,
    Lake,
    LakePrefixes,
    LakeStore,
    LastChange,
    ReadBudget,
    SnapshotState,
    lake_prefixes,
)
from changelake_cli.services import (
    READERS,
    CloudWatch,
    Functions,
    QueueDepth,
    Queues,
    Scheduler,
    StepFunctions,
    queue_name,
    read_runs,
)
from changelake_cli.stack import Aws, StackInfo, describe_stack

#: Days ``status`` and the page look back over (today included), as the seed design's status tab.
STATUS_DAYS = 7
DEFAULT_LOOKBACK_DAYS = 2
#: template.yaml's state machine that builds large days and busy hours in pieces.
FAN_OUT_ID = "FanOutStateMachine"
#: ASCII digits only: ``str.isdigit`` also takes "²" (which ``int`` refuses), ``\d`` Arabic-Indic digits.
_HOUR = re.compile(r"[0-9]{2}\Z")


def check_hour(text: str) -> str:
    """``text`` if it is an hour of the lake's layout, 00 to 23."""
    if not _HOUR.match(text) or int(text) > 23:
        raise UsageError(f"--hour must be two digits 00 to 23, not {text!r}")
    return text


@dataclass
class Operator:
    """One target's stack and clients, built once per command (or once per page server)."""

    aws: Aws
    stack: StackInfo
    clock: Clock = utc_now
    #: What the command should tell on stderr after its data (objects it could not read, ...).
    notes: list[str] = field(default_factory=list)
    _store: LakeStore | None = field(default=None, repr=False)
    _lake: Lake | None = field(default=None, repr=False)

    @classmethod
    def connect(cls, aws: Aws, clock: Clock = utc_now) -> Operator:
        return cls(aws, describe_stack(aws), clock)

    @property
    def store(self) -> LakeStore:
        if self._store is None:
            self._store = LakeStore(self.stack.bucket, client=self.aws.client("s3"))
        return self._store

    @property
    def lake(self) -> Lake:
        """The bucket under the prefixes the stack's functions write (read from them once)."""
        if self._lake is None:
            self._lake = Lake(self.store, lake_prefixes(self.function_environment))
        return self._lake

    def function_environment(self, logical_id: str) -> dict[str, str] | None:
        """The environment variables of one of the stack's functions (None: the stack has none)."""
        name = self.stack.functions.get(logical_id)
        return None if name is None else Functions(client=self.aws.client("lambda")).environment(name)

    def tables(self) -> list[str]:
        return self.lake.tables()

    def check_table(self, table: str) -> str:
        known = self.tables()
        if table not in known:
            listed = ", ".join(known) if known else "none yet"
            raise UsageError(f"no table {table!r} in the lake of stack {self.stack.name} (tables: {listed})")
        return table

    def check_day(self, text: str) -> date:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise UsageError(f"--dt must be a day as YYYY-MM-DD, not {text!r}") from None
        today = self.clock().astimezone(UTC).date()
        if day > today:
            raise UsageError(f"--dt {day} is in the future (today is {today} UTC)")
        return day

    def days(self, count: int) -> list[date]:
        today = self.clock().astimezone(UTC).date()
        return [today - timedelta(days=back) for back in range(count)]

    @property
    def lookback_days(self) -> int:
        return self.stack.parameter_int("LookbackDays", DEFAULT_LOOKBACK_DAYS)


@dataclass(frozen=True)
class TableRun:
    """The newest run of one kind that worked on a table (its whole record: ``history``)."""

    kind: RunKind
    request_id: str
    started_at: datetime
    seconds: float
    result: str
    trigger: str
    #: The table's partitions the run compacted (hours) or built (days).
    partitions: int

    @classmethod
    def newest(cls, runs: list[RunRecord], kind: RunKind, table: str) -> TableRun | None:
        """The first of ``runs`` (newest first) of ``kind`` that names ``table``."""
        run = next((r for r in runs if r.kind == kind and table in r.tables), None)
        if run is None:
            return None
        done = run.summary.get("compacted" if kind == "compaction" else "built") or []
        partitions = sum(1 for path in done if isinstance(path, str) and path.startswith(f"{table}/"))
        return cls(kind, run.request_id, run.started_at, run.seconds, run.result, run.trigger, partitions)


@dataclass(frozen=True)
class TableStatus:
    table: str
    last_change: LastChange | None
    last_change_age_seconds: float | None
    days: list[DayReport]
    changes_per_hour: HourlyChanges | None = None
    last_compaction: TableRun | None = None
    last_snapshot: TableRun | None = None
    #: The newest snapshot day (items from its manifest) and the bootstrap, if the table had one.
    snapshot: SnapshotState | None = None


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str
    reason: str
    since: datetime | None


@dataclass(frozen=True)
class Settings:
    """The settings panel: all read from the stack."""

    stack: str
    region: str
    endpoint: str | None
    stack_status: str
    bucket: str
    change_table: str
    functions: dict[str, str]
    schedules: dict[str, dict[str, str]]
    parameters: dict[str, str]
    tables: list[str]


@dataclass(frozen=True)
class FanOutProgress:
    """A running execution of the fan-out state machine, and how far its pieces are."""

    execution: str
    started_at: datetime
    table: str
    #: What it was started for: ``dt=D`` (the days up to D) or ``dt=D/hour=HH``.
    started_for: str
    #: The folder its pieces build now; None while it plans (its function builds the small days).
    folder: str | None = None
    pieces: int | None = None
    #: Pieces of that folder recorded (built) so far, of its current generation.
    built: int = 0


@dataclass(frozen=True)
class Status:
    generated_at: datetime
    settings: Settings
    tables: list[TableStatus]
    queues: list[QueueDepth]
    alarms: list[AlarmState]
    last_runs: dict[str, RunRecord | None]
    lost_reports: list[str]
    attention: list[str]
    #: Hours (``table/dt=.../hour=HH``) a late-data marker queues for the next scheduled compaction.
    queued_by_late_markers: list[str] = field(default_factory=list)
    #: The fan-out's running executions (days and hours built in pieces).
    fan_outs: list[FanOutProgress] = field(default_factory=list)


def settings(operator: Operator, lake_tables: list[str] | None = None) -> Settings:
    stack = operator.stack
    scheduler = Scheduler(client=operator.aws.client("scheduler"))
    schedules: dict[str, dict[str, str]] = {}
    for logical_id, name in stack.schedules.items():
        found = scheduler.schedule(name)
        schedules[logical_id] = {
            "name": name,
            "expression": str(found.get("ScheduleExpression", "")),
            "timezone": str(found.get("ScheduleExpressionTimezone", "UTC")),
            "state": str(found.get("State", "")),
        }
    return Settings(
        stack=stack.name,
        region=stack.region,
        endpoint=operator.aws.target.endpoint,
        stack_status=stack.status,
        bucket=stack.bucket,
        change_table=stack.table,
        functions=stack.functions,
        schedules=schedules,
        parameters=dict(sorted(stack.parameters.items())),
        tables=operator.tables() if lake_tables is None else lake_tables,
    )


def _table_status(
    operator: Operator, table: str, days: list[date], budget: ReadBudget, runs: list[RunRecord]
) -> TableStatus:
    with ThreadPoolExecutor(READERS) as pool:
        reports = list(pool.map(lambda day: operator.lake.day_report(table, day, budget), days))
    last = operator.lake.last_change(table)
    now = operator.clock()
    age = (now - last.stored_at).total_seconds() if last else None
    return TableStatus(
        table,
        last,
        age,
        reports,
        changes_per_hour=hourly_changes(reports, now),
        last_compaction=TableRun.newest(runs, "compaction", table),
        last_snapshot=TableRun.newest(runs, "snapshot", table),
        snapshot=operator.lake.snapshot_state(table),
    )


def queue_depths(operator: Operator) -> list[QueueDepth]:
    queues = Queues(client=operator.aws.client("sqs"))
    cloudwatch = CloudWatch(client=operator.aws.client("cloudwatch"))
    depths = []
    for logical_id, url in operator.stack.queues.items():
        visible, in_flight = queues.depth(logical_id, url)
        oldest = cloudwatch.oldest_message_age(queue_name(url), operator.clock())
        depths.append(QueueDepth(logical_id, queue_name(url), visible, in_flight, oldest))
    return depths


def alarm_states(operator: Operator) -> list[AlarmState]:
    cloudwatch = CloudWatch(client=operator.aws.client("cloudwatch"))
    if operator.stack.alarms:
        alarms = cloudwatch.alarms(operator.stack.alarms.values())
    elif operator.aws.target.is_local:  # moto's CloudFormation skips alarms: changelake_local registers them
        alarms = cloudwatch.alarms_named_from(f"{operator.stack.name}-")
    else:
        alarms = []
    return [
        AlarmState(
            name=str(alarm["AlarmName"]),
            state=str(alarm.get("StateValue", "")),
            reason=str(alarm.get("StateReason", "")),
            since=alarm.get("StateUpdatedTimestamp"),
        )
        for alarm in alarms
    ]


def fan_outs(operator: Operator) -> list[FanOutProgress]:
    """The fan-out state machine's RUNNING executions, each with its current plan's pieces and how
    many of them are recorded in their folder's ``_pieces/`` (none without the state machine)."""
    arn = operator.stack.physical.get(FAN_OUT_ID)
    if arn is None:
        return []
    machine = StepFunctions(client=operator.aws.client("stepfunctions"))
    progress = []
    for execution in machine.running(arn):
        execution_arn = str(execution["executionArn"])
        given = machine.execution_input(execution_arn)
        running = FanOutProgress(
            execution=str(execution["name"]),
            started_at=execution["startDate"],
            table=str(given.get("table", "?")),
            started_for=partition_of(given),
        )
        plan = machine.current_plan(execution_arn)
        if plan and plan.get("pieces") and isinstance(plan.get("commit"), dict):
            folder = fan_out_folder(operator.lake.prefixes, plan["commit"])
            count = len(plan["pieces"])
            running = replace(
                running, folder=folder, pieces=count, built=pieces_built(operator.store, folder, count)
            )
        progress.append(running)
    return progress


def partition_of(event: Mapping[str, Any]) -> str:
    """``dt=D`` or ``dt=D/hour=HH`` of a fan-out event."""
    day = f"dt={event.get('dt', '?')}"
    return f"{day}/hour={int(event['hour']):02d}" if event.get("hour") is not None else day


def fan_out_folder(prefixes: LakePrefixes, commit: Mapping[str, Any]) -> str:
    """The folder a plan's commit event publishes (its pieces build it): a snapshot day, or a
    compacted hour."""
    layer = prefixes.compacted if commit.get("hour") is not None else prefixes.snapshot
    return f"{layer}/{commit['table']}/{partition_of(commit)}/"


def pieces_built(store: LakeStore, folder: str, count: int) -> int:
    """How many of ``count`` pieces have a record under the folder's ``_pieces/`` (the most of one
    generation: records of an older one, left by a commit that died, do not add up)."""
    prefix = folder + PIECES_FOLDER
    names = {f"{Piece(index, count).name}.json" for index in range(count)}
    per_generation: Counter[str] = Counter()
    for item in store.list_objects(prefix):
        generation, _, name = item.key.removeprefix(prefix).rpartition("/")
        if name in names:
            per_generation[generation] += 1
    return max(per_generation.values(), default=0)


def recent_runs(operator: Operator, days: int, kinds: tuple[RunKind, ...] = RUN_KINDS) -> list[RunRecord]:
    moments = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in operator.days(days)]
    return read_runs(operator.store, moments, kinds, on_unreadable=operator.notes.append)


def lost_reports(operator: Operator, days: int) -> list[str]:
    since = operator.clock() - timedelta(days=days)
    lost = f"{operator.lake.prefixes.lost}/"
    return [item.key for item in operator.store.list_detailed(lost) if item.modified >= since]


def collect_status(operator: Operator, *, days: int = STATUS_DAYS) -> Status:
    lake_tables = operator.tables()
    budget = ReadBudget()
    runs = recent_runs(operator, days)
    table_status = [
        _table_status(operator, table, operator.days(days), budget, runs) for table in lake_tables
    ]
    last_runs: dict[str, RunRecord | None] = {
        kind: next((r for r in runs if r.kind == kind), None) for kind in RUN_KINDS
    }
    status = Status(
        generated_at=operator.clock(),
        settings=settings(operator, lake_tables),
        tables=table_status,
        queues=queue_depths(operator),
        alarms=alarm_states(operator),
        last_runs=last_runs,
        lost_reports=lost_reports(operator, days),
        attention=[],
        queued_by_late_markers=sorted(
            {m.partition.path for m in LateMarkers(operator.store).pending("compaction")}
        ),
        fan_outs=fan_outs(operator),
    )
    status.attention.extend(needs_attention(status, operator.lookback_days, operator.clock))
    return status


def needs_attention(status: Status, lookback_days: int, clock: Clock) -> list[str]:
    """What a human should act on; ``status`` exits 1 when this is not empty."""
    problems: list[str] = []
    for queue in status.queues:
        held = queue.visible + queue.in_flight
        if queue.logical_id == "ChangeDLQ" and held:
            problems.append(f"ChangeDLQ holds {held} message(s): fix the cause, then `changelake redrive`")
        if queue.logical_id == "StreamFailureQueue" and held:
            problems.append(
                f"StreamFailureQueue holds {held} failed stream range(s): "
                "`changelake redrive` within 24 hours"
            )
        if queue.logical_id == "AsyncFailureQueue" and held:
            problems.append(
                f"AsyncFailureQueue holds {held} failed asynchronous invocation(s): fix the cause, "
                "then `changelake redrive`"
            )
    if status.lost_reports:
        count = len(status.lost_reports)
        problems.append(f"{count} lost stream range report(s) under lost/ (see docs/operations.md)")
    problems.extend(f"alarm {a.name} is in ALARM: {a.reason}" for a in status.alarms if a.state == "ALARM")
    for kind, run in status.last_runs.items():
        if run is not None and run.result != "succeeded":
            problems.append(f"the last {kind} run {run.result}: {run.error or 'see changelake history'}")
    window_start = clock().astimezone(UTC).date() - timedelta(days=1 + lookback_days)
    for table in status.tables:
        for day in table.days:
            queued = set(status.queued_by_late_markers)
            late = sorted(
                hour
                for hour, state in day.hours.items()
                if state != "compacted" and f"{table.table}/dt={day.dt}/hour={hour}" not in queued
            )
            if day.dt < window_start and late:
                problems.append(
                    f"{table.table} {day.dt}: hour(s) {', '.join(late)} not compacted, "
                    "past the look-back window "
                    f"of {lookback_days} day(s): `changelake compact --table {table.table} --dt {day.dt}`"
                )
    return problems


def history(operator: Operator, *, days: int, table: str | None) -> list[RunRecord]:
    runs = recent_runs(operator, days)
    return [run for run in runs if table is None or table in run.tables]


def latest(operator: Operator) -> dict[str, Any]:
    """The page's ``/api/pipeline/latest``: the newest run of each kind and the newest data per layer."""
    runs = recent_runs(operator, STATUS_DAYS)
    return {
        "runs": {kind: next((r for r in runs if r.kind == kind), None) for kind in RUN_KINDS},
        "last_change": {table: operator.lake.last_change(table) for table in operator.tables()},
    }
