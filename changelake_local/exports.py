"""DynamoDB full exports in the layout AWS writes, where moto writes less.

moto's ``ExportTableToPointInTime`` writes one data file under a folder of its own and no manifest,
its export ARN is not ``<table ARN>/export/<id>``, and ``DescribeExport`` names no manifest nor
export time. ``emulate_exports`` (applied by the local moto server, ``changelake_local.moto_server``)
makes it write what AWS documents: ``<prefix>/AWSDynamoDB/<export id>/manifest-summary.json``,
``manifest-files.json`` and gzip data files of ``{"Item": {...}}`` lines (one of them empty, as
exports of small tables have), and answer ``ExportManifest``, ``ExportTime``, ``StartTime`` and
``EndTime``. ``export_objects`` builds those objects; the local runner's own exports
(``changelake_local.snapshots.write_export``) use it too. Nothing here is product code.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def export_id_at(at: datetime, salt: str = "") -> str:
    """An export ID in AWS's form (``01764971234567-1a2b3c4d``: epoch milliseconds, 8 hex digits)."""
    millis = int(at.timestamp() * 1000)
    return f"{millis:014d}-{hashlib.sha256(f'{millis}{salt}'.encode()).hexdigest()[:8]}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def export_objects(
    *,
    table_arn: str,
    bucket: str,
    prefix: str,
    export_id: str,
    lines: list[str],
    start: datetime,
    end: datetime,
) -> dict[str, bytes]:
    """Key -> body of a finished full export of ``lines`` (each ``{"Item": ...}`` JSON), the
    summary last (readers look for it once the rest is there)."""
    folder = f"{prefix}/AWSDynamoDB/{export_id}"
    parts = [lines[: len(lines) // 2], [], lines[len(lines) // 2 :]]
    objects: dict[str, bytes] = {}
    files = []
    for index, part in enumerate(parts):
        body = gzip.compress("".join(line + "\n" for line in part).encode(), mtime=0)
        key = f"{folder}/data/{hashlib.sha256(body).hexdigest()[:26]}-{index}.json.gz"
        objects[key] = body
        digest = hashlib.md5(body, usedforsecurity=False)
        files.append(
            {
                "itemCount": len(part),
                "md5Checksum": base64.b64encode(digest.digest()).decode(),
                "etag": digest.hexdigest(),
                "dataFileS3Key": key,
            }
        )
    objects[f"{folder}/manifest-files.json"] = "".join(json.dumps(entry) + "\n" for entry in files).encode()
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{table_arn}/export/{export_id}",
        "startTime": _iso(start),
        "endTime": _iso(end),
        "tableArn": table_arn,
        "exportTime": _iso(start),
        "s3Bucket": bucket,
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "manifestFilesS3Key": f"{folder}/manifest-files.json",
        "itemCount": len(lines),
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    objects[f"{folder}/manifest-summary.json"] = json.dumps(summary).encode()
    return objects


def emulate_exports() -> None:
    """Patch moto's table export (in this process) to write and describe exports as AWS does."""
    from moto.dynamodb.models.table_export import TableExport
    from moto.dynamodb.models.utilities import dynamo_json_dump

    real_init = TableExport.__init__
    real_response = TableExport.response

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.start_time = datetime.now(UTC)
        self.end_time = None
        self.export_id = export_id_at(self.start_time, self.arn)
        self.arn = f"{self.table.table_arn}/export/{self.export_id}"

    def backup(self: Any, s3_backend: Any) -> None:
        lines = [dynamo_json_dump(item.to_json(root_attr_name="Item")) for item in self.table.all_items()]
        self.item_count = len(lines)
        self.processed_bytes = sum(len(line) for line in lines)
        self.end_time = datetime.now(UTC)
        objects = export_objects(
            table_arn=self.table.table_arn,
            bucket=self.s3_bucket,
            prefix=self.s3_prefix,
            export_id=self.export_id,
            lines=lines,
            start=self.start_time,
            end=self.end_time,
        )
        for key, body in objects.items():
            s3_backend.put_object(bucket_name=self.s3_bucket, key_name=key, value=body)
        self.status = "COMPLETED"

    def response(self: Any) -> dict[str, Any]:
        described: dict[str, Any] = real_response(self)
        described.update(
            ExportManifest=f"{self.s3_prefix}/AWSDynamoDB/{self.export_id}/manifest-summary.json",
            ExportTime=self.start_time,
            StartTime=self.start_time,
        )
        if self.end_time is not None:
            described["EndTime"] = self.end_time
        return described

    TableExport.__init__ = init  # type: ignore[method-assign]
    TableExport._backup_to_s3_file = backup  # type: ignore[method-assign]
    TableExport.response = response  # type: ignore[method-assign]
