"""The events SnapshotFunction accepts (docs/contracts.md, "Invoking the functions by hand"), validated.

* the EventBridge scheduled event: every table's snapshot of the previous UTC day;
* ``{"table": "<table>", "dt": "YYYY-MM-DD"}``: that day, and every missing or stale day before it;
* ``{"table": "<table>", "bootstrap": "s3://<bucket>/<prefix>/AWSDynamoDB/<id>/manifest-summary.json"}``:
  start the table's history from a DynamoDB full export.

A malformed event raises ``InvalidEventError`` naming the field, before anything is read or written.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, StrictStr, field_validator

from changelake.compaction.events import is_scheduled_event
from changelake.exceptions import InvalidEventError
from changelake.formats.lambda_events import TableDayEvent, TableEvent, validated_event

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


class ScheduledEvent(BaseModel):
    """The nightly schedule's event (only its ``detail-type`` matters)."""

    model_config = ConfigDict(frozen=True, defer_build=True)


SnapshotEvent = ScheduledEvent | ManualEvent | BootstrapEvent
_Manual = ManualEvent | BootstrapEvent


def parse_event(event: object) -> SnapshotEvent:
    """The typed event; ``InvalidEventError`` names the field that is wrong."""
    if is_scheduled_event(event):
        return ScheduledEvent()
    if not isinstance(event, dict):
        raise InvalidEventError("event", "must be a JSON object")
    if "bootstrap" in event:
        return validated_event(BootstrapEvent, event)
    return validated_event(ManualEvent, event)
