"""DlqRedriveFunction: replays failed stream ranges, then moves ChangeDLQ back to ChangeQueue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from changelake.ingest.consumer import consumer_from_settings
from changelake.integrations.lambda_invoke import LambdaInvoker
from changelake.integrations.s3 import S3Store
from changelake.integrations.sqs import SqsQueue
from changelake.integrations.streams import StreamReader
from changelake.observability import entry_point, finish_run, run_recorder
from changelake.recovery.async_failures import AsyncFailureReplayer
from changelake.recovery.dlq import DlqRedriver
from changelake.recovery.service import RedriveService
from changelake.recovery.stream_failures import StreamFailureReplayer
from changelake.runs import redrive_outcome
from changelake.settings import RedriveSettings

settings = RedriveSettings.from_environ()
logger, metrics = Logger(), Metrics()
store, queue = S3Store(settings.bucket_name), SqsQueue(settings.queue_url)
consumer = consumer_from_settings(settings, queue, store)
replayer = None
if settings.stream_failure_queue_url:
    replayer = StreamFailureReplayer(
        SqsQueue(settings.stream_failure_queue_url),
        consumer,
        StreamReader(),
        store,
        lost_prefix=settings.lost_prefix,
        quarantine_prefix=settings.quarantine_prefix,
    )
async_replayer = None
if settings.async_failure_queue_url:
    async_replayer = AsyncFailureReplayer(
        SqsQueue(settings.async_failure_queue_url),
        LambdaInvoker(),
        store,
        quarantine_prefix=settings.quarantine_prefix,
    )
service = RedriveService(
    DlqRedriver(SqsQueue(settings.dlq_url), queue, max_redrives=settings.max_redrives),
    replayer,
    async_replayer,
)
runs = run_recorder(store, "redrive", logger, metrics)


@entry_point(logger, metrics, log_item_data=settings.log_item_data)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with runs.recording(context.aws_request_id) as run:
        summary = service.handle(event, context)
        finish_run(metrics, run, "redrive", redrive_outcome(summary.as_dict()), summary)
    logger.info("redrive finished", extra={"summary": summary.as_dict()})
    return summary.as_dict()
