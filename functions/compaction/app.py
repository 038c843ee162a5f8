"""CompactionFunction: raw/ hourly partitions -> compacted/, each event_id exactly once.

Events: the EventBridge scheduled event (previous UTC day plus LOOKBACK_DAYS, and every older hour
a late-data marker names; an hour at or above FAN_OUT_MIN_BYTES goes to the fan-out state machine),
the manual ``{"table", "dt", "hour"?}`` event, the hand-off event it sends itself when time runs
short, and the state machine's plan, slice and commit events (docs/operations.md).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from changelake.compaction.compactor import Compactor
from changelake.compaction.service import CompactionService, self_invoker
from changelake.integrations.lambda_invoke import LambdaInvoker
from changelake.integrations.s3 import S3Store
from changelake.integrations.step_functions import StateMachine
from changelake.late import LateMarkers
from changelake.observability import BatchRun, entry_point, run_recorder
from changelake.runs import compaction_outcome
from changelake.settings import CompactionSettings, build_limits, fan_out

settings = CompactionSettings.from_environ()
logger, metrics = Logger(), Metrics()
store = S3Store(settings.bucket_name)
service = CompactionService(
    Compactor(
        store,
        raw_prefix=settings.raw_prefix,
        compacted_prefix=settings.compacted_prefix,
        limits=build_limits(settings),
    ),
    markers=LateMarkers(store),
    lookback_days=settings.lookback_days,
    reserve_seconds=settings.reserve_seconds,
    invoker=self_invoker(LambdaInvoker()),
    fan_out=fan_out(settings),
    state_machine=StateMachine.named(settings.fan_out_state_machine_arn),
)
runs = run_recorder(store, "compaction", logger, metrics)
batch = BatchRun(runs, metrics, logger, service, compaction_outcome)


@entry_point(logger, metrics, log_item_data=settings.log_item_data)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return batch(event, context)
