"""The events CompactionFunction accepts: the schedule's, the manual one and its own hand-off."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from changelake.exceptions import InvalidEventError, UnsafeNameError
from changelake.formats.lambda_events import TableDayEvent
from changelake.formats.layout import Partition, parse_partition_prefix

#: Partitions named in one hand-off invocation (keeps the async payload far below Lambda's limit).
HANDOFF_BATCH = 1000
_HOUR = re.compile(r"\d{2}\Z")


class ManualEvent(TableDayEvent):
    """``{"table": ..., "dt": "YYYY-MM-DD", "hour": "HH"}`` (hour optional: the whole day)."""

    hour: StrictStr | None = None

    @field_validator("hour")
    @classmethod
    def _hour(cls, value: str | None) -> str | None:
        if value is not None and (_HOUR.match(value) is None or int(value) > 23):
            raise ValueError("must be an hour 00 to 23")
        return value


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
