"""CompactionFunction: raw/ hourly partitions -> compacted/, each event_id exactly once.

Events: the EventBridge scheduled event (previous UTC day plus LOOKBACK_DAYS, and every older hour
a late-data marker names), the manual ``{"table", "dt", "hour"?}`` event, and the hand-off event it
sends itself when time runs short.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from changelake.compaction.compactor import Compactor
from changelake.compaction.service import CompactionService
from changelake.integrations.s3 import S3Store
from changelake.observability import BatchRun, run_recorder, traced
from changelake.runs import compaction_outcome
from changelake.settings import CompactionSettings

settings = CompactionSettings.from_environ()
logger, metrics = Logger(), Metrics()
service = CompactionService(
    Compactor(
        S3Store(settings.bucket_name),
        raw_prefix=settings.raw_prefix,
        compacted_prefix=settings.compacted_prefix,
        target_part_bytes=settings.target_part_bytes,
        memory_budget_bytes=settings.memory_budget_bytes,
        spill_dir=settings.spill_dir,
    ),
    lookback_days=settings.lookback_days,
    reserve_seconds=settings.reserve_seconds,
)
runs = run_recorder(S3Store(settings.bucket_name), "compaction", logger, metrics)
batch = BatchRun(runs, metrics, logger, service, compaction_outcome)


# Events hold item images and key values: logged only when LOG_ITEM_DATA says so (whatever
# POWERTOOLS_LOGGER_LOG_EVENT says).
@logger.inject_lambda_context(log_event=settings.log_item_data)
@traced
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return batch(event, context)
