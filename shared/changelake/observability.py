"""Powertools Metrics and Tracer: every handler publishes its result and is traced the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from changelake.exceptions import DeliveryError
    from changelake.integrations.s3 import S3Store
    from changelake.runs import RunDraft, RunKind, RunOutcome, RunRecord, RunRecorder

Handler = TypeVar("Handler", bound=Callable[..., Any])


def traced(handler: Handler) -> Handler:
    """``handler`` as ``Tracer().capture_lambda_handler`` wraps it when tracing is on (Lambda under
    the template's ``Tracing: Active``: botocore patched at cold start, a subsegment per invocation
    with the response or error and the ``ColdStart`` annotation); ``handler`` itself when off.

    Off is Powertools' own rule (``POWERTOOLS_TRACE_DISABLED``, or outside Lambda or under SAM
    local), asked of Powertools so the two cannot disagree. A disabled ``Tracer()`` would still
    import the X-Ray SDK (about a third of a handler's cold start, bench row 8) to record nothing.
    """
    if Tracer._is_tracer_disabled():  # Powertools' rule, not a copy of it
        return handler
    return cast(Handler, Tracer().capture_lambda_handler(handler))


def entry_point(logger: Logger, metrics: Metrics, *, log_item_data: bool) -> Callable[[Handler], Handler]:
    """How every function wraps its handler: Powertools' Lambda context in each log line, the event
    itself logged only when ``log_item_data`` (LOG_ITEM_DATA) says so, whatever
    POWERTOOLS_LOGGER_LOG_EVENT says (events hold item images and key values); then ``traced``; and
    the metrics flushed after each invocation."""

    def wrap(handler: Handler) -> Handler:
        with_context = logger.inject_lambda_context(log_event=log_item_data)
        return cast(Handler, with_context(traced(metrics.log_metrics(handler))))

    return wrap


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
    from changelake.runs import success_metric_name  # only the batch functions record runs

    metrics.add_metric(
        name=success_metric_name(kind), unit=MetricUnit.Count, value=int(outcome.result == "succeeded")
    )


def finish_run(metrics: Metrics, run: RunDraft, kind: RunKind, outcome: RunOutcome, result: Measured) -> None:
    """A batch run's end: its ``outcome`` for the run record, ``result``'s metrics and ``<Kind>Succeeded``."""
    run.finish(outcome)
    publish(metrics, result)
    publish_run(metrics, kind, outcome)


class SourceBatchResult(Measured, Protocol):
    """What a function fed by an event source mapping did with one batch (``ConsumerResult``,
    ``AggregatorResult``)."""

    errors: list[str]

    def response(self) -> Mapping[str, Any]:
        """The partial batch response: what of the batch Lambda delivers again."""
        ...

    def report(self) -> dict[str, Any]:
        """What the batch came to, for the INFO log line (counts, never item data)."""
        ...

    def failure_report(self) -> dict[str, Any] | None:
        """What of the batch is delivered again, for the ERROR log line; None when all of it is safe."""
        ...


class SourceBatchAnswer:
    """How a function fed by an event source mapping (the consumer, the aggregator) answers each
    batch, wired once at cold start: it publishes the result's metrics, logs what is to be
    delivered again (``failed``, at ERROR, with the first errors) and what was done (``done``, at
    INFO), and returns the partial batch response."""

    def __init__(self, metrics: Metrics, logger: Logger, *, done: str, failed: str) -> None:
        self.metrics, self.logger = metrics, logger
        self.done, self.failed = done, failed

    def __call__(self, result: SourceBatchResult) -> dict[str, Any]:
        publish(self.metrics, result)
        failure = result.failure_report()
        if failure is not None:
            self.logger.error(self.failed, extra={**failure, "errors": result.errors[:10]})
        self.logger.info(self.done, extra=result.report())
        return dict(result.response())


class BatchSummary(Measured, Protocol):
    """A batch run's summary (``changelake.summary.RunSummary``)."""

    def as_dict(self) -> dict[str, Any]: ...

    def raise_for_failures(self) -> None: ...


Summary = TypeVar("Summary", bound=BatchSummary)
Summary_co = TypeVar("Summary_co", bound=BatchSummary, covariant=True)


class BatchService(Protocol[Summary_co]):
    """What a batch function's handler delegates to."""

    def handle(self, event: Any, context: Any) -> Summary_co: ...


class BatchRun(Generic[Summary]):
    """The invocations of a batch function (compaction, the snapshot), wired once at cold start:
    each runs ``service`` recorded as a run of ``runs.kind``, publishes its metrics and
    ``<Kind>Succeeded``, gives its summary to ``warn`` (warnings of its own), logs it, and raises
    for its failures (so Lambda retries the event)."""

    def __init__(
        self,
        runs: RunRecorder,
        metrics: Metrics,
        logger: Logger,
        service: BatchService[Summary],
        outcome: Callable[[Summary, object], RunOutcome],
        *,
        warn: Callable[[Summary], None] | None = None,
    ) -> None:
        self.runs, self.metrics, self.logger = runs, metrics, logger
        self.service = service
        self.outcome = outcome
        self.warn = warn

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        with self.runs.recording(context.aws_request_id) as record:
            summary = self.service.handle(event, context)
            finish_run(self.metrics, record, self.runs.kind, self.outcome(summary, event), summary)
            if self.warn is not None:
                self.warn(summary)
            self.logger.info(f"{self.runs.kind} run", extra={"summary": summary.as_dict()})
            summary.raise_for_failures()
        return summary.as_dict()


def report_unrecorded_run(logger: Logger, metrics: Metrics, record: RunRecord, error: DeliveryError) -> None:
    """A run record that could not be stored: an ERROR log line with the record, and ``RunRecordsFailed``."""
    logger.error(
        "run record not stored",
        extra={"key": record.key, "error": str(error), "record": record.to_json().decode()},
    )
    metrics.add_metric(name="RunRecordsFailed", unit=MetricUnit.Count, value=1)


def run_recorder(store: S3Store, kind: RunKind, logger: Logger, metrics: Metrics) -> RunRecorder:
    """A batch function's ``RunRecorder``: a record it cannot store is reported by
    ``report_unrecorded_run`` (logged at ERROR, counted as ``RunRecordsFailed``)."""
    from changelake.runs import RunRecorder  # only the batch functions record runs

    return RunRecorder(
        store, kind, on_unrecorded=lambda record, error: report_unrecorded_run(logger, metrics, record, error)
    )
