"""DlqRedriveFunction's service: one invocation replays the stream failures, moves the DLQ back,
then re-runs the failed asynchronous invocations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from changelake.budget import Deadline
from changelake.recovery.async_failures import AsyncFailureReplayer, AsyncReplayResult
from changelake.recovery.dlq import DlqRedriver, RedriveResult
from changelake.recovery.events import RedriveRequest, parse_request
from changelake.recovery.receive import DEFAULT_SAFETY_MARGIN_MS
from changelake.recovery.stream_failures import ReplayResult, StreamFailureReplayer


class _Invocation(Protocol):
    @property
    def function_name(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(slots=True)
class RedriveSummary:
    """What one invocation did: the runs over the DLQ and the two failure queues (None: not
    configured or not asked for), or on a dry run their samples."""

    BYTES_METRICS: ClassVar[frozenset[str]] = frozenset()

    dry_run: bool
    dlq: RedriveResult | None = None
    stream_failures: ReplayResult | None = None
    async_failures: AsyncReplayResult | None = None
    dlq_sample: dict[str, Any] | None = None
    stream_failures_sample: dict[str, Any] | None = None
    async_failures_sample: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The function's response: the DLQ run's counts at the top, the failure queues nested."""
        summary: dict[str, Any] = {"dry_run": self.dry_run}
        if self.dlq_sample is not None:
            summary.update(RedriveResult().counts())  # nothing moved
            summary["dlq"] = self.dlq_sample
            summary["remaining_estimate"] = self.dlq_sample["dlq_visible"]
            summary["stream_failures"] = self.stream_failures_sample
            summary["async_failures"] = self.async_failures_sample
            return summary
        if self.dlq is not None:
            summary.update(self.dlq.summary())
        summary["stream_failures"] = None if self.stream_failures is None else self.stream_failures.summary()
        summary["async_failures"] = None if self.async_failures is None else self.async_failures.summary()
        return summary

    def metrics(self) -> dict[str, int]:
        """The CloudWatch metrics (``LostRanges`` is watched by an alarm); a dry run's are all zero."""
        dlq, stream = self.dlq or RedriveResult(), self.stream_failures or ReplayResult()
        rerun = self.async_failures or AsyncReplayResult()
        return {
            "MessagesRedriven": dlq.moved,
            "MessagesRedriveFailed": dlq.failed,
            "MessagesSkipped": dlq.skipped,
            "MessagesLeftTooManyRedrives": dlq.left_too_many_redrives,
            "RangesReplayed": stream.ranges_replayed,
            "RecordsReplayed": stream.records_replayed,
            "RangesFailed": stream.ranges_failed,
            "LostRanges": stream.ranges_lost,
            "AsyncInvocationsReplayed": rerun.reinvoked,
            "AsyncInvocationsReplayFailed": rerun.failed,
        }


class RedriveService:
    """Turns DlqRedriveFunction's event into one run: stream-failure ranges first (they expire
    after 24 hours), then the DLQ, then failed asynchronous invocations (their payloads never
    expire in the function). A dry run samples all three and changes nothing."""

    def __init__(
        self,
        redriver: DlqRedriver,
        stream_failures: StreamFailureReplayer | None = None,
        async_failures: AsyncFailureReplayer | None = None,
    ) -> None:
        self.redriver = redriver
        self.stream_failures = stream_failures
        self.async_failures = async_failures

    def handle(self, event: object, context: _Invocation) -> RedriveSummary:
        """``InvalidEventError`` names a bad field of ``event`` before anything is touched."""
        request = parse_request(event)
        return self.run(
            request,
            Deadline.of_context(context, DEFAULT_SAFETY_MARGIN_MS),
            own_function_name=context.function_name,
        )

    def run(
        self, request: RedriveRequest, deadline: Deadline, *, own_function_name: str = ""
    ) -> RedriveSummary:
        """``own_function_name``: the redrive function's (its own failed scheduled runs are superseded)."""
        replay = self.stream_failures if request.replay_stream_failures else None
        rerun = self.async_failures if request.replay_async_failures else None
        if request.dry_run:
            return RedriveSummary(
                dry_run=True,
                dlq_sample=self.redriver.sample(request),
                stream_failures_sample=None if replay is None else replay.sample(request.max_messages),
                async_failures_sample=None if rerun is None else rerun.sample(request.max_messages),
            )
        stream = None if replay is None else replay.run(request.max_messages, deadline)
        dlq = self.redriver.run(request, deadline)
        again = (
            None
            if rerun is None
            else rerun.run(request.max_messages, deadline, own_function_name=own_function_name)
        )
        return RedriveSummary(dry_run=False, dlq=dlq, stream_failures=stream, async_failures=again)
