"""The events CompactionFunction accepts: the schedule's, the manual one, its own hand-off, and the
fan-out state machine's (an hour's plan, a slice of it, the commit of its slices)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationInfo, field_validator

from changelake.exceptions import InvalidEventError, UnsafeNameError
from changelake.formats.lambda_events import (
    PieceCount,
    PieceIndex,
    TableDayEvent,
    check_piece,
    validated_event,
)
from changelake.formats.layout import Partition, parse_partition_prefix
from changelake.pieces import Piece

#: Partitions named in one hand-off invocation (keeps the async payload far below Lambda's limit).
HANDOFF_BATCH = 1000
_HOUR = re.compile(r"\d{2}\Z")


class ManualEvent(TableDayEvent):
    """``{"table": ..., "dt": "YYYY-MM-DD", "hour": "HH"}`` (hour optional: the whole day)."""

    hour: StrictStr | None = None

    @field_validator("hour")
    @classmethod
    def _hour(cls, value: str | None) -> str | None:
        return None if value is None else _checked_hour(value)


def _checked_hour(value: str) -> str:
    if _HOUR.match(value) is None or int(value) > 23:
        raise ValueError("must be an hour 00 to 23")
    return value


class HourEvent(TableDayEvent):
    """An event naming one hour: ``{"table", "dt", "hour": "HH"}`` (the hour required)."""

    hour: StrictStr

    @field_validator("hour")
    @classmethod
    def _hour(cls, value: str) -> str:
        return _checked_hour(value)

    @property
    def partition(self) -> Partition:
        return Partition(self.table, self.day, int(self.hour))

    def hour_fields(self) -> dict[str, Any]:
        return {"table": self.table, "dt": self.dt, "hour": self.hour}


class PlanEvent(HourEvent):
    """``{"table", "dt", "hour", "plan": true}``: the state machine's first step for an hour."""

    plan: Literal[True]


class SliceEvent(HourEvent):
    """``{"table", "dt", "hour", "slices": N, "slice": K}``: build slice K of N; publish nothing."""

    slices: PieceCount
    slice: PieceIndex

    @field_validator("slice")
    @classmethod
    def _slice(cls, value: int, info: ValidationInfo) -> int:
        return check_piece(value, info.data.get("slices"))

    @property
    def piece(self) -> Piece:
        return Piece(self.slice, self.slices)


class SliceCommitEvent(HourEvent):
    """``{"table", "dt", "hour", "slices": N, "commit": true}``: publish the hour from its N slices."""

    slices: PieceCount
    commit: Literal[True]


def parse_fan_out_event(event: dict[str, Any]) -> PlanEvent | SliceEvent | SliceCommitEvent | None:
    """The state machine's event in ``event`` (told apart by ``plan``, ``commit``, ``slice`` or
    ``slices``), validated; None for any other event. ``InvalidEventError`` names a bad field."""
    if "plan" in event:
        return validated_event(PlanEvent, event)
    if "commit" in event:
        return validated_event(SliceCommitEvent, event)
    if "slice" in event or "slices" in event:
        return validated_event(SliceEvent, event)
    return None


class HandoffEvent(BaseModel):
    """What a run that ran short of time sends to the next: the partitions still to do."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    handoff: Literal["changelake.compaction"]
    partitions: list[StrictStr] = Field(min_length=1)

    @classmethod
    def of(cls, partitions: list[Partition]) -> HandoffEvent:
        return cls(handoff="changelake.compaction", partitions=[p.path for p in partitions])

    def partition_list(self) -> list[Partition]:
        """The partitions named, each checked as the manual event's fields are."""
        return [_partition_of_path(path) for path in self.partitions]


def is_scheduled_event(event: object) -> bool:
    """An EventBridge (or EventBridge Scheduler) scheduled event."""
    return isinstance(event, dict) and event.get("detail-type") == "Scheduled Event"


def scheduled_days(today: date, lookback_days: int) -> list[date]:
    """The previous UTC day and the ``lookback_days`` before it, oldest first."""
    yesterday = today - timedelta(days=1)
    return [yesterday - timedelta(days=back) for back in range(lookback_days, -1, -1)]


def _partition_of_path(path: str) -> Partition:
    try:
        return parse_partition_prefix("x", f"x/{path}/")
    except UnsafeNameError as exc:
        raise InvalidEventError("partitions", exc.reason) from None
