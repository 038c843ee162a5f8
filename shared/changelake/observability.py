"""Powertools Metrics helpers shared by the handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from changelake.exceptions import DeliveryError
    from changelake.runs import RunRecord


def publish(
    metrics: Metrics, counts: Mapping[str, int | float], *, bytes_metrics: frozenset[str] = frozenset()
) -> None:
    """Add every entry of ``counts`` as a metric (``Count``, or ``Bytes`` for names in ``bytes_metrics``)."""
    for name, value in counts.items():
        unit = MetricUnit.Bytes if name in bytes_metrics else MetricUnit.Count
        metrics.add_metric(name=name, unit=unit, value=value)


def report_unrecorded_run(logger: Logger, metrics: Metrics, record: RunRecord, error: DeliveryError) -> None:
    """A run record that could not be stored: an ERROR log line with the record, and ``RunRecordsFailed``."""
    logger.error(
        "run record not stored",
        extra={"key": record.key, "error": str(error), "record": record.to_json().decode()},
    )
    metrics.add_metric(name="RunRecordsFailed", unit=MetricUnit.Count, value=1)
