"""Powertools Metrics helpers shared by the handlers."""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit


def publish(
    metrics: Metrics, counts: Mapping[str, int | float], *, bytes_metrics: frozenset[str] = frozenset()
) -> None:
    """Add every entry of ``counts`` as a metric (``Count``, or ``Bytes`` for names in ``bytes_metrics``)."""
    for name, value in counts.items():
        unit = MetricUnit.Bytes if name in bytes_metrics else MetricUnit.Count
        metrics.add_metric(name=name, unit=unit, value=value)
