"""The whole pipeline on one machine: endpoint, stack, mappings, load, schedule, drain, verify.

``run_pipeline(RunOptions(...))`` is the Python API (the CLI ``python -m changelake_local run``,
the integration test and bench row 6 call it); it returns a ``Summary`` with the verification,
throughput and lag (``changelake_local.summary``, which renders it). A run has three phases, each
a method of ``LocalPipeline``: ``stream`` (write load, let the mappings carry it, compact every
local night), ``drain`` (stop writing, redrive, wait for the queues to empty) and ``finish``
(compact, verify, summarize).

With ``RunOptions.tables`` (``make run TABLES=2``) the run follows the user's own tables instead of
ChangeTable: ``changelake_local.user_tables`` makes them as a user's already exist (items from before
their streams), the stack is deployed with ``SourceStreamArns`` naming their streams, the load is
spread over them, each is bootstrapped with ``changelake bootstrap --table NAME`` (by export with
point-in-time recovery, by Scan without), and each table's snapshot is checked against a Scan of it.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from changelake.pieces import MAX_PIECES
from changelake_local.aws import client
from changelake_local.deploy import DEFAULT_TEMPLATE, deploy
from changelake_local.deployed_stack import DeployedStack, MappingSpec
from changelake_local.endpoint import ACCOUNT, DEFAULT_PORT, REGION, MotoEndpoint, aws_environment
from changelake_local.errors import LocalRunError
from changelake_local.esm import Hooks, MappingRun, SqsMapping, StreamMapping
from changelake_local.functions import (
    MAX_ENVIRONMENTS,
    ExecutionEnvironments,
    LocalFunction,
    applied_environment,
)
from changelake_local.generator import LoadGenerator
from changelake_local.invoke_server import LambdaInvokeServer
from changelake_local.lake import LakeState, LakeWatcher, StreamLedger, Verification, percentile, verify
from changelake_local.snapshots import SnapshotChecker, SnapshotVerification, scan, write_export
from changelake_local.state_machines import (
    FAN_OUT_STATE_MACHINE,
    FanOutRuns,
    LocalStateMachines,
    serve_stack_functions,
)
from changelake_local.summary import Summary, print_summary, to_json
from changelake_local.user_tables import UserTable, bootstrap_with_cli, create_user_tables

#: Environment of every in-process function on top of the template's (what differs from Lambda).
LOCAL_FUNCTION_ENVIRONMENT = {
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
    "POWERTOOLS_METRICS_DISABLED": "true",  # no CloudWatch; EMF lines would only flood the terminal
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
}


#: Deploy-time parameters of a local run (``make run``; ``--template-defaults`` turns them off):
#: the template's 60 s aggregator and 5 s stream batching windows would make the lag of a short
#: local run mostly waiting (p50 ~33 s, p99 ~63 s); a 5 s and a 1 s window show the pipeline.
LOCAL_PARAMETERS = {"AggregatorBatchingWindowSeconds": "5", "StreamBatchingWindowSeconds": "1"}


def fan_out_parameters(pieces: int) -> dict[str, str]:
    """Template parameters that hand every nightly day and hour to the fan-out state machine, in
    ``pieces`` pieces (``make run RUN_ARGS="--pieces 4"``), at most ``MAX_ENVIRONMENTS`` at once:
    as many as a function has execution environments locally."""
    if not 1 <= pieces <= MAX_PIECES:
        raise ValueError(f"--pieces takes 1 to {MAX_PIECES} pieces, not {pieces}")
    return {
        "SnapshotFanOutMinBytes": "1",
        "CompactionFanOutMinBytes": "1",
        "FanOutPieces": str(pieces),
        "FanOutConcurrency": str(MAX_ENVIRONMENTS),
    }


#: While streaming, the lake watcher lists all of raw/ on every this many progress ticks (only
#: the recent partitions in between); draining and the final scans always list everything.
FULL_SCAN_EVERY = 20
#: Redrive invocations a drain makes at most (each moves what is in ChangeDLQ and the failure queue).
MAX_DRAIN_REDRIVES = 5


@dataclass(frozen=True)
class RunOptions:
    """What a local run does: how long and how fast it writes, where the lake lands, what it injects."""

    #: Seconds of writing (0: until ``stop_requested`` is set or Ctrl-C).
    duration: float = 60.0
    #: Changes per second written (to ChangeTable, or spread over the user's tables).
    rate: float = 50.0
    #: The user's own tables to create and follow through ``SourceStreamArns`` (0: the stack's own
    #: ChangeTable, as ``make run`` without TABLES).
    tables: int = 0
    #: Seconds of a local "night": the compaction schedule's period (0: only at the end).
    night: float = 60.0
    #: Seconds after the start when the table is exported and the snapshot bootstrapped from it
    #: (None: halfway through ``duration``, or at the first night of an endless run).
    bootstrap_after: float | None = None
    #: Port of the moto server (0: any free port).
    port: int = 0
    template: Path = DEFAULT_TEMPLATE
    #: Template parameters (``LOCAL_PARAMETERS`` is what ``make run`` deploys with).
    parameters: Mapping[str, str] = field(default_factory=dict)
    #: Hand every nightly day and hour to the fan-out state machine in this many pieces
    #: (``fan_out_parameters``); 0: the template's thresholds (nothing this small is handed off).
    pieces: int = 0
    hooks: Hooks = field(default_factory=Hooks)
    #: Where the lake and the logs land on local disk (None: nowhere).
    lake_dir: Path | None = Path("lake")
    item_bytes: int = 1024
    writers: int = 0
    #: Seconds before a message the aggregator failed is received again (None: the queue's own).
    failed_visibility_seconds: int | None = None
    #: Whether the drain invokes the redrive for what reached ChangeDLQ or the failure queue.
    redrive: bool = True
    drain_timeout: float = 180.0
    progress_interval: float = 0.5
    duckdb_sample: bool = True


@dataclass
class Progress:
    """A snapshot for the live display."""

    phase: str
    elapsed: float
    written: int
    write_rate: float
    stream_records: int
    in_flight: int
    raw_unique: int
    compacted: int
    quarantined: int
    dead_lettered: int
    stream_failures: int
    lag_p50: float | None
    lag_p99: float | None
    files_per_partition: dict[str, int]
    function_errors: dict[str, int]
    #: The stream mappings' largest IteratorAge since the previous report (None: no batch invoked).
    iterator_age: float | None = None


ProgressCallback = Callable[[Progress], None]


def scheduled_event(schedule_name: str, now: datetime) -> dict[str, Any]:
    """The EventBridge scheduled event (as in events/compaction_scheduled.json)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{schedule_name}"],
        "detail": {},
    }


class LocalPipeline:
    """All the moving parts of one run; ``run`` drives its phases: stream, drain, finish."""

    def __init__(
        self,
        stack: DeployedStack,
        options: RunOptions,
        *,
        log_stream: TextIO | None = None,
        on_progress: ProgressCallback | None = None,
        user_tables: Sequence[UserTable] = (),
    ) -> None:
        self.stack = stack
        self.user_tables = list(user_tables)
        #: The tables written to and checked: the user's, or the stack's own ChangeTable.
        self.tables = [table.name for table in self.user_tables] or [stack.table]
        self.options = options
        self.on_progress = on_progress
        self.stop = threading.Event()
        self.draining = threading.Event()
        self.ledger = StreamLedger()
        self.functions = {
            logical_id: LocalFunction(
                stack.function(logical_id),
                extra_environment=LOCAL_FUNCTION_ENVIRONMENT,
                log_stream=log_stream,
            )
            for logical_id in stack.functions()
        }
        for function in self.functions.values():
            function.load()  # cold starts now: a handler that cannot start fails the run up front
        self.environments: dict[str, ExecutionEnvironments] = {}
        self.mappings = [self._mapping(spec) for spec in stack.mappings()]
        self.generator = LoadGenerator(
            stack.endpoint,
            self.tables,
            rate=options.rate,
            item_bytes=options.item_bytes,
            writers=options.writers,
        )
        self.watcher = LakeWatcher(stack.endpoint, stack.bucket, self.ledger)
        self.sqs = client("sqs", stack.endpoint)
        self.redriven: list[dict[str, Any]] = []
        self.compactions = 0
        self.snapshots = 0
        #: SnapshotFunction's answer to each table's bootstrap, by table.
        self.bootstraps: dict[str, dict[str, Any]] = {}
        self.bootstrapped = False
        #: The user's tables' bootstraps run beside the writes (each a ``changelake`` process that
        #: takes seconds), so the writing still lasts ``duration``; joined before the drain.
        self.user_bootstraps: threading.Thread | None = None
        self.depths = {"ChangeQueue": 0, "ChangeDLQ": 0, "StreamFailureQueue": 0}
        self.problems: list[str] = []
        self.started = self.started_wall = 0.0
        #: The fan-out's executions, each waited for after the nightly run that started it.
        self.fan_out = (
            FanOutRuns(LocalStateMachines(stack), timeout=options.drain_timeout)
            if FAN_OUT_STATE_MACHINE in stack.physical_ids
            else None
        )

    def serve_state_machines(self, lambdas: LambdaInvokeServer) -> None:
        """Let the stack's state machines' Lambda tasks reach the functions (each ``functions[id]``
        the first of its execution environments)."""
        self.environments = serve_stack_functions(lambdas, self.stack, self.functions)

    def _all_functions(self) -> Mapping[str, LocalFunction | ExecutionEnvironments]:
        """Each function's invocations in all its environments (errors and last error counted there)."""
        return {**self.functions, **self.environments}

    def _mapping(self, spec: MappingSpec) -> StreamMapping | SqsMapping:
        function = self.functions[spec.function]
        run = MappingRun(self.stack, self.options.hooks, stop=self.stop, drain=self.draining)
        if spec.is_stream:
            return StreamMapping(spec, function, run, on_record=self.ledger.observe)
        return SqsMapping(
            spec, function, run, failed_visibility_seconds=self.options.failed_visibility_seconds
        )

    # ------------------------------------------------------------------ phases
    def run(self, stop_requested: threading.Event) -> Summary:
        """Stream until the duration is over (or ``stop_requested``), drain, then finish."""
        self.started, self.started_wall = time.monotonic(), time.time()
        for mapping in self.mappings:
            mapping.start()
        self.generator.start()
        interrupted = self.stream(stop_requested)
        writing_seconds = time.monotonic() - self.started
        self.generator.stop()
        if self.user_bootstraps is not None:
            self.user_bootstraps.join()
        # what each table's snapshot must equal
        table_at_stop = {table: scan(self.stack.endpoint, table) for table in self.tables}
        self.drain()
        return self.finish(writing_seconds, table_at_stop, interrupted=interrupted)

    def stream(self, stop_requested: threading.Event) -> bool:
        """Write, let the mappings carry the changes, compact every night; True if Ctrl-C ended it."""
        options = self.options
        next_night = self.started + options.night if options.night > 0 else float("inf")
        # The bootstrap export is taken halfway (or at the first night of an endless run): the snapshot
        # then starts from a table that already had items, as for a stream enabled on a live table.
        halfway = options.duration / 2 if options.duration > 0 else options.night
        after = halfway if options.bootstrap_after is None else options.bootstrap_after
        bootstrap_at = self.started + after if after > 0 else float("inf")
        ticks = 0
        try:
            while not stop_requested.is_set() and (
                options.duration <= 0 or time.monotonic() - self.started < options.duration
            ):
                self.check_mappings()
                self.refresh(full=ticks % FULL_SCAN_EVERY == 0)
                ticks += 1
                if not self.bootstrapped and time.monotonic() >= bootstrap_at:
                    self.bootstrap(datetime.now(UTC))
                if time.monotonic() >= next_night:
                    self.report("compacting")
                    self.compact(datetime.now(UTC))
                    self.snapshot(datetime.now(UTC))
                    next_night = time.monotonic() + options.night
                self.report("streaming")
                stop_requested.wait(options.progress_interval)
        except KeyboardInterrupt:
            return True  # first Ctrl-C: stop writing, drain and verify (a second one aborts)
        return False

    def drain(self) -> None:
        """Redrive what failed and wait until every mapping and queue is idle (writing has stopped)."""
        self.draining.set()
        if self.options.hooks.on_drain is not None:
            self.options.hooks.on_drain()
        deadline = time.monotonic() + self.options.drain_timeout
        stable = redrives = 0
        while time.monotonic() < deadline:
            self.check_mappings()
            self.refresh()
            self.report("draining")
            failed_over = self.depths["ChangeDLQ"] or self.depths["StreamFailureQueue"]
            if self.options.redrive and failed_over and redrives < MAX_DRAIN_REDRIVES:
                redrives += 1
                self.redrive()
                continue
            stable = stable + 1 if self.drained() else 0
            if stable >= 2:
                return
            time.sleep(self.options.progress_interval)
        self.problems.append(
            f"the pipeline did not drain within {self.options.drain_timeout:.0f} s "
            f"(ChangeQueue {self.depths['ChangeQueue']}, ChangeDLQ {self.depths['ChangeDLQ']}, "
            f"StreamFailureQueue {self.depths['StreamFailureQueue']})"
        )

    def finish(
        self, writing_seconds: float, table_at_stop: dict[str, list[dict[str, Any]]], *, interrupted: bool
    ) -> Summary:
        """Stop the mappings, compact and snapshot what is in raw/, verify the lake (each table's last
        snapshot against ``table_at_stop``, its Scan taken when the writes stopped) and summarize."""
        self.stop.set()
        self.refresh()
        self.report("compacting")
        self.compact(datetime.now(UTC))
        self.snapshot(datetime.now(UTC))
        self.check_fan_out()
        state = self.refresh()
        self.report("verifying")
        verification = verify(self.ledger.ids(), state)
        snapshots = (
            [
                SnapshotChecker(self.stack.endpoint, self.stack.bucket, table).verify(table_at_stop[table])
                for table in self.tables
            ]
            if "SnapshotFunction" in self.functions
            else []
        )
        counts = self.generator.counts
        if len(self.ledger) != counts.total:
            self.problems.append(f"{counts.total} writes but {len(self.ledger)} changes on the stream")
        if self.depths["ChangeDLQ"] or self.depths["StreamFailureQueue"]:
            self.problems.append("messages remain in ChangeDLQ or StreamFailureQueue (not redriven)")
        if interrupted:
            self.problems.append("interrupted with Ctrl-C (stopped writing, drained and verified)")
        query = sample = None
        lake_dir = self.options.lake_dir
        if lake_dir is not None:
            self.watcher.download(lake_dir)
            if self.options.duckdb_sample:
                query, sample = duckdb_preview(lake_dir)
        return self._summary(
            state,
            verification=verification,
            snapshots=snapshots,
            writing_seconds=writing_seconds,
            query=query,
            sample=sample,
        )

    def shutdown(self) -> None:
        """Stop everything this run started (idempotent)."""
        self.stop.set()
        self.generator.stop()
        for mapping in self.mappings:
            if mapping.is_alive():
                mapping.join(timeout=5)

    def _summary(
        self,
        state: LakeState,
        *,
        verification: Verification,
        snapshots: list[SnapshotVerification],
        writing_seconds: float,
        query: str | None,
        sample: str | None,
    ) -> Summary:
        counts = self.generator.counts
        stored_span = (state.last_raw_at or self.started_wall) - self.started_wall  # start -> last in raw/
        ok = (
            verification.ok
            and all(snapshot.ok for snapshot in snapshots)
            and not any(p for p in self.problems if not p.startswith("interrupted"))
        )
        return Summary(
            ok=ok,
            duration_seconds=writing_seconds,
            written=counts.total,
            write_errors=counts.errors,
            stream_records=len(self.ledger),
            raw_records=state.raw_records,
            raw_unique=len(state.raw_ids),
            raw_files=state.raw_files,
            compacted_records=sum(state.compacted_counts.values()),
            compacted_files=state.compacted_files,
            quarantined=len(state.quarantined),
            quarantined_ids=sorted(state.quarantined_ids),
            dead_lettered=sum(1 for result in self.redriven if result.get("moved")),
            stream_failures=sum(m.stats.sent_to_on_failure for m in self.mappings),
            redriven=self.redriven,
            compactions=self.compactions,
            function_errors={name: f.errors for name, f in self._all_functions().items() if f.errors},
            last_errors={name: f.last_error for name, f in self._all_functions().items() if f.last_error},
            write_throughput=counts.total / max(self.generator.elapsed, 1e-9),
            stored_throughput=len(state.raw_ids) / stored_span if stored_span > 0 else 0.0,
            lag_p50=percentile(state.lags, 0.5),
            lag_p99=percentile(state.lags, 0.99),
            verification=verification,
            lake_dir=self.options.lake_dir,
            files_per_partition=dict(state.files_per_partition),
            duckdb_query=query,
            duckdb_sample=sample,
            problems=self.problems,
            snapshots=snapshots,
            snapshot_invocations=self.snapshots,
            bootstraps=self.bootstraps,
            fan_out_executions=self.fan_out.statuses() if self.fan_out is not None else {},
            fan_out_pieces=self.fan_out.pieces if self.fan_out is not None else 0,
        )

    # ------------------------------------------------------------------ pieces
    def queue_depth(self, logical_id: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.queue_url(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def refresh(self, *, full: bool = True) -> LakeState:
        for logical_id in self.depths:
            self.depths[logical_id] = self.queue_depth(logical_id)
        return self.watcher.scan(full=full)

    def check_mappings(self) -> None:
        for mapping in self.mappings:
            if mapping.crashed is not None:
                raise LocalRunError(
                    f"the event source mapping {mapping.spec.logical_id} stopped: "
                    f"{type(mapping.crashed).__name__}: {mapping.crashed}"
                )

    def compact(self, now: datetime) -> None:
        """The nightly schedule's event, then each (table, day) in raw/ by hand: the data is today's.
        With ``--pieces``, each hour in raw/ goes to the fan-out state machine instead, as the nightly
        run hands off an hour (no nightly run covers today's yet)."""
        by_hand = [{"table": table, "dt": dt} for table, dt in sorted(set(self._raw_days()))]
        if self.options.pieces:
            by_hand = [{"table": t, "dt": dt, "hour": hour} for t, dt, hour in sorted(set(self._raw_hours()))]
        self.compactions += self._nightly("CompactionFunction", "compaction", now, by_hand)

    def snapshot(self, now: datetime) -> None:
        """The nightly schedule's event, then each table's last day in raw/ by hand: the data is today's,
        and the manual event builds every day before it too (with ``--pieces``: the fan-out does,
        as for a day the nightly run hands off)."""
        last_days: dict[str, str] = {}
        for table, dt in self._raw_days():
            last_days[table] = max(last_days.get(table, ""), dt)
        by_hand = [{"table": table, "dt": dt} for table, dt in sorted(last_days.items())]
        self.snapshots += self._nightly("SnapshotFunction", "snapshot", now, by_hand)

    def _raw_days(self) -> list[tuple[str, str]]:
        """(table, YYYY-MM-DD) of each hour partition seen in raw/."""
        return [(table, dt) for table, dt, _hour in self._raw_hours()]

    def _raw_hours(self) -> list[tuple[str, str, str]]:
        """(table, YYYY-MM-DD, HH) of each hour partition seen in raw/."""
        hours = []
        for partition in self.watcher.state.files_per_partition:
            table, dt, hour = partition.split("/")[:3]
            hours.append((table, dt.removeprefix("dt="), hour.removeprefix("hour=")))
        return hours

    def _nightly(self, logical_id: str, kind: str, now: datetime, by_hand: list[dict[str, Any]]) -> int:
        """Invoke ``logical_id`` with its nightly schedule's event when the template schedules it, then
        with each event of ``by_hand`` (with ``--pieces``: start the fan-out with it); the number of
        invocations and executions (0 without the function)."""
        function = self.functions.get(logical_id)
        if function is None:
            return 0
        scheduled = any(s.function == logical_id and s.enabled for s in self.stack.schedules())
        events = [scheduled_event(f"{self.stack.name}-{kind}-nightly", now)] if scheduled else []
        by_hand = [event for event in by_hand if event not in events]
        fanned_out = self.fan_out if self.options.pieces else None
        for event in events if fanned_out is not None else events + by_hand:
            with contextlib.suppress(Exception):  # counted on the function; the summary shows its error
                function.invoke(event)
            self.wait_for_fan_out()  # what it handed off is built before the next event looks at it
        if fanned_out is not None:
            for event in by_hand:
                fanned_out.machines.start(FAN_OUT_STATE_MACHINE, event)
            self.wait_for_fan_out()
        return len(events) + len(by_hand)

    def wait_for_fan_out(self) -> None:
        """Wait for the fan-out's executions started meanwhile; one that failed is a problem."""
        if self.fan_out is None:
            return
        for execution in self.fan_out.wait():
            if execution.status != "SUCCEEDED":
                self.problems.append(
                    f"fan-out execution {execution.arn.rsplit(':', 1)[-1]} {execution.status}: "
                    f"{execution.failure}"
                )

    def check_fan_out(self) -> None:
        """With ``--pieces``, the nightly runs must have handed off, and the executions built pieces."""
        if self.options.pieces and (self.fan_out is None or not self.fan_out.pieces):
            self.problems.append(
                f"--pieces {self.options.pieces}: no fan-out execution built a piece "
                "(the nightly runs handed nothing to the state machine)"
            )

    def bootstrap(self, now: datetime) -> None:
        """Bootstrap each table's snapshots: the user's tables with ``changelake bootstrap --table``,
        ChangeTable from an export written from a Scan started at ``now``."""
        function = self.functions.get("SnapshotFunction")
        if function is None:
            return
        self.bootstrapped = True
        if self.user_tables:
            self.user_bootstraps = threading.Thread(
                target=self.bootstrap_user_tables, name="user-bootstraps", daemon=True
            )
            self.user_bootstraps.start()
            return
        table = self.stack.table
        items = scan(self.stack.endpoint, table)
        url = write_export(self.stack.endpoint, self.stack.bucket, table, items, now)
        try:
            result = function.invoke({"table": table, "bootstrap": url})
        except Exception as exc:  # noqa: BLE001 - shown in the summary; the snapshot check then says more
            result = {"error": f"{type(exc).__name__}: {exc}"}
        self.bootstraps[table] = result if isinstance(result, dict) else {"result": result}

    def bootstrap_user_tables(self) -> None:
        """``changelake bootstrap --table NAME`` for each of the user's tables, one after the other."""
        for user_table in self.user_tables:
            try:
                ran = bootstrap_with_cli(self.stack.endpoint, self.stack.name, user_table.name)
            except subprocess.TimeoutExpired as exc:  # the run goes on; the summary names it
                self.bootstraps[user_table.name] = {"method": user_table.method, "error": str(exc)}
                self.problems.append(f"changelake bootstrap --table {user_table.name}: {exc}")
                continue
            self.bootstraps[user_table.name] = ran.snapshot_result
            if ran.exit_code != 0:
                self.problems.append(
                    f"changelake bootstrap --table {user_table.name} exited {ran.exit_code}: "
                    f"{ran.messages.strip()[-300:]}"
                )

    def redrive(self) -> None:
        function = self.functions.get("DlqRedriveFunction")
        if function is None:
            return
        try:
            result = function.invoke({"max_messages": 1000, "dry_run": False})
        except Exception as exc:  # noqa: BLE001 - shown in the summary; verification then fails
            result = {"error": f"{type(exc).__name__}: {exc}"}
        self.redriven.append(result if isinstance(result, dict) else {"result": result})

    def progress(self, phase: str) -> Progress:
        state = self.watcher.state
        elapsed = time.monotonic() - self.started
        ages = [
            age
            for mapping in self.mappings
            if isinstance(mapping, StreamMapping) and (age := mapping.iterator_age.take()) is not None
        ]
        return Progress(
            phase=phase,
            elapsed=elapsed,
            written=self.generator.counts.total,
            write_rate=self.generator.counts.total / max(self.generator.elapsed, 1e-9),
            stream_records=len(self.ledger),
            in_flight=self.depths["ChangeQueue"],
            raw_unique=len(state.raw_ids),
            compacted=sum(state.compacted_counts.values()),
            quarantined=len(state.quarantined),
            dead_lettered=self.depths["ChangeDLQ"],
            stream_failures=self.depths["StreamFailureQueue"],
            lag_p50=percentile(state.lags, 0.5),
            lag_p99=percentile(state.lags, 0.99),
            files_per_partition=dict(state.files_per_partition),
            function_errors={name: f.errors for name, f in self._all_functions().items() if f.errors},
            iterator_age=max(ages, default=None),
        )

    def drained(self) -> bool:
        stream = [m for m in self.mappings if isinstance(m, StreamMapping)]
        queues = [m for m in self.mappings if isinstance(m, SqsMapping)]
        return (
            all(m.idle for m in stream)
            and sum(m.records_read for m in stream) >= self.generator.counts.total  # over the tables
            and all(m.idle for m in queues)
            and self.depths["ChangeQueue"] == 0
            and self.depths["ChangeDLQ"] == 0
            and self.depths["StreamFailureQueue"] == 0
        )

    def report(self, phase: str) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress(phase))


def run_pipeline(
    options: RunOptions | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    stop_requested: threading.Event | None = None,
    on_deployed: Callable[[DeployedStack], None] | None = None,
) -> Summary:
    """Start moto, deploy the template, run the pipeline as ``options`` say (stream, drain,
    compact, verify); always stops what it started. ``on_deployed`` gets the stack as soon as it
    is deployed, its endpoint on the port the server listens on (with port 0, the one it chose)."""
    options = options or RunOptions()
    lake_dir = options.lake_dir
    with contextlib.ExitStack() as cleanup:
        log_stream: TextIO | None = None
        if lake_dir is not None:
            (lake_dir / "logs").mkdir(parents=True, exist_ok=True)
            log_stream = cleanup.enter_context(
                open(lake_dir / "logs" / "functions.log", "w", encoding="utf-8")
            )
        endpoint = cleanup.enter_context(
            MotoEndpoint(port=options.port, log_path=(lake_dir / "logs" / "moto.log") if lake_dir else None)
        )
        environment = aws_environment(endpoint.url)
        parameters = {**options.parameters, **(fan_out_parameters(options.pieces) if options.pieces else {})}
        user_tables = create_user_tables(endpoint.url, options.tables) if options.tables > 0 else []
        if user_tables:
            parameters["SourceStreamArns"] = ",".join(table.stream_arn for table in user_tables)
        with applied_environment(environment):
            stack = deploy(endpoint.url, template=options.template, parameters=parameters)
        if on_deployed is not None:
            on_deployed(stack)
        # The handlers' boto3 clients (built lazily, in the mappings' threads) read it all run long.
        cleanup.enter_context(applied_environment({**environment, **LOCAL_FUNCTION_ENVIRONMENT}))
        pipeline = LocalPipeline(
            stack, options, log_stream=log_stream, on_progress=on_progress, user_tables=user_tables
        )
        cleanup.callback(pipeline.shutdown)
        pipeline.serve_state_machines(endpoint.lambdas)
        return pipeline.run(stop_requested or threading.Event())


def duckdb_preview(lake_dir: Path) -> tuple[str, str]:
    """The query over the local lake's views (``analytics.duck``) and its answer, every digit exact."""
    import duckdb

    from analytics.duck import PREVIEW_QUERY, preview

    try:
        sample = preview(lake_dir)
    except duckdb.Error as exc:
        sample = f"(DuckDB could not run it: {exc})"
    try:
        shown = lake_dir.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = lake_dir.resolve()
    views = f"-- views: analytics.duck.connect('{shown}'); as SQL: python -m analytics duckdb {shown}\n"
    return views + PREVIEW_QUERY, sample


__all__ = [
    "DEFAULT_PORT",
    "LOCAL_PARAMETERS",
    "Hooks",
    "Progress",
    "RunOptions",
    "Summary",
    "print_summary",
    "run_pipeline",
    "to_json",
]
