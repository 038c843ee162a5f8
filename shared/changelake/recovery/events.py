"""The event of DlqRedriveFunction (manual or scheduled)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from changelake.exceptions import InvalidEventError
from changelake.formats.lambda_events import validated_event


class RedriveRequest(BaseModel):
    """The manual (or scheduled) event of DlqRedriveFunction; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    max_messages: int = Field(default=1000, ge=1, le=1_000_000)
    dry_run: bool = False
    #: At most this many DLQ messages per second are moved (None: as fast as SQS allows).
    rate_per_second: float | None = Field(default=None, gt=0, le=10_000)
    #: Only messages whose attributes have exactly these string values are moved; others are skipped.
    attribute_filter: dict[str, str] | None = Field(default=None, min_length=1, max_length=10)
    #: Also replay the stream ranges in the stream-failure queue (before the DLQ: they expire first).
    replay_stream_failures: bool = True
    #: Also re-run the asynchronous invocations (compaction) in the async-failure queue.
    replay_async_failures: bool = True


def parse_request(event: object) -> RedriveRequest:
    """The validated request in ``event``; ``InvalidEventError`` names the first bad field."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise InvalidEventError("event", "must be a JSON object")
    return validated_event(RedriveRequest, event)
