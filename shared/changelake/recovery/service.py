"""DlqRedriveFunction's service: one invocation replays the stream failures, then the DLQ."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from changelake.recovery.dlq import DlqRedriver
from changelake.recovery.events import RedriveRequest
from changelake.recovery.receive import Deadline


class _Replayer(Protocol):
    """What ``run_redrive`` needs of ``changelake.recovery.stream_failures.StreamFailureReplayer``."""

    def run(self, max_records: int, deadline: Deadline) -> Any: ...

    def sample(self, max_records: int) -> dict[str, Any]: ...


class _AsyncReplayer(Protocol):
    """What ``run_redrive`` needs of ``changelake.recovery.async_failures.AsyncFailureReplayer``."""

    def run(self, max_records: int, deadline: Deadline, *, own_function_name: str) -> Any: ...

    def sample(self, max_records: int) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Replayers:
    """The optional sources a redrive run reads besides the DLQ (None: not configured)."""

    stream_failures: _Replayer | None = None
    async_failures: _AsyncReplayer | None = None
    #: The redrive function's own name (its failed scheduled runs are superseded by this one).
    own_function_name: str = ""


def run_redrive(
    request: RedriveRequest,
    deadline: Deadline,
    redriver: DlqRedriver,
    replayer: _Replayer | None = None,
    *,
    replayers: Replayers | None = None,
) -> dict[str, Any]:
    """One invocation: stream-failure ranges first (they expire after 24 hours), then the DLQ,
    then failed asynchronous invocations (their payloads never expire in the function).

    A dry run samples all and changes nothing.
    """
    sources = replayers or Replayers(stream_failures=replayer)
    replay = sources.stream_failures if request.replay_stream_failures else None
    rerun = sources.async_failures if request.replay_async_failures else None
    summary: dict[str, Any] = {"dry_run": request.dry_run}
    if request.dry_run:
        summary.update(moved=0, failed=0, skipped=0, left_too_many_redrives=0)
        summary["dlq"] = redriver.sample(request)
        summary["remaining_estimate"] = summary["dlq"]["dlq_visible"]
        summary["stream_failures"] = None if replay is None else replay.sample(request.max_messages)
        summary["async_failures"] = None if rerun is None else rerun.sample(request.max_messages)
        return summary
    stream = None if replay is None else replay.run(request.max_messages, deadline).summary()
    summary.update(redriver.run(request, deadline).summary())
    summary["stream_failures"] = stream
    summary["async_failures"] = (
        None
        if rerun is None
        else rerun.run(request.max_messages, deadline, own_function_name=sources.own_function_name).summary()
    )
    return summary


def redrive_metrics(summary: Mapping[str, Any]) -> dict[str, int]:
    """The CloudWatch metrics of one run's summary (``LostRanges`` is watched by an alarm)."""
    stream = summary.get("stream_failures") or {}
    rerun = summary.get("async_failures") or {}
    return {
        "MessagesRedriven": int(summary.get("moved", 0)),
        "MessagesRedriveFailed": int(summary.get("failed", 0)),
        "MessagesSkipped": int(summary.get("skipped", 0)),
        "MessagesLeftTooManyRedrives": int(summary.get("left_too_many_redrives", 0)),
        "RangesReplayed": int(stream.get("ranges_replayed", 0)),
        "RecordsReplayed": int(stream.get("records_replayed", 0)),
        "RangesFailed": int(stream.get("ranges_failed", 0)),
        "LostRanges": int(stream.get("ranges_lost", 0)),
        "AsyncInvocationsReplayed": int(rerun.get("reinvoked", 0)),
        "AsyncInvocationsReplayFailed": int(rerun.get("failed", 0)),
    }
