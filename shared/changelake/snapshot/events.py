"""The events SnapshotFunction accepts (docs/contracts.md, "Invoking the functions by hand"), validated.

* the EventBridge scheduled event: every table's snapshot of the previous UTC day;
* ``{"table": "<table>", "dt": "YYYY-MM-DD"}``: that day, and every missing or stale day before it;
* ``{"table": "<table>", "bootstrap": "s3://<bucket>/<prefix>/AWSDynamoDB/<id>/manifest-summary.json"}``:
  start the table's history from a DynamoDB full export;
* ``{"table", "dt", "buckets": N, "bucket": K}``: bucket K of N of that day, recorded, not published
  (``changelake.snapshot.bucketed``); ``{"table", "dt", "buckets": N, "commit": true}``: the day
  published from its N buckets; ``{"table", "dt", "plan": true}``: the fan-out state machine's plan
  (the days up to ``dt`` built here while they are small, the first large one handed back in buckets).

A malformed event raises ``InvalidEventError`` naming the field, before anything is read or written.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from changelake.compaction.events import is_scheduled_event
from changelake.exceptions import InvalidEventError
from changelake.formats.lambda_events import TableDayEvent, TableEvent, validated_event
from changelake.pieces import MAX_PIECES, Piece

#: How many buckets a day is built in: 1 to ``MAX_PIECES``, a JSON integer.
BucketCount = Annotated[StrictInt, Field(ge=1, le=MAX_PIECES)]


def _true(value: bool) -> bool:
    if value is not True:
        raise ValueError("must be true")
    return value


#: A field that says what the event is (``"commit": true``): JSON true, nothing else.
TrueFlag = Annotated[StrictBool, AfterValidator(_true)]

#: The bootstrap URL (docs/contracts.md): an S3 bucket name, an optional prefix, AWSDynamoDB/<export id>/.
_EXPORT_SUMMARY = re.compile(
    r"s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/"
    r"(?P<folder>(?:[^/]+/)*?AWSDynamoDB/(?P<export_id>[A-Za-z0-9._\-]+))/manifest-summary\.json\Z"
)


class ManualEvent(TableDayEvent):
    """``{"table", "dt"}``: the snapshot of ``table`` at the end of the UTC day ``dt``."""


class BootstrapEvent(TableEvent):
    """``{"table", "bootstrap"}``: start ``table``'s snapshots from a DynamoDB full export."""

    bootstrap: StrictStr

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        if _EXPORT_SUMMARY.match(value) is None:
            raise ValueError("must be s3://<bucket>/<prefix>/AWSDynamoDB/<export id>/manifest-summary.json")
        return value

    def _part(self, name: str) -> str:
        match = _EXPORT_SUMMARY.match(self.bootstrap)
        assert match is not None  # checked by the validator
        return match[name]

    @property
    def bucket(self) -> str:
        return self._part("bucket")

    @property
    def export_folder(self) -> str:
        """The export's folder in its bucket: ``<prefix>/AWSDynamoDB/<export id>``."""
        return self._part("folder")

    @property
    def export_id(self) -> str:
        return self._part("export_id")

    @property
    def summary_key(self) -> str:
        return f"{self.export_folder}/manifest-summary.json"


class BucketEvent(TableDayEvent):
    """``{"table", "dt", "buckets": N, "bucket": K}``: bucket K (0 <= K < N) of the day, not published."""

    buckets: BucketCount
    bucket: Annotated[StrictInt, Field(ge=0)]

    @property
    def piece(self) -> Piece:
        return Piece(self.bucket, self.buckets)


class BucketCommitEvent(TableDayEvent):
    """``{"table", "dt", "buckets": N, "commit": true}``: the day published from its N buckets."""

    buckets: BucketCount
    commit: TrueFlag


class PlanEvent(TableDayEvent):
    """``{"table", "dt", "plan": true}``: the fan-out state machine's plan of the days up to ``dt``."""

    plan: TrueFlag


class ScheduledEvent(BaseModel):
    """The nightly schedule's event (only its ``detail-type`` matters)."""

    model_config = ConfigDict(frozen=True, defer_build=True)


SnapshotEvent = ScheduledEvent | ManualEvent | BootstrapEvent | BucketEvent | BucketCommitEvent | PlanEvent
_Manual = ManualEvent | BootstrapEvent


def parse_event(event: object) -> SnapshotEvent:
    """The typed event; ``InvalidEventError`` names the field that is wrong."""
    if is_scheduled_event(event):
        return ScheduledEvent()
    if not isinstance(event, dict):
        raise InvalidEventError("event", "must be a JSON object")
    if "bootstrap" in event:
        return validated_event(BootstrapEvent, event)
    if "plan" in event:
        return validated_event(PlanEvent, event)
    if "commit" in event:
        return validated_event(BucketCommitEvent, event)
    if "buckets" in event or "bucket" in event:
        parsed = validated_event(BucketEvent, event)
        if parsed.bucket >= parsed.buckets:
            raise InvalidEventError(
                "bucket", f"must be below buckets ({parsed.buckets}), not {parsed.bucket}"
            )
        return parsed
    return validated_event(ManualEvent, event)
