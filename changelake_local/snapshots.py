"""The snapshot layer in a local run: a bootstrap export, and the check of every day's snapshot.

Bootstrap: moto's ``ExportTableToPointInTime`` writes no manifests, so the runner writes the export
itself, in the layout AWS documents (``manifest-summary.json``, ``manifest-files.json``, gzip
data files of ``{"Item": ...}`` lines, one of them empty), from a Scan of ``ChangeTable`` taken at a
known time (the ``exportTime``), into the DataBucket, and invokes SnapshotFunction with the
bootstrap event. A Scan during writes is what an export is too: the state at about that time;
changes from before it are applied on top again, which changes nothing (images are whole items).

Check: the snapshot of the last day must equal a Scan of ``ChangeTable`` taken when the writes
stopped, item for item with exact values (numbers as ``Decimal``, sets in any order); every other
day must equal the table replayed from raw/ up to its end (per item, the change with the highest
sequence number; a REMOVE leaves it absent). Items whose change was quarantined (a poison record
the test injects) are in the table but not in the lake; they are left out of the comparison and
counted.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from changelake.snapshot.bootstrap import EXPORT_PREFIX
from changelake_local.aws import client
from changelake_local.endpoint import ACCOUNT, REGION
from changelake_local.exports import export_id_at, export_objects

Key = tuple[tuple[str, Any], ...]
SNAPSHOT_PREFIX = "snapshot"


class _Set(list[Any]):
    """A DynamoDB set read from the Scan, sorted: its order is not part of its value."""


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode()


#: A Scan attribute (boto3 low-level: binary as bytes) as the value to compare, by type tag: numbers
#: as Decimal, binary as base64 text, sets sorted (their order is not part of the value).
_PLAIN: dict[str, Any] = {
    "S": lambda value: value,
    "BOOL": lambda value: value,
    "NULL": lambda value: None,
    "N": Decimal,
    "B": _base64,
    "M": lambda value: {name: _plain(item) for name, item in value.items()},
    "L": lambda value: [_plain(item) for item in value],
    "SS": lambda value: _Set(sorted(value)),
    "NS": lambda value: _Set(sorted(Decimal(item) for item in value)),
    "BS": lambda value: _Set(sorted(_base64(item) for item in value)),
}


def _plain(attribute: dict[str, Any]) -> Any:
    ((tag, value),) = attribute.items()
    return _PLAIN[tag](value)


def _dynamodb_json(attribute: dict[str, Any]) -> dict[str, Any]:
    """A Scan attribute as DynamoDB JSON in an export (binary as base64 text)."""
    ((tag, value),) = attribute.items()
    if tag == "B":
        return {"B": _base64(value)}
    if tag == "BS":
        return {"BS": [_base64(item) for item in value]}
    if tag == "M":
        return {"M": {name: _dynamodb_json(item) for name, item in value.items()}}
    if tag == "L":
        return {"L": [_dynamodb_json(item) for item in value]}
    return {tag: value}


def _sets_sorted(value: Any, like: Any) -> Any:
    """``value`` (a snapshot item's plain JSON) with the lists that are sets in ``like`` sorted."""
    if isinstance(like, dict) and isinstance(value, dict):
        return {name: _sets_sorted(item, like.get(name)) for name, item in value.items()}
    if isinstance(like, _Set) and isinstance(value, list):
        return sorted(value)
    if isinstance(like, list) and isinstance(value, list):
        return [_sets_sorted(item, other) for item, other in zip(value, like, strict=False)]
    return value


def scan(endpoint: str, table: str) -> list[dict[str, Any]]:
    """Every item of ``table`` (boto3 low-level form)."""
    paginator = client("dynamodb", endpoint).get_paginator("scan")
    return [item for page in paginator.paginate(TableName=table) for item in page.get("Items", [])]


def item_key(keys: dict[str, Any]) -> Key:
    return tuple(sorted(keys.items()))


def write_export(endpoint: str, bucket: str, table: str, items: list[dict[str, Any]], at: datetime) -> str:
    """``items`` as a DynamoDB full export of ``table`` at ``at``; returns its manifest-summary URL."""
    s3 = client("s3", endpoint)
    export_id = export_id_at(at)
    lines = [
        json.dumps({"Item": {k: _dynamodb_json(v) for k, v in item.items()}}, ensure_ascii=False)
        for item in items
    ]
    prefix = f"{EXPORT_PREFIX}/{table}"
    objects = export_objects(
        table_arn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}",
        bucket=bucket,
        prefix=prefix,
        export_id=export_id,
        lines=lines,
        start=at,
        end=datetime.now(UTC),
    )
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{prefix}/AWSDynamoDB/{export_id}/manifest-summary.json"


@dataclass
class SnapshotVerification:
    """What the check of the snapshot layer found; ``ok`` when every list is empty."""

    table: str
    last_day: str | None = None
    items: int = 0  # in the last day's snapshot
    days: dict[str, int] = field(default_factory=dict)  # items per day
    missing_days: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the Scan (or replay), not in the snapshot
    unexpected: list[str] = field(default_factory=list)  # in the snapshot, not in the Scan (or replay)
    different: list[str] = field(default_factory=list)  # in both, other values
    twice: list[str] = field(default_factory=list)
    quarantined_items: int = 0  # left out: their change is in quarantine, not in the lake

    @property
    def ok(self) -> bool:
        return self.last_day is not None and not (
            self.missing_days or self.missing or self.unexpected or self.different or self.twice
        )


class SnapshotChecker:
    """Reads raw/, quarantine/ and snapshot/ of one table from the bucket and checks every day."""

    def __init__(
        self, endpoint: str, bucket: str, table: str, *, key_names: tuple[str, ...] = ("pk", "sk")
    ) -> None:
        self.s3 = client("s3", endpoint)
        self.bucket = bucket
        self.table = table
        self.key_names = key_names

    def _keys(self, prefix: str) -> Iterator[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def _lines(self, key: str) -> list[dict[str, Any]]:
        body = gzip.decompress(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        return [json.loads(line, parse_float=Decimal, parse_int=Decimal) for line in body.splitlines()]

    def snapshot_days(self) -> dict[str, list[dict[str, Any]]]:
        """Each day's snapshot lines, read as a reader globbing ``dt=*/*.jsonl.gz`` does."""
        days: dict[str, list[dict[str, Any]]] = {}
        prefix = f"{SNAPSHOT_PREFIX}/{self.table}/dt="
        for key in self._keys(prefix):
            day, _, name = key[len(prefix) :].partition("/")
            # files of the day folder itself: a sub-folder's (the removed keys' _removed/) are not data
            if name.endswith(".jsonl.gz") and not name.startswith(("_", ".")) and "/" not in name:
                days.setdefault(day, []).extend(self._lines(key))
        return days

    def replay(self) -> list[dict[str, Any]]:
        """Every change in raw/ of the table, in no particular order."""
        return [line for key in self._keys(f"raw/{self.table}/") for line in self._lines(key)]

    def quarantined_keys(self) -> set[Key]:
        keys = set()
        for key in self._keys(f"quarantine/{self.table}/"):
            for entry in self._lines(key):
                record = entry.get("record")
                stream_keys = record.get("dynamodb", {}).get("Keys") if isinstance(record, dict) else None
                if isinstance(stream_keys, dict):
                    keys.add(
                        item_key({name: next(iter(value.values())) for name, value in stream_keys.items()})
                    )
        return keys

    def verify(self, final_scan: list[dict[str, Any]]) -> SnapshotVerification:
        result = SnapshotVerification(self.table)
        days = self.snapshot_days()
        changes = self.replay()
        raw_days = sorted({change["event_time"][:10] for change in changes})
        if not days:
            result.missing_days = raw_days
            return result
        first, result.last_day = min(days), max(days)
        result.missing_days = [day for day in raw_days if day >= first and day not in days]
        skipped = self.quarantined_keys()
        for day, lines in sorted(days.items()):
            result.days[day] = len(lines)
            if day == result.last_day:
                plain = [{name: _plain(value) for name, value in item.items()} for item in final_scan]
                expected = {item_key({name: item[name] for name in self.key_names}): item for item in plain}
            else:
                expected = _replayed(changes, day)
            self._compare(result, day, lines, expected, skipped)
        result.items = result.days[result.last_day]
        return result

    @staticmethod
    def _compare(
        result: SnapshotVerification,
        day: str,
        lines: list[dict[str, Any]],
        expected: dict[Key, dict[str, Any]],
        skipped: set[Key],
    ) -> None:
        actual: dict[Key, dict[str, Any]] = {}
        for line in lines:
            key = item_key(line["keys"])
            if key in actual:
                result.twice.append(f"{day} {key}")
            actual[key] = line["item"]
        for key in skipped & (set(expected) | set(actual)):
            result.quarantined_items += 1
            expected.pop(key, None)
            actual.pop(key, None)
        result.missing += [f"{day} {key}" for key in sorted(set(expected) - set(actual))]
        result.unexpected += [f"{day} {key}" for key in sorted(set(actual) - set(expected))]
        result.different += [
            f"{day} {key}"
            for key in sorted(set(actual) & set(expected))
            if _sets_sorted(actual[key], expected[key]) != expected[key]
        ]


def _replayed(changes: list[dict[str, Any]], day: str) -> dict[Key, dict[str, Any]]:
    """The table at the end of ``day`` replayed from the change records (values exactly as recorded)."""
    latest: dict[Key, dict[str, Any]] = {}
    for change in changes:
        if change["event_time"][:10] > day:
            continue
        key = item_key(change["keys"])
        if key not in latest or int(change["sequence_number"]) > int(latest[key]["sequence_number"]):
            latest[key] = change
    return {key: change["new_image"] for key, change in latest.items() if change["event_name"] != "REMOVE"}
