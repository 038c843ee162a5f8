"""Bootstrap without point-in-time recovery: a parallel Scan of the table, written in the layout of
a DynamoDB full export, so ``changelake.snapshot.bootstrap`` reads it like one.

Two manual events of SnapshotFunction (docs/contracts.md), sent by ``changelake bootstrap``:

* ``{"table", "scan": {"export_id", "segments": N, "segment": K, "read_units_per_second": R}}``
  scans segment K of N (``Scan`` with ``Segment``/``TotalSegments``) at no more than R read units a
  second (a token bucket on the ``ConsumedCapacity`` each page returns) and writes
  ``exports/<table>/AWSDynamoDB/<export id>/data/segment-KKKK.json.gz`` (gzip lines of
  ``{"Item": {...}}``) and its manifest entry ``.../segments/KKKK.json``; it publishes nothing.
* ``{"table", "scan": {"export_id", "segments": N, "commit": true, "started": ISO time}}`` checks
  that every segment is there and writes ``manifest-files.json`` and then
  ``manifest-summary.json``, whose ``exportTime`` is the time the Scan finished (the commit), so
  the table's first snapshot day is the day the Scan finished and that day's changes are applied
  on top. That is exact when the stream was on before the Scan began and the Scan ran within one
  UTC day (an item read late may hold a change of that day; changes of the day before its start
  are not applied again): ``changelake bootstrap`` warns when it starts near midnight.

Delivery guarantee: a segment rewrites the same keys when run again (its items may differ if the
table changed meanwhile, which the changes applied on top make good); the summary is written last,
so a bootstrap never reads a Scan that is not whole.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr, field_validator

from changelake.exceptions import InvalidEventError, ObjectNotFoundError
from changelake.formats.lambda_events import TableEvent, validated_event
from changelake.integrations.base import AwsAdapter, ObjectStore
from changelake.snapshot.bootstrap import EXPORT_PREFIX

#: Share of a provisioned table's read capacity a bootstrap Scan may use, all segments together:
#: a quarter leaves the application three quarters (and its burst capacity) untouched.
SCAN_READ_SHARE = 0.25
#: On-demand tables have no capacity to take a share of: the Scan reads at most this many read units
#: a second in all (about 8 MB/s of items, eventually consistent), well under the 40,000 an
#: on-demand table serves at once, and about $0.13 a GB at us-east-1's on-demand read price.
ON_DEMAND_SCAN_READ_UNITS = 1000.0
#: An eventually consistent Scan reads 8 KB per read unit (4 KB per unit, half a unit each).
BYTES_PER_READ_UNIT = 8192
#: Each segment is sized to finish in about 10 minutes at its rate (SnapshotFunction's limit is 15)...
SEGMENT_SECONDS = 600
#: ...and to at most this many bytes of items, since a segment's gzip file is built in memory before
#: its one PUT: DynamoDB JSON of 256 MiB of items compresses to a few tens of MB (about 100 MB if it
#: would not compress at all), well inside SnapshotFunction's 1,769 MB. At 10 minutes, an on-demand
#: segment would read 2.46 GB (500 units/s x 8 KB x 600 s), which no function holds.
MAX_SEGMENT_BYTES = 256 * 1024 * 1024
#: SnapshotFunction's reserved concurrency: segments run this many at a time.
SCAN_CONCURRENCY = 2
MAX_SEGMENTS = 1000
_EXPORT_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}\Z")


@dataclass(frozen=True)
class ScanPlan:
    segments: int
    read_units_per_second: float  # per segment
    seconds: float  # estimated, all segments


def scan_plan(table_bytes: int, provisioned_read_units: int, concurrency: int = SCAN_CONCURRENCY) -> ScanPlan:
    """How to scan a table of ``table_bytes``: segments and each one's read rate.

    ``provisioned_read_units`` is 0 for an on-demand table."""
    total = (
        provisioned_read_units * SCAN_READ_SHARE if provisioned_read_units > 0 else ON_DEMAND_SCAN_READ_UNITS
    )
    per_segment = total / concurrency
    segment_bytes = min(per_segment * BYTES_PER_READ_UNIT * SEGMENT_SECONDS, MAX_SEGMENT_BYTES)
    segments = min(MAX_SEGMENTS, max(concurrency, math.ceil(table_bytes / segment_bytes)))
    return ScanPlan(segments, per_segment, table_bytes / (total * BYTES_PER_READ_UNIT))


class ScanSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    export_id: StrictStr
    segments: int = Field(ge=1, le=MAX_SEGMENTS)
    segment: int | None = Field(default=None, ge=0)
    read_units_per_second: float | None = Field(default=None, gt=0)
    commit: bool = False
    started: AwareDatetime | None = None

    @field_validator("export_id")
    @classmethod
    def _export_id(cls, value: str) -> str:
        if _EXPORT_ID.match(value) is None:
            raise ValueError("must be 1 to 64 letters, digits, '.', '_' or '-'")
        return value


class ScanEvent(TableEvent):
    """A bootstrap Scan's event: the table (validated as every manual event's) and its scan."""

    scan: ScanSpec

    @property
    def folder(self) -> str:
        return f"{EXPORT_PREFIX}/{self.table}/AWSDynamoDB/{self.scan.export_id}"

    def segment_keys(self, segment: int) -> tuple[str, str]:
        """The segment's data file and its manifest entry."""
        return (
            f"{self.folder}/data/segment-{segment:04d}.json.gz",
            f"{self.folder}/segments/{segment:04d}.json",
        )

    @property
    def summary_url(self) -> str:
        return f"{self.folder}/manifest-summary.json"


def parse_scan_event(event: dict[str, Any]) -> ScanEvent:
    parsed = validated_event(ScanEvent, event)
    spec = parsed.scan
    if spec.commit == (spec.segment is not None):
        raise InvalidEventError("scan", "takes either segment (with read_units_per_second) or commit")
    if spec.segment is not None and (spec.segment >= spec.segments or spec.read_units_per_second is None):
        raise InvalidEventError("scan.segment", "must be below segments, with read_units_per_second")
    if spec.commit and spec.started is None:
        raise InvalidEventError("scan.started", "the time the Scan started is needed to commit it")
    return parsed


class TokenBucket:
    """At most ``rate`` units a second on average, bursts up to one second's worth; a page's
    consumed units are taken after it is read, and the next read waits until the debt is paid."""

    def __init__(self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.tokens, self.at = rate, clock()

    def take(self, units: float) -> None:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate) - units
        self.at = now
        if self.tokens < 0:
            self.sleep(-self.tokens / self.rate)


def _export_value(value: Any) -> str:
    """Binary in a Scan result (bytes) as DynamoDB JSON has it in an export: base64 text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"not DynamoDB JSON: {type(value).__name__}")


class TableScanner(AwsAdapter):
    """``Scan`` and ``DescribeTable`` of the table being bootstrapped."""

    service = "dynamodb"

    def pages(self, table: str, segment: int, segments: int) -> Any:
        request: dict[str, Any] = {
            "TableName": table,
            "Segment": segment,
            "TotalSegments": segments,
            "ReturnConsumedCapacity": "TOTAL",
        }
        while True:
            page = self._request("scan", f"dynamodb:table/{table}", **request)
            yield page.get("Items", []), float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def table_arn(self, table: str) -> str:
        return str(
            self._request("describe_table", f"dynamodb:table/{table}", TableName=table)["Table"]["TableArn"]
        )


class ScanExporter:
    """Runs the scan events (see the module docstring)."""

    def __init__(
        self,
        store: ObjectStore,
        scanner: TableScanner | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.scanner = store, scanner or TableScanner()
        self.clock, self.monotonic, self.sleep = clock, monotonic, sleep

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        parsed = parse_scan_event(event)
        return self.commit(parsed) if parsed.scan.commit else self.segment(parsed)

    def segment(self, event: ScanEvent) -> dict[str, Any]:
        spec = event.scan
        assert spec.segment is not None
        assert spec.read_units_per_second is not None
        bucket = TokenBucket(spec.read_units_per_second, self.monotonic, self.sleep)
        compressed = io.BytesIO()
        count, units = 0, 0.0
        # Lines go through gzip as they are read, so only the compressed file is held in memory.
        with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0) as segment_file:
            for items, consumed in self.scanner.pages(event.table, spec.segment, spec.segments):
                for item in items:
                    line = json.dumps({"Item": item}, default=_export_value, ensure_ascii=False)
                    segment_file.write((line + "\n").encode())
                    count += 1
                units += consumed
                bucket.take(consumed)
        body = compressed.getvalue()
        data_key, entry_key = event.segment_keys(spec.segment)
        self.store.put(data_key, body)
        digest = hashlib.md5(body, usedforsecurity=False)
        entry = {
            "itemCount": count,
            "md5Checksum": base64.b64encode(digest.digest()).decode(),
            "etag": digest.hexdigest(),
            "dataFileS3Key": data_key,
        }
        self.store.put(entry_key, json.dumps(entry).encode(), content_type="application/json")
        return {"table": event.table, "segment": spec.segment, "items": count, "read_units": units}

    def commit(self, event: ScanEvent) -> dict[str, Any]:
        spec = event.scan
        assert spec.started is not None
        entries = []
        for segment in range(spec.segments):
            key = event.segment_keys(segment)[1]
            try:
                entries.append(json.loads(self.store.get(key)))
            except ObjectNotFoundError:
                raise InvalidEventError(
                    "scan", f"segment {segment} of {spec.segments} was not scanned ({key})"
                ) from None
        self.store.put(
            f"{event.folder}/manifest-files.json",
            "".join(json.dumps(entry) + "\n" for entry in entries).encode(),
            content_type="application/json",
        )
        table_arn = self.scanner.table_arn(event.table)
        finished = self.clock()
        items = sum(int(entry["itemCount"]) for entry in entries)
        summary = {
            "version": "2020-06-30",
            "exportArn": f"{table_arn}/scan/{spec.export_id}",
            "startTime": _iso(spec.started),
            "endTime": _iso(finished),
            "tableArn": table_arn,
            "exportTime": _iso(finished),
            "s3Bucket": self.store.bucket,
            "s3Prefix": f"{EXPORT_PREFIX}/{event.table}",
            "manifestFilesS3Key": f"{event.folder}/manifest-files.json",
            "itemCount": items,
            "outputFormat": "DYNAMODB_JSON",
            "exportType": "FULL_EXPORT",
        }
        self.store.put(event.summary_url, json.dumps(summary).encode(), content_type="application/json")
        return {
            "table": event.table,
            "segments": spec.segments,
            "items": items,
            "bootstrap": f"s3://{self.store.bucket}/{event.summary_url}",
        }


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
