"""Shape checks for the Lambda events the handlers receive."""

from __future__ import annotations

from typing import Any

from changelake.exceptions import InvalidEventError


def records_of(event: object) -> list[Any]:
    """The ``Records`` list of an event-source-mapping event."""
    if not isinstance(event, dict):
        raise InvalidEventError("event", "must be an object")
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidEventError("Records", "must be a list")
    return records
