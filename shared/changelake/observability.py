"""Powertools Metrics: every handler publishes its result the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from changelake.runs import RunDraft, RunKind, RunOutcome, success_metric_name

if TYPE_CHECKING:
    from changelake.exceptions import DeliveryError
    from changelake.runs import RunRecord


class Measured(Protocol):
    """A function's result: its metrics by name, and the names among them that count bytes."""

    BYTES_METRICS: ClassVar[frozenset[str]]

    def metrics(self) -> Mapping[str, int | float]: ...


def publish(metrics: Metrics, result: Measured) -> None:
    """Add every metric of ``result`` (``Count``, or ``Bytes`` for its ``BYTES_METRICS``)."""
    for name, value in result.metrics().items():
        unit = MetricUnit.Bytes if name in result.BYTES_METRICS else MetricUnit.Count
        metrics.add_metric(name=name, unit=unit, value=value)


def publish_run(metrics: Metrics, kind: RunKind, outcome: RunOutcome) -> None:
    """``<Kind>Succeeded``: 1 for a batch function's run that succeeded, else 0 (an alarm watches it)."""
    metrics.add_metric(
        name=success_metric_name(kind), unit=MetricUnit.Count, value=int(outcome.result == "succeeded")
    )


def finish_run(metrics: Metrics, run: RunDraft, kind: RunKind, outcome: RunOutcome, result: Measured) -> None:
    """A batch run's end: its ``outcome`` for the run record, ``result``'s metrics and ``<Kind>Succeeded``."""
    run.finish(outcome)
    publish(metrics, result)
    publish_run(metrics, kind, outcome)


def report_unrecorded_run(logger: Logger, metrics: Metrics, record: RunRecord, error: DeliveryError) -> None:
    """A run record that could not be stored: an ERROR log line with the record, and ``RunRecordsFailed``."""
    logger.error(
        "run record not stored",
        extra={"key": record.key, "error": str(error), "record": record.to_json().decode()},
    )
    metrics.add_metric(name="RunRecordsFailed", unit=MetricUnit.Count, value=1)
