"""CompactionFunction's service: a Lambda event becomes a compaction run (scheduled, manual or hand-off)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Protocol

from changelake.budget import Deadline
from changelake.clock import Clock, utc_now
from changelake.compaction.compactor import CompactionSummary, Compactor
from changelake.compaction.events import (
    HANDOFF_BATCH,
    HandoffEvent,
    ManualEvent,
    is_scheduled_event,
)
from changelake.exceptions import InvalidEventError
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
    """Turns a Lambda event into a compaction run: scheduled, manual or hand-off. The handler
    injects the late markers (``markers``; None: none are read or written) and the hand-off
    (``invoker``; default: asynchronous invocations of this function)."""

    def __init__(
        self,
        compactor: Compactor,
        *,
        markers: LateMarkerSource | None = None,
        lookback_days: int = 2,
        reserve_seconds: float = 240.0,
        invoker: Callable[[str, list[Partition]], int] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.compactor = compactor
        self.markers: LateMarkerSource = markers or _NoMarkers()
        self.lookback_days = lookback_days
        self.reserve_seconds = reserve_seconds
        self.invoker = invoker or self_invoker(LambdaInvoker())
        self.clock = clock

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
        )
        if trigger == "scheduled":
            summary.late = sorted(partition.path for partition in late)
        return summary
