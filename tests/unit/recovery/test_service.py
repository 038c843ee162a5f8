"""One redrive invocation's summary and metrics (recovery.service)."""

from __future__ import annotations

from changelake.recovery.async_failures import AsyncReplayResult
from changelake.recovery.dlq import RedriveResult
from changelake.recovery.service import RedriveSummary
from changelake.recovery.stream_failures import ReplayResult


def test_the_run_metrics_include_lost_ranges() -> None:
    # GIVEN a run that moved, failed and skipped DLQ messages, lost a stream range, re-ran invocations
    summary = RedriveSummary(
        dry_run=False,
        dlq=RedriveResult(moved=3, failed=1, skipped=2),
        stream_failures=ReplayResult(ranges_lost=1, records_replayed=9),
        async_failures=AsyncReplayResult(reinvoked=2, failed=1),
    )

    # WHEN its metrics are read
    metrics = summary.metrics()

    # THEN the alarm's LostRanges and the counts are there
    assert metrics["LostRanges"] == 1
    assert (metrics["AsyncInvocationsReplayed"], metrics["AsyncInvocationsReplayFailed"]) == (2, 1)
    assert (metrics["MessagesRedriven"], metrics["MessagesRedriveFailed"], metrics["RecordsReplayed"]) == (
        3,
        1,
        9,
    )
    assert metrics["MessagesSkipped"] == 2


def test_without_a_stream_failure_queue_nothing_is_lost_and_the_response_says_none() -> None:
    # GIVEN a run without stream failures to replay
    summary = RedriveSummary(dry_run=False, dlq=RedriveResult(moved=2, stopped="empty"))

    # WHEN / THEN no range is counted, and the response carries the DLQ's counts at the top
    assert summary.metrics()["LostRanges"] == 0
    response = summary.as_dict()
    assert (response["dry_run"], response["moved"], response["stopped"]) == (False, 2, "empty")
    assert response["stream_failures"] is None
    assert response["async_failures"] is None


def test_a_dry_run_reports_its_samples_and_zero_metrics() -> None:
    # GIVEN a dry run's samples
    dlq_sample = {"dlq_visible": 4, "would_move_at_most": 4, "sample": []}
    summary = RedriveSummary(dry_run=True, dlq_sample=dlq_sample, stream_failures_sample=None)

    # WHEN / THEN nothing moved, and the response is the documented one
    assert set(summary.metrics().values()) == {0}
    assert summary.as_dict() == {
        "dry_run": True,
        "moved": 0,
        "failed": 0,
        "skipped": 0,
        "left_too_many_redrives": 0,
        "dlq": dlq_sample,
        "remaining_estimate": 4,
        "stream_failures": None,
        "async_failures": None,
    }
