"""Every function's result publishes its metrics the same way, and the functions fed by an event
source mapping answer a batch the same way (changelake.observability)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from changelake.compaction.compactor import CompactionSummary
from changelake.ingest.aggregator import AggregatorResult
from changelake.ingest.consumer import ConsumerResult
from changelake.observability import (
    Measured,
    SourceBatchAnswer,
    SourceBatchResult,
    entry_point,
    publish,
    traced,
)
from changelake.recovery.service import RedriveSummary
from changelake.snapshot.service import SnapshotSummary
from tests.conftest import FakeLambdaContext


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


@dataclass
class RecordingLogger:
    lines: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def error(self, message: str, *, extra: dict[str, Any]) -> None:
        self.lines.append(("ERROR", message, extra))

    def info(self, message: str, *, extra: dict[str, Any]) -> None:
        self.lines.append(("INFO", message, extra))


def answer_of(result: SourceBatchResult) -> tuple[dict[str, Any], RecordingMetrics, RecordingLogger]:
    metrics, logger = RecordingMetrics(), RecordingLogger()
    answer = SourceBatchAnswer(metrics, logger, done="batch done", failed="batch partly failed")  # type: ignore[arg-type]
    return answer(result), metrics, logger


def test_a_batch_partly_failed_is_answered_with_its_resume_point_and_logged_at_error() -> None:
    # GIVEN a consumer batch whose records from sequence number 42 on did not reach SQS
    result = ConsumerResult(records_in=5, messages_sent=1, failed_sequence_number="42")
    result.errors.extend(f"send failed {n}" for n in range(12))

    # WHEN the handler answers it
    response, metrics, logger = answer_of(result)

    # THEN Lambda is told where to resume, the metrics are published, and the log says what
    # failed (with the first ten errors) and what was done
    assert response == {"batchItemFailures": [{"itemIdentifier": "42"}]}
    assert metrics.added["RecordsIn"][1] == 5
    assert logger.lines == [
        ("ERROR", "batch partly failed", {"failed_sequence_number": "42", "errors": result.errors[:10]}),
        ("INFO", "batch done", {"records_in": 5, "messages": 1, "quarantined": 0}),
    ]


def test_a_batch_all_stored_is_answered_with_no_failures_and_logged_at_info_only() -> None:
    # GIVEN an aggregator batch stored whole
    result = AggregatorResult(messages_in=2, records_stored=3, objects_written=1)

    # WHEN the handler answers it
    response, metrics, logger = answer_of(result)

    # THEN nothing is delivered again and one INFO line reports it
    assert response == {"batchItemFailures": []}
    assert metrics.added["MessagesFailed"][1] == 0
    assert logger.lines == [("INFO", "batch done", {"records_stored": 3, "objects": 1})]


def test_an_aggregator_batch_with_unstored_messages_logs_how_many() -> None:
    result = AggregatorResult(messages_in=2, failed_message_ids={"m1", "m2"}, errors=["s3: slow down"])
    response, _, logger = answer_of(result)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert logger.lines[0] == ("ERROR", "batch partly failed", {"failed": 2, "errors": ["s3: slow down"]})


@pytest.mark.parametrize("log_item_data", [False, True])
def test_an_entry_point_logs_the_event_only_when_item_data_may_be_logged(
    log_item_data: bool,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN Powertools told to log every event, and a handler wrapped as every function wraps it
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    logger, metrics = Logger(service="entry-test"), Metrics(namespace="EntryTest", service="entry-test")
    caplog.set_level(logging.INFO, logger="entry-test")
    keys_seen: dict[str, Any] = {}

    @entry_point(logger, metrics, log_item_data=log_item_data)
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        metrics.add_metric(name="Handled", unit=MetricUnit.Count, value=1)
        logger.info("handled")
        keys_seen.update(logger.get_current_keys())
        return {"ok": True}

    # WHEN it is invoked with an event carrying an item's value
    assert handler({"note": "im4ge-v4lue"}, FakeLambdaContext()) == {"ok": True}

    # THEN the value is logged only with LOG_ITEM_DATA, the log lines carry the invocation's
    # context, and the metrics were flushed
    logs = "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)
    assert ("im4ge-v4lue" in logs) is log_item_data
    assert "handled" in logs
    assert keys_seen["function_request_id"] == FakeLambdaContext.aws_request_id
    assert '"Handled"' in capsys.readouterr().out
