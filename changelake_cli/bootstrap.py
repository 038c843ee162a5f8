"""``changelake bootstrap``: a table's items from before its stream, as the base of its snapshots.

Without point-in-time recovery, the table is scanned instead, by SnapshotFunction in parallel
segments at a limited read rate (``changelake.snapshot.scan_export``: the plan, the rate, when it
is exact), then the Scan is committed in the layout of an export and handed over the same way.

A table with point-in-time recovery is exported in full (``ExportTableToPointInTime``,
``DYNAMODB_JSON``) to the stack's bucket under ``exports/<table>`` (the one prefix SnapshotFunction
may read exports from), the export is waited for with its progress shown, and its
``manifest-summary.json`` is handed to SnapshotFunction as the bootstrap event (docs/contracts.md).
It is resumable: an export of that table to that prefix that is running or finished is found
(``ListExports``) and waited for or used, never started twice; a second bootstrap of a finished
export writes nothing new (SnapshotFunction's bootstrap is idempotent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from changelake.integrations.base import AwsAdapter
from changelake.snapshot.bootstrap import EXPORT_PREFIX
from changelake.snapshot.scan_export import ScanPlan
from changelake_cli.errors import UsageError

#: Seconds between two DescribeExport calls while an export runs. AWS exports take minutes (at
#: least about 5, even for an empty table; see docs/first-table.md); DescribeExport is free.
EXPORT_POLL_SECONDS = 10.0
#: Export states that still lead to a usable export (a FAILED one is passed over and a new one started).
_USABLE = ("IN_PROGRESS", "COMPLETED")


@dataclass(frozen=True)
class SourceTable:
    """What bootstrap and attach need to know of a user's table."""

    name: str
    arn: str
    stream_arn: str | None
    view_type: str | None
    point_in_time_recovery: bool
    size_bytes: int = 0
    provisioned_read_units: int = 0  # 0: on demand


@dataclass(frozen=True)
class ExportState:
    arn: str
    status: str  # IN_PROGRESS, COMPLETED or FAILED
    bucket: str
    prefix: str
    manifest: str | None  # the manifest-summary.json key, once AWS names it
    started: datetime | None
    items: int | None
    failure: str | None

    def summary_url(self) -> str:
        assert self.manifest is not None
        return f"s3://{self.bucket}/{self.manifest}"


def export_prefix(table: str) -> str:
    return f"{EXPORT_PREFIX}/{table}"


class Tables(AwsAdapter):
    """DynamoDB's control plane for the user's tables: describe, exports."""

    service = "dynamodb"

    def describe(self, name: str) -> SourceTable:
        table = self._request("describe_table", f"table {name}", TableName=name)["Table"]
        backups = self._request("describe_continuous_backups", f"table {name}", TableName=name)
        recovery = backups["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
        stream = table.get("StreamSpecification") or {}
        return SourceTable(
            name=name,
            arn=str(table["TableArn"]),
            stream_arn=table.get("LatestStreamArn") if stream.get("StreamEnabled") else None,
            view_type=stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
            point_in_time_recovery=recovery.get("PointInTimeRecoveryStatus") == "ENABLED",
            size_bytes=int(table.get("TableSizeBytes", 0)),
            provisioned_read_units=int(table.get("ProvisionedThroughput", {}).get("ReadCapacityUnits", 0)),
        )

    def find_export(self, table_arn: str, bucket: str, prefix: str) -> ExportState | None:
        """The newest running or finished export of the table to ``bucket``/``prefix``, if any."""
        found: list[ExportState] = []
        request: dict[str, Any] = {"TableArn": table_arn}
        while True:
            page = self._request("list_exports", f"exports of {table_arn}", **request)
            for summary in page.get("ExportSummaries", []):
                if summary.get("ExportStatus") in _USABLE:
                    state = self.describe_export(str(summary["ExportArn"]))
                    if (state.bucket, state.prefix) == (bucket, prefix) and state.status in _USABLE:
                        found.append(state)
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
        running = [state for state in found if state.status == "IN_PROGRESS"]
        candidates = running or found
        return max(
            candidates, key=lambda state: (state.started is not None, state.started or 0), default=None
        )

    def start_export(self, table_arn: str, bucket: str, prefix: str) -> ExportState:
        described = self._request(
            "export_table_to_point_in_time",
            f"export of {table_arn}",
            TableArn=table_arn,
            S3Bucket=bucket,
            S3Prefix=prefix,
            ExportFormat="DYNAMODB_JSON",
            ExportType="FULL_EXPORT",
        )["ExportDescription"]
        return _export_state(described)

    def enable_stream(self, name: str, had_stream: bool) -> None:
        """Turn the table's stream on with both images (off first when it has one of another view
        type), waiting for the table to be ACTIVE after each change."""
        if had_stream:
            self._request(
                "update_table", f"table {name}", TableName=name, StreamSpecification={"StreamEnabled": False}
            )
            self._wait_active(name)
        self._request(
            "update_table",
            f"table {name}",
            TableName=name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        self._wait_active(name)

    def _wait_active(self, name: str) -> None:
        self.client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 60}
        )

    def describe_export(self, arn: str) -> ExportState:
        return _export_state(
            self._request("describe_export", f"export {arn}", ExportArn=arn)["ExportDescription"]
        )


def _start_order(state: ExportState) -> tuple[bool, float]:
    return (state.started is not None, state.started.timestamp() if state.started else 0.0)


def _export_state(described: dict[str, Any]) -> ExportState:
    failure = described.get("FailureMessage")
    return ExportState(
        arn=str(described["ExportArn"]),
        status=str(described["ExportStatus"]),
        bucket=str(described.get("S3Bucket", "")),
        prefix=str(described.get("S3Prefix", "")),
        manifest=described.get("ExportManifest"),
        started=described.get("StartTime"),
        items=described.get("ItemCount"),
        failure=f"{described.get('FailureCode', 'Failed')}: {failure}" if failure else None,
    )


@dataclass(frozen=True)
class ExportOutcome:
    table: str
    export: ExportState
    resumed: bool  # an export already running or finished was used
    waited_seconds: float


def check_exportable(table: SourceTable) -> None:
    if not table.point_in_time_recovery:
        raise UsageError(
            f"table {table.name} has no point-in-time recovery, which an export needs: turn it on with "
            f"`aws dynamodb update-continuous-backups --table-name {table.name} "
            "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true` and run bootstrap again"
        )


def export_table(
    tables: Tables,
    table: SourceTable,
    bucket: str,
    *,
    progress: Callable[[ExportState, float], None],
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
    poll_seconds: float = EXPORT_POLL_SECONDS,
) -> ExportOutcome:
    """The table's export in ``bucket``, found or started, once it has finished (or failed)."""
    check_exportable(table)
    prefix = export_prefix(table.name)
    started = monotonic()
    state = tables.find_export(table.arn, bucket, prefix)
    resumed = state is not None
    if state is None:
        state = tables.start_export(table.arn, bucket, prefix)
    while state.status == "IN_PROGRESS":
        progress(state, monotonic() - started)
        sleep(poll_seconds)
        state = tables.describe_export(state.arn)
    progress(state, monotonic() - started)
    return ExportOutcome(table.name, state, resumed, round(monotonic() - started, 3))


def followed_streams(outputs: dict[str, str]) -> list[str]:
    """The streams the stack follows, from its ``FollowedStreamArns`` output (comma-separated:
    ChangeTable's, or those ``SourceStreamArns`` names)."""
    return [arn.strip() for arn in outputs.get("FollowedStreamArns", "").split(",") if arn.strip()]


def check_followed(table: SourceTable, stack_name: str, outputs: dict[str, str]) -> None:
    """Refuse a table the stack does not follow: its changes would never reach the lake."""
    if table.stream_arn in followed_streams(outputs):
        return
    raise UsageError(
        f"stack {stack_name} does not follow table {table.name}: attach it first "
        f"(`changelake attach --table {table.name}`, docs/first-table.md)"
    )


def scan_events(table: str, started: datetime, plan: ScanPlan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """SnapshotFunction's events for a bootstrap Scan started at ``started``: each segment's, then
    the commit's."""
    export_id = f"scan-{int(started.timestamp() * 1000):014d}"
    common = {"export_id": export_id, "segments": plan.segments}
    segments = [
        {
            "table": table,
            "scan": {**common, "segment": k, "read_units_per_second": plan.read_units_per_second},
        }
        for k in range(plan.segments)
    ]
    commit = {"table": table, "scan": {**common, "commit": True, "started": started.isoformat()}}
    return segments, commit


def crosses_midnight(started: datetime, seconds: float) -> bool:
    """Whether a Scan estimated to take ``seconds`` ends on a later UTC day than it starts (then it
    is not exact: changes of its first day before the items were read are not applied)."""
    return (started + timedelta(seconds=seconds)).astimezone(UTC).date() != started.astimezone(UTC).date()
