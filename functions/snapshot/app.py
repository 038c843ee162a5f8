"""SnapshotFunction: raw/ changes -> snapshot/, the table as of the end of each UTC day.

Events: the EventBridge scheduled event (every table's previous UTC day, with the look-back window
and the days named by late markers; a day past the fan-out threshold is handed to the state
machine), the manual ``{"table", "dt"}`` event (that day and every missing or stale day before it),
the fan-out's ``{"table", "dt", "plan": true}``, ``{..., "buckets": N, "bucket": K}`` and
``{..., "buckets": N, "commit": true}`` (``changelake.snapshot.bucketed``),
``{"table", "bootstrap": "s3://.../manifest-summary.json"}``, and the bootstrap Scan's
``{"table", "scan": {...}}`` (a segment, or the commit of all of them:
``changelake.snapshot.scan_export``).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from changelake.integrations.s3 import S3Store
from changelake.integrations.step_functions import StateMachine
from changelake.late import LateMarkers
from changelake.observability import BatchRun, entry_point, run_recorder
from changelake.runs import snapshot_outcome
from changelake.settings import SnapshotSettings, build_limits, fan_out
from changelake.snapshot.builder import SnapshotBuilder
from changelake.snapshot.parquet import ParquetSnapshots, layouts_from_directory
from changelake.snapshot.service import SnapshotService, SnapshotSummary

if TYPE_CHECKING:
    from changelake.snapshot.scan_export import ScanExporter

settings = SnapshotSettings.from_environ()
logger, metrics = Logger(), Metrics()
store = S3Store(settings.bucket_name)
service = SnapshotService(
    SnapshotBuilder(
        store,
        raw_prefix=settings.raw_prefix,
        compacted_prefix=settings.compacted_prefix,
        snapshot_prefix=settings.snapshot_prefix,
        limits=build_limits(settings),
        derived=[
            ParquetSnapshots(
                store,
                layouts_from_directory(settings.schema_dir),
                prefix=settings.parquet_prefix,
                scratch_dir=settings.spill_dir,
            )
        ],
    ),
    markers=LateMarkers(store),
    lookback_days=settings.lookback_days,
    reserve_seconds=settings.reserve_seconds,
    fan_out=fan_out(settings),
    state_machine=StateMachine.named(settings.fan_out_state_machine_arn),
)


def _warn_of_a_gap(summary: SnapshotSummary) -> None:
    if summary.bootstrap is not None and summary.bootstrap["gap"]["missing_possible"]:
        logger.warning("bootstrap gap: changes after the export may be missing", extra=summary.bootstrap)


runs = run_recorder(store, "snapshot", logger, metrics)
batch = BatchRun(runs, metrics, logger, service, snapshot_outcome, warn=_warn_of_a_gap)


@cache
def _scans() -> ScanExporter:
    # Imported here: only the bootstrap Scan's events need it, the nightly run's cold start does not.
    from changelake.snapshot.scan_export import ScanExporter

    return ScanExporter(store)


@entry_point(logger, metrics, log_item_data=settings.log_item_data)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and "scan" in event:  # a bootstrap Scan's segment or commit: no snapshot run
        result = _scans().handle(event)
        logger.info("bootstrap scan", extra={"summary": result})
        return result
    return batch(event, context)
