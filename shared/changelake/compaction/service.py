"""CompactionFunction's service: a Lambda event becomes a compaction run (scheduled, manual or hand-off)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

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
from changelake.late import LateMarkers, Marker


class CompactionService:
    """Turns a Lambda event into a compaction run: scheduled, manual or hand-off."""

    def __init__(
        self,
        compactor: Compactor,
        *,
        lookback_days: int = 2,
        reserve_seconds: float = 240.0,
        invoker: LambdaInvoker | None = None,
        clock: Clock = utc_now,
        late_markers: LateMarkers | None = None,
    ) -> None:
        self.compactor = compactor
        self.lookback_days = lookback_days
        self.reserve_seconds = reserve_seconds
        self.invoker = invoker or LambdaInvoker()
        self.clock = clock
        self.late_markers = late_markers or LateMarkers(compactor.store)

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
        for marker in self.late_markers.pending("compaction"):
            late[marker.partition].append(marker)
        if trigger == "scheduled":
            partitions = sorted({*partitions, *late})
        summary = self.compactor.run(
            partitions,
            trigger=trigger,
            deadline=Deadline.of_context(context, margin_ms=int(self.reserve_seconds * 1000)),
            hand_off=lambda rest: self.hand_off(context.function_name, rest),
            settled=lambda partition: self.late_markers.clear(late.get(partition, ())),
            # A failed hour with no marker gets one, so later runs retry it past the look-back window.
            unsettled=lambda partition: (
                None if partition in late else self.late_markers.keep_for_retry("compaction", partition)
            ),
        )
        if trigger == "scheduled":
            summary.late = sorted(partition.path for partition in late)
        return summary

    def hand_off(self, function_name: str, partitions: list[Partition]) -> int:
        """Hand ``partitions`` to new asynchronous invocations of this function; returns how many."""
        invocations = 0
        for start in range(0, len(partitions), HANDOFF_BATCH):
            event = HandoffEvent.of(partitions[start : start + HANDOFF_BATCH])
            self.invoker.invoke_event(function_name, json.dumps(event.model_dump()).encode())
            invocations += 1
        return invocations
