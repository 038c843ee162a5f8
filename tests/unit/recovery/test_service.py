"""One redrive invocation's metrics (recovery.service)."""

from __future__ import annotations

from changelake.recovery.service import redrive_metrics

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-22T00:00:00.000"


def test_the_run_metrics_include_lost_ranges() -> None:
    summary = {
        "moved": 3,
        "failed": 1,
        "skipped": 2,
        "stream_failures": {"ranges_lost": 1, "records_replayed": 9},
    }
    metrics = redrive_metrics(summary)
    assert metrics["LostRanges"] == 1
    assert (metrics["MessagesRedriven"], metrics["MessagesRedriveFailed"], metrics["RecordsReplayed"]) == (
        3,
        1,
        9,
    )
    assert redrive_metrics({"moved": 0, "stream_failures": None})["LostRanges"] == 0
