"""SnapshotFunction's run: an event in, the days brought up to date, a summary out.

* Scheduled (nightly): for every table, the snapshot of the previous UTC day. The days from
  ``LOOKBACK_DAYS`` before it, and every day named by a late marker (``late/snapshot/<table>/...``,
  written by the aggregator when it stores a change of a day that may already be built, however
  old), are checked against their inputs, with every later day; missing days are built wherever
  they are. A table's markers, listed before anything is read, are deleted only once its whole
  chain up to yesterday is published, so a failure keeps them for the next run.
* Manual ``{"table", "dt"}``: every day of the table from its first one to ``dt`` is checked and
  built if missing or stale, then ``dt`` (a day in the future is refused; today's snapshot holds
  the changes so far, and is rebuilt once more arrive).
* Bootstrap ``{"table", "bootstrap"}``: see ``changelake.snapshot.bootstrap``.

Time: before each build the run checks Lambda's deadline; with less than ``reserve_seconds`` left
(and at least one day built by this invocation, so every invocation makes progress) it stops and
invokes itself asynchronously with the manual event of each table it did not finish.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, ClassVar, Literal, Protocol

from changelake.budget import Deadline
from changelake.clock import Clock, utc_now
from changelake.exceptions import DeliveryError, InvalidEventError, RunError, SnapshotError
from changelake.fan_out import FanOut, execution_name
from changelake.integrations.lambda_invoke import LambdaInvoker
from changelake.late import Marker
from changelake.snapshot.bootstrap import Bootstrapper, BootstrapResult
from changelake.snapshot.buckets import bucket_count
from changelake.snapshot.builder import BucketResult, ChainResult, DayResult, SnapshotBuilder, Split
from changelake.snapshot.derived import FORMATS
from changelake.snapshot.events import (
    BootstrapEvent,
    BucketCommitEvent,
    BucketEvent,
    ManualEvent,
    PlanEvent,
    TableDayEvent,
    parse_event,
)
from changelake.summary import RunSummary

#: The consumer name of the snapshot layer's late markers (``late/snapshot/...``).
MARKER_CONSUMER: Literal["snapshot"] = "snapshot"


class ExecutionStarter(Protocol):
    """The fan-out state machine (``changelake.integrations.step_functions.StateMachine``)."""

    def start(self, name: str, payload: dict[str, Any]) -> bool: ...


class LateMarkerSource(Protocol):
    """The late markers of the snapshot layer (``changelake.late.LateMarkers``)."""

    def pending(self, consumer: Literal["snapshot"]) -> Sequence[Marker]: ...

    def clear(self, markers: Iterable[Marker]) -> None: ...


@dataclass(slots=True)
class SnapshotSummary(RunSummary):
    """A snapshot run's summary: the days built, checked, failed and handed on."""

    ERROR: ClassVar[type[RunError]] = SnapshotError
    UNDONE: ClassVar[str] = "table(s) not brought up to date"

    tables: int = 0
    days_built: int = 0
    days_completed: int = 0  # committed by an earlier run that died before finishing; rolled forward
    days_unchanged: int = 0
    days_retired: int = 0  # days before a later bootstrap's day taken away (with their Parquet days)
    #: Derived days built, by format (``changelake.snapshot.derived.FORMATS``): ``<name>_days_built``.
    derived_days_built: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FORMATS, 0))
    items: int = 0  # in the snapshots of the target days (yesterday, or the manual event's day)
    changes_read: int = 0
    changes_applied: int = 0
    removed: int = 0
    built: list[str] = field(default_factory=list)
    markers_cleared: int = 0
    bootstrap: dict[str, Any] | None = None
    #: A bucket's, a commit's or a plan's own fields (docs/operations.md), at the summary's top level.
    fan_out: dict[str, Any] = field(default_factory=dict)

    def add(self, chain: ChainResult) -> None:
        self.tables += 1
        self.days_retired += chain.retired
        for day in chain.days:
            if day.status == "built" and day.manifest is not None:
                self.days_built += 1
                self.built.append(day.name)
                counts = day.manifest.counts
                self.changes_read += counts.changes_read
                self.changes_applied += counts.changes_applied
                self.removed += counts.removed
                self.bytes_in += counts.bytes_in
                self.bytes_out += counts.bytes_out
            elif day.status == "completed":
                self.days_completed += 1
            elif day.status == "unchanged":
                self.days_unchanged += 1
            for name, copy in day.derived.items():
                if copy.status == "built":
                    self.derived_days_built[name] = self.derived_days_built.get(name, 0) + 1
        if chain.target_manifest is not None:
            self.items += chain.target_manifest.counts.items
        if chain.failed is not None:
            self.failed.append(
                {"table": chain.table, "dt": chain.target.isoformat(), "error": chain.failed[:500]}
            )
        for failed_day, error in chain.derived_failed:
            self.failed.append({"table": chain.table, "dt": failed_day.isoformat(), "error": error[:500]})

    def add_bootstrap(self, result: BootstrapResult) -> None:
        self.tables = 1
        self.items = result.items_read
        self.days_retired = result.days_retired
        self.bootstrap = asdict(result) | {"gap": result.gap.model_dump()}

    def add_bucket(self, result: BucketResult) -> None:
        self.tables = 1
        manifest = result.manifest
        if manifest is not None:
            self.items = manifest.counts.items
            self.changes_read = manifest.counts.changes_read
            self.changes_applied = manifest.counts.changes_applied
            self.removed = manifest.counts.removed
            self.bytes_in = manifest.counts.bytes_in
            self.bytes_out = manifest.counts.bytes_out
        self.fan_out = {
            "buckets": result.bucket.count,
            "bucket": result.bucket.index,
            "status": result.status,
            "parts_written": result.parts_written,
        }

    def as_dict(self) -> dict[str, Any]:
        document = RunSummary.as_dict(self)
        document |= document.pop("fan_out")
        for name, count in document.pop("derived_days_built").items():
            document[f"{name}_days_built"] = count
        if self.bootstrap is None:
            del document["bootstrap"]
        else:  # docs/contracts.md, "Invoking the functions by hand": items read, export time
            document |= {
                "items_read": self.bootstrap["items_read"],
                "export_time": self.bootstrap["export_time"],
                "gap": self.bootstrap["gap"],
            }
        return document

    def metrics(self) -> dict[str, int | float]:
        return {
            "DaysBuilt": self.days_built,
            "DaysUnchanged": self.days_unchanged,
            **{FORMATS[name]: count for name, count in self.derived_days_built.items()},
            "DaysFailed": len(self.failed),
            "DaysHandedOff": len(self.handed_off),
            "DaysRetired": self.days_retired,
            "Items": self.items,
            "ChangesApplied": self.changes_applied,
            "BytesIn": self.bytes_in,
            "BytesOut": self.bytes_out,
            "BootstrapGaps": int(bool(self.bootstrap and self.bootstrap["gap"]["missing_possible"])),
            "Seconds": round(self.seconds, 3),
        }


def self_invoker(invoker: LambdaInvoker) -> Callable[[str, list[ManualEvent]], int]:
    """Hands days still to build to new asynchronous invocations of this function, one per table."""

    def hand_off(function_name: str, events: list[ManualEvent]) -> int:
        for event in events:
            invoker.invoke_event(function_name, json.dumps(event.model_dump()).encode())
        return len(events)

    return hand_off


class SnapshotService:
    """Turns a Lambda event into a snapshot run (see the module)."""

    def __init__(
        self,
        builder: SnapshotBuilder,
        *,
        bootstrapper: Bootstrapper | None = None,
        markers: LateMarkerSource | None = None,
        lookback_days: int = 2,
        reserve_seconds: float = 240.0,
        invoker: Callable[[str, list[ManualEvent]], int] | None = None,
        fan_out: FanOut | None = None,
        state_machine: ExecutionStarter | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """``fan_out``: which days are built in buckets (None: every day here); ``state_machine``:
        where the nightly run hands such a day (None: nowhere, it builds every day itself)."""
        self.builder = builder
        self.bootstrapper = bootstrapper or Bootstrapper(builder)
        self.markers = markers
        self.lookback_days = lookback_days
        self.reserve_seconds = reserve_seconds
        self.invoker = invoker or self_invoker(LambdaInvoker())
        self.fan_out = fan_out
        self.state_machine = state_machine
        self.clock = clock

    def handle(self, event: object, context: Any) -> SnapshotSummary:
        """Run ``event``; a malformed one raises ``InvalidEventError`` before anything is written."""
        started = time.monotonic()
        parsed = parse_event(event)
        deadline = Deadline.of_context(context, margin_ms=int(self.reserve_seconds * 1000))

        def hand_off(events: list[ManualEvent]) -> int:
            return self.invoker(context.function_name, events)

        if isinstance(parsed, BootstrapEvent):
            summary = SnapshotSummary("bootstrap")
            summary.add_bootstrap(self.bootstrapper.run(parsed))
        elif isinstance(parsed, ManualEvent):
            summary = self.manual(parsed, deadline.may_build, hand_off)
        elif isinstance(parsed, BucketEvent):
            summary = self.bucket(parsed)
        elif isinstance(parsed, BucketCommitEvent):
            summary = self.commit(parsed)
        elif isinstance(parsed, PlanEvent):
            summary = self.plan(parsed, deadline.may_build)
        else:
            summary = self.scheduled(deadline.may_build, hand_off)
        summary.seconds = time.monotonic() - started
        return summary

    def bucket(self, event: BucketEvent) -> SnapshotSummary:
        """One bucket of a day built in buckets: its parts written and recorded, nothing published."""
        self._check_not_future(event)
        summary = SnapshotSummary("bucket")
        summary.add_bucket(self.builder.build_bucket(event.table, event.day, event.piece))
        return summary

    def commit(self, event: BucketCommitEvent) -> SnapshotSummary:
        """A day published from its buckets (``CommitRefusedError`` if one is missing or stale)."""
        self._check_not_future(event)
        summary = SnapshotSummary("commit")
        chain = self.builder.commit_buckets(event.table, event.day, event.buckets)
        summary.add(chain)
        summary.fan_out = {"buckets": event.buckets, "status": chain.days[0].status}
        return summary

    def plan(self, event: PlanEvent, may_build: Callable[[], bool]) -> SnapshotSummary:
        """The fan-out state machine's step: the days up to ``dt`` brought up to date here while
        their input is below the fan-out threshold; the first above it is handed back as bucket
        events and their commit (``done`` false); out of time, no pieces (``done`` false: plan
        again); ``done`` true once every day up to ``dt`` is current."""
        self._check_day_event(event)
        chain = self.builder.bring_up_to_date(
            event.table, event.day, may_build=may_build, split=self._split()
        )
        summary = SnapshotSummary("plan")
        summary.add(chain)
        plan: dict[str, Any] = {"done": chain.complete, "table": event.table, "dt": event.dt, "pieces": []}
        if chain.split is not None and chain.split.buckets is not None:
            count = chain.split.buckets
            day = {"table": event.table, "dt": chain.split.day.isoformat()}
            plan |= day | {
                "pieces": [day | {"buckets": count, "bucket": index} for index in range(count)],
                "commit": day | {"buckets": count, "commit": True},
            }
        summary.fan_out = plan
        return summary

    def _check_not_future(self, event: TableDayEvent) -> None:
        if event.day > self.clock().date():
            raise InvalidEventError("dt", f"{event.dt} is in the future (UTC)")

    def _check_day_event(self, event: TableDayEvent) -> None:
        """A day of a table that has one: not in the future, not before the table's first day."""
        self._check_not_future(event)
        origin = self.builder.origin(event.table)
        if origin is None:
            raise InvalidEventError("table", f"{event.table} has no changes in raw/ and no bootstrap")
        if event.day < origin.day:
            raise InvalidEventError("dt", f"{event.dt} is before {event.table}'s first day {origin.day}")

    def manual(
        self,
        event: ManualEvent,
        may_build: Callable[[], bool],
        hand_off: Callable[[list[ManualEvent]], int],
    ) -> SnapshotSummary:
        """The day of ``event`` and every day before it, each checked against its inputs."""
        self._check_day_event(event)
        summary = SnapshotSummary("manual")
        chain = self.builder.bring_up_to_date(event.table, event.day, may_build=may_build)
        summary.add(chain)
        if chain.stopped:
            self._hand_off(summary, [event], hand_off)
        return summary

    def scheduled(
        self, may_build: Callable[[], bool], hand_off: Callable[[list[ManualEvent]], int]
    ) -> SnapshotSummary:
        """Every table up to yesterday: the look-back window and marked days checked, the rest trusted."""
        summary = SnapshotSummary("scheduled")
        yesterday = self.clock().date() - timedelta(days=1)
        marked: dict[str, list[Marker]] = defaultdict(list)
        for marker in self.markers.pending(MARKER_CONSUMER) if self.markers is not None else []:
            marked[marker.table].append(marker)  # listed before any input is read
        tables = sorted(set(self.builder.tables()) | set(marked))
        for index, table in enumerate(tables):
            window = [yesterday - timedelta(days=self.lookback_days)]
            check_from = min(window + [marker.dt for marker in marked[table]])
            chain = self.builder.bring_up_to_date(
                table, yesterday, check_from=check_from, may_build=may_build, split=self._nightly_split()
            )
            summary.add(chain)
            if chain.split is not None:
                self._start_fan_out(summary, chain.split, yesterday)
            if chain.complete and marked[table] and self.markers is not None:
                try:
                    self.markers.clear(marked[table])
                    summary.markers_cleared += len(marked[table])
                except DeliveryError as exc:  # kept: the next run checks those days again
                    summary.failed.append({"table": table, "dt": "late markers", "error": str(exc)[:500]})
            if chain.stopped and chain.split is None:  # out of time: the next invocation goes on
                rest = [ManualEvent(table=name, dt=yesterday.isoformat()) for name in tables[index:]]
                self._hand_off(summary, rest, hand_off)
                break
        return summary

    def _nightly_split(self) -> Split | None:
        """Which days the nightly run hands to the state machine: those ``fan_out`` builds in buckets,
        when there is a state machine to hand them to."""
        if self.fan_out is None or self.fan_out.state_machine_arn is None or self.state_machine is None:
            return None
        return self._split()

    def _split(self) -> Split | None:
        """How many buckets a day of so many input bytes is built in (None: here)."""
        fan_out = self.fan_out
        if fan_out is None:
            return None

        def buckets(input_bytes: int) -> int | None:
            pieces = fan_out.pieces_for(input_bytes)
            return None if pieces is None else bucket_count(pieces)

        return buckets

    def _start_fan_out(self, summary: SnapshotSummary, split: DayResult, target: date) -> None:
        """Hand the table's chain from ``split``'s day up to ``target`` to the state machine: one
        execution per table and night (a retried run starts nothing twice)."""
        assert self.state_machine is not None  # _nightly_split splits only with one
        name = execution_name("snapshot", split.table, f"dt={split.day.isoformat()}", self.clock())
        try:
            self.state_machine.start(name, {"table": split.table, "dt": target.isoformat()})
        except DeliveryError as exc:  # its markers stay: the next run hands it off again
            summary.failed.append(
                {"table": split.table, "dt": split.day.isoformat(), "error": str(exc)[:500]}
            )
            return
        summary.handed_off.append(split.name)

    @staticmethod
    def _hand_off(
        summary: SnapshotSummary, events: list[ManualEvent], hand_off: Callable[[list[ManualEvent]], int]
    ) -> None:
        hand_off(events)
        summary.handed_off = [f"{event.table}/dt={event.dt}" for event in events]
