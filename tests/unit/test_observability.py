"""Every function's result publishes its metrics the same way (changelake.observability)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from changelake.compaction.compactor import CompactionSummary
from changelake.ingest.aggregator import AggregatorResult
from changelake.ingest.consumer import ConsumerResult
from changelake.observability import Measured, publish, traced
from changelake.recovery.service import RedriveSummary
from changelake.snapshot.service import SnapshotSummary


@dataclass
class RecordingMetrics:
    added: dict[str, tuple[Any, float]] = field(default_factory=dict)

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.added[name] = (unit, value)


@pytest.mark.parametrize(
    ("result", "byte_metrics", "value_of"),
    [
        (ConsumerResult(records_in=5, bytes_sent=700), {"BytesSent"}, {"RecordsIn": 5, "BytesSent": 700}),
        (
            AggregatorResult(messages_in=2, bytes_written=90, failed_message_ids={"m1"}),
            {"BytesWritten"},
            {"MessagesIn": 2, "BytesWritten": 90, "MessagesFailed": 1},
        ),
        (CompactionSummary("manual", bytes_in=10, bytes_out=8), {"BytesIn", "BytesOut"}, {"BytesOut": 8}),
        (RedriveSummary(dry_run=False), set(), {"LostRanges": 0}),
        (SnapshotSummary("manual", days_built=2, bytes_out=64), {"BytesIn", "BytesOut"}, {"DaysBuilt": 2}),
    ],
)
def test_each_result_publishes_its_metrics_with_bytes_as_bytes(
    result: Measured, byte_metrics: set[str], value_of: dict[str, int]
) -> None:
    # GIVEN a function's result WHEN it is published
    recorded = RecordingMetrics()
    publish(recorded, result)  # type: ignore[arg-type]

    # THEN every metric is added once, in Bytes where it counts bytes and in Count otherwise
    assert recorded.added.keys() == result.metrics().keys()
    for name, (unit, _) in recorded.added.items():
        assert unit == (MetricUnit.Bytes if name in byte_metrics else MetricUnit.Count)
    for name, value in value_of.items():
        assert recorded.added[name][1] == value


def test_with_tracing_off_a_handler_is_left_unwrapped() -> None:
    # GIVEN tracing off (POWERTOOLS_TRACE_DISABLED, as every test sets it) and a handler
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        return event

    # WHEN it is traced THEN it is returned as it is: no Tracer, so no X-Ray SDK, is needed
    assert traced(handler) is handler
