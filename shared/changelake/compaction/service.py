"""CompactionFunction's service: a Lambda event becomes a compaction run (scheduled, manual or hand-off),
or a step of the fan-out state machine (an hour's plan, one slice of it, the commit of its slices)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from changelake.budget import Deadline
from changelake.clock import Clock, utc_now
from changelake.compaction.compactor import CompactionSummary, Compactor, PartitionResult
from changelake.compaction.events import (
    HANDOFF_BATCH,
    HandoffEvent,
    ManualEvent,
    PlanEvent,
    SliceCommitEvent,
    SliceEvent,
    is_scheduled_event,
    parse_fan_out_event,
)
from changelake.compaction.sliced_hours import SlicedHours
from changelake.exceptions import InvalidEventError
from changelake.fan_out import FanOut, execution_name
from changelake.formats.lambda_events import validated_event
from changelake.formats.layout import Partition
from changelake.integrations.lambda_invoke import LambdaInvoker
from changelake.late import Marker

#: The consumer name of compaction's late markers (``late/compaction/...``).
MARKER_CONSUMER: Literal["compaction"] = "compaction"


class LateMarkerSource(Protocol):
    """The late markers of compaction (``changelake.late.LateMarkers``)."""

    def pending(self, consumer: Literal["compaction"]) -> Sequence[Marker]: ...

    def clear(self, markers: Iterable[Marker]) -> None: ...

    def keep_for_retry(self, consumer: Literal["compaction"], partition: Partition) -> None: ...


class _NoMarkers:
    """No late markers: a run plans its window only and leaves no retry marker."""

    def pending(self, consumer: Literal["compaction"]) -> Sequence[Marker]:
        return ()

    def clear(self, markers: Iterable[Marker]) -> None:
        pass

    def keep_for_retry(self, consumer: Literal["compaction"], partition: Partition) -> None:
        pass


class StateMachineStarter(Protocol):
    """The fan-out state machine (``changelake.integrations.step_functions.StateMachine``)."""

    def start(self, name: str, payload: dict[str, Any]) -> bool: ...


@dataclass(frozen=True, slots=True)
class StateMachineFanOut:
    """Hands the hours at or above the fan-out threshold to the state machine, one execution per
    hour, named for the run (``execution_name``: a retried run starts nothing twice)."""

    rule: FanOut
    machine: StateMachineStarter
    now: datetime

    def takes(self, raw_bytes: int) -> bool:
        return self.rule.hands_off(raw_bytes)

    def start(self, partition: Partition) -> None:
        folder = f"dt={partition.dt.isoformat()}/hour={partition.hour:02d}"
        payload = {"table": partition.table, "dt": partition.dt.isoformat(), "hour": f"{partition.hour:02d}"}
        self.machine.start(execution_name("compaction", partition.table, folder, self.now), payload)


def self_invoker(invoker: LambdaInvoker) -> Callable[[str, list[Partition]], int]:
    """Hands partitions still to compact to new asynchronous invocations of this function,
    ``HANDOFF_BATCH`` per invocation; returns how many invocations."""

    def hand_off(function_name: str, partitions: list[Partition]) -> int:
        invocations = 0
        for start in range(0, len(partitions), HANDOFF_BATCH):
            event = HandoffEvent.of(partitions[start : start + HANDOFF_BATCH])
            invoker.invoke_event(function_name, json.dumps(event.model_dump()).encode())
            invocations += 1
        return invocations

    return hand_off


class CompactionService:
    """Turns a Lambda event into a compaction run: scheduled, manual or hand-off, or a step of the
    fan-out. The handler injects the late markers (``markers``; None: none are read or written),
    the hand-off (``invoker``; default: asynchronous invocations of this function), when an hour
    is built in slices (``fan_out``; None: never) and the state machine the nightly run hands
    those hours to (``state_machine``; None: none, every hour is built in one invocation)."""

    def __init__(
        self,
        compactor: Compactor,
        *,
        markers: LateMarkerSource | None = None,
        lookback_days: int = 2,
        reserve_seconds: float = 240.0,
        invoker: Callable[[str, list[Partition]], int] | None = None,
        clock: Clock = utc_now,
        fan_out: FanOut | None = None,
        state_machine: StateMachineStarter | None = None,
    ) -> None:
        self.compactor = compactor
        self.markers: LateMarkerSource = markers or _NoMarkers()
        self.lookback_days = lookback_days
        self.reserve_seconds = reserve_seconds
        self.invoker = invoker or self_invoker(LambdaInvoker())
        self.clock = clock
        self.fan_out = fan_out
        self.state_machine = state_machine
        self.sliced = SlicedHours(compactor)

    def plan(self, event: object) -> tuple[str, list[Partition]]:
        """The trigger and the partitions of ``event``; ``InvalidEventError`` names a bad field."""
        if is_scheduled_event(event):
            return "scheduled", self.compactor.plan_scheduled(self.clock().date(), self.lookback_days)
        if not isinstance(event, dict):
            raise InvalidEventError("event", "must be a JSON object")
        if "handoff" in event:
            return "handoff", validated_event(HandoffEvent, event).partition_list()
        return "manual", self.compactor.plan_manual(validated_event(ManualEvent, event))

    def handle(self, event: object, context: Any) -> CompactionSummary:
        """Run ``event``'s plan. A scheduled run adds every hour named by a late-data marker;
        every run clears the markers of the partitions it compacted (``changelake.late``)."""
        step = parse_fan_out_event(event) if isinstance(event, dict) else None
        if step is not None:
            return self.fan_out_step(step)
        trigger, partitions = self.plan(event)
        # Listed before any partition's inputs are read: a marker cleared after its partition was
        # compacted names a raw file that compaction saw (it is written before its marker).
        late: dict[Partition, list[Marker]] = defaultdict(list)
        for marker in self.markers.pending(MARKER_CONSUMER):
            late[marker.partition].append(marker)
        if trigger == "scheduled":
            partitions = sorted({*partitions, *late})
        summary = self.compactor.run(
            partitions,
            trigger=trigger,
            deadline=Deadline.of_context(context, margin_ms=int(self.reserve_seconds * 1000)),
            hand_off=lambda rest: self.invoker(context.function_name, rest),
            settled=lambda partition: self.markers.clear(late.get(partition, ())),
            # A failed hour with no marker gets one, so later runs retry it past the look-back window.
            unsettled=lambda partition: (
                None if partition in late else self.markers.keep_for_retry(MARKER_CONSUMER, partition)
            ),
            fan_out=self._state_machine_fan_out() if trigger in ("scheduled", "handoff") else None,
        )
        if trigger == "scheduled":
            summary.late = sorted(partition.path for partition in late)
        return summary

    def _state_machine_fan_out(self) -> StateMachineFanOut | None:
        if self.fan_out is None or self.state_machine is None:
            return None
        return StateMachineFanOut(self.fan_out, self.state_machine, self.clock())

    def fan_out_step(self, step: PlanEvent | SliceEvent | SliceCommitEvent) -> CompactionSummary:
        """One step of the fan-out state machine for one hour (docs/operations.md)."""
        started = time.monotonic()
        partition = step.partition
        if isinstance(step, SliceEvent):
            summary = CompactionSummary("slice")
            result = self.sliced.build(partition, step.piece)
            if result.status == "built":
                summary.slices_built.append(f"{partition.path} slice {step.slice} of {step.slices}")
                summary.parts_written = len(result.parts)
        elif isinstance(step, SliceCommitEvent):
            summary = CompactionSummary("commit")
            result = self.sliced.commit(partition, step.slices)
        else:
            summary = CompactionSummary("plan")
            result = self.plan_hour(step, summary)
        if result.status != "deferred":
            summary.add(result)
        summary.seconds = time.monotonic() - started
        return summary

    def plan_hour(self, step: PlanEvent, summary: CompactionSummary) -> PartitionResult:
        """The hour compacted here if it is current or below the fan-out threshold (``done``), or
        else the slice events and the commit event that build it (``done`` False)."""
        rule = self.fan_out
        result = self.compactor.compact(
            step.partition, builds=lambda raw_bytes: rule is None or rule.pieces_for(raw_bytes) is None
        )
        count = None if rule is None else rule.pieces_for(result.counts.bytes_in)
        if result.status != "deferred" or count is None:
            summary.done = True
            return result
        hour = step.hour_fields()
        summary.done = False
        summary.pieces = [hour | {"slices": count, "slice": index} for index in range(count)]
        summary.commit = hour | {"slices": count, "commit": True}
        return result
