"""Watching and checking the lake in the DataBucket: raw/, compacted/, quarantine/.

``LakeWatcher`` reads each new object once (event IDs per layer, files per partition, the time a
change first became visible in raw/) and keeps the counts the live display and the verification
use. ``verify`` compares them with the changes seen on the stream.
"""

from __future__ import annotations

import gzip
import json
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from changelake_local.aws import client

LAYERS = ("raw", "compacted", "snapshot", "quarantine", "lost")
DATA_SUFFIX = ".jsonl.gz"


def _lines(payload: bytes) -> list[dict[str, Any]]:
    text = gzip.decompress(payload).decode() if payload[:2] == b"\x1f\x8b" else payload.decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _quarantined_id(entry: dict[str, Any]) -> str | None:
    record = entry.get("record")
    if isinstance(record, dict):
        for name in ("eventID", "event_id"):
            if isinstance(record.get(name), str):
                return str(record[name])
    return None


class StreamLedger:
    """The changes the stream delivered, by event ID, with their creation time (epoch seconds)."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe(self, record: dict[str, Any]) -> None:
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        with self._lock:
            self.created.setdefault(record["eventID"], float(created) if created is not None else time.time())

    def ids(self) -> set[str]:
        with self._lock:
            return set(self.created)

    def __len__(self) -> int:
        return len(self.created)


@dataclass
class LakeState:
    raw_ids: set[str] = field(default_factory=set)
    raw_records: int = 0
    raw_files: int = 0
    files_per_partition: Counter[str] = field(default_factory=Counter)
    compacted_counts: Counter[str] = field(default_factory=Counter)
    compacted_files: int = 0
    #: Distinct quarantined records by ``record_id`` (a retried poison record is written again).
    quarantined: dict[str, dict[str, Any]] = field(default_factory=dict)
    quarantined_ids: set[str] = field(default_factory=set)
    lost_reports: int = 0
    lags: list[float] = field(default_factory=list)
    first_raw_at: float | None = None
    last_raw_at: float | None = None


class LakeWatcher:
    """Incremental reader of the bucket's layers (call ``scan`` periodically, from one thread)."""

    def __init__(self, endpoint: str, bucket: str, ledger: StreamLedger) -> None:
        self.s3 = client("s3", endpoint)
        self.bucket = bucket
        self.ledger = ledger
        self.state = LakeState()
        self._seen: dict[str, str] = {}  # key -> ETag already read
        self._compacted: dict[str, Counter[str]] = {}
        self._tables: set[str] = set()

    def _list(self, prefix: str) -> dict[str, dict[str, Any]]:
        paginator = self.s3.get_paginator("list_objects_v2")
        return {
            item["Key"]: item
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        }

    def _read(self, key: str) -> list[dict[str, Any]]:
        return _lines(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def _recent_raw(self, now: float) -> dict[str, dict[str, Any]]:
        """raw/ of the tables seen so far, only this hour's and the last hour's partitions (UTC)."""
        listed: dict[str, dict[str, Any]] = {}
        for table in sorted(self._tables):
            for hour in sorted({datetime.fromtimestamp(now - back, UTC) for back in (3600, 0)}):
                listed |= self._list(f"raw/{table}/dt={hour:%Y-%m-%d}/hour={hour:%H}/")
        return listed

    def scan(self, *, full: bool = True) -> LakeState:  # noqa: PLR0912 - one pass per layer
        """Read what is new. ``full=False`` lists only the recent partitions of raw/ (a listing of
        the whole layer grows with the lake); late files in older partitions, such as redriven
        changes, are read at the next full scan, and the final scans are full."""
        state = self.state
        now = time.time()
        raw = self._list("raw/") if full or not self._tables else self._recent_raw(now)
        for key, item in raw.items():
            if not key.endswith(DATA_SUFFIX) or self._seen.get(key) == item["ETag"]:
                continue
            self._seen[key] = item["ETag"]
            self._tables.add(key.split("/")[1])
            state.raw_files += 1
            state.files_per_partition["/".join(key.split("/")[1:4])] += 1
            for line in self._read(key):
                event_id = line["event_id"]
                state.raw_records += 1
                if event_id not in state.raw_ids:
                    state.raw_ids.add(event_id)
                    created = self.ledger.created.get(event_id)
                    if created is not None:
                        state.lags.append(max(0.0, now - created))
            state.first_raw_at = state.first_raw_at or now
            state.last_raw_at = now
        # what Athena and DuckDB read: the data files (not the compaction's _manifest.json)
        listed = {key: item for key, item in self._list("compacted/").items() if key.endswith(DATA_SUFFIX)}
        for key in set(self._compacted) - set(listed):
            del self._compacted[key]
        for key, item in listed.items():
            if self._seen.get(key) == item["ETag"]:
                continue
            self._seen[key] = item["ETag"]
            self._compacted[key] = Counter(line["event_id"] for line in self._read(key))
        state.compacted_counts = Counter()
        for counts in self._compacted.values():
            state.compacted_counts.update(counts)
        state.compacted_files = len(self._compacted)
        for key, item in self._list("quarantine/").items():
            if self._seen.get(key) == item["ETag"]:
                continue
            self._seen[key] = item["ETag"]
            for index, entry in enumerate(self._read(key)):
                record_id = str(entry.get("record_id") or f"{key}#{index}")
                state.quarantined.setdefault(
                    record_id, {"key": key, "reason": entry.get("reason"), "id": _quarantined_id(entry)}
                )
                if (event_id := _quarantined_id(entry)) is not None:
                    state.quarantined_ids.add(event_id)
        state.lost_reports = len(self._list("lost/"))
        return state

    def download(self, lake_dir: Path) -> int:
        """Copy every layer to ``lake_dir/<layer>/...`` (replacing what an earlier run left)."""
        count = 0
        for layer in LAYERS:
            target = lake_dir / layer
            if target.exists():
                shutil.rmtree(target)
            for key in self._list(f"{layer}/"):
                path = lake_dir / key
                path.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(self.bucket, key, str(path))
                count += 1
        return count


@dataclass
class Verification:
    expected: int
    missing_in_raw: list[str]
    missing_in_compacted: list[str]
    duplicated_in_compacted: list[str]
    unexpected_in_compacted: list[str]
    quarantined: list[str]

    @property
    def ok(self) -> bool:
        return not (
            self.missing_in_raw
            or self.missing_in_compacted
            or self.duplicated_in_compacted
            or self.unexpected_in_compacted
        )


def verify(expected: set[str], state: LakeState) -> Verification:
    """Every expected change in raw/ (or quarantined) and exactly once in compacted/."""
    stored = state.raw_ids | state.quarantined_ids
    compacted = state.compacted_counts
    return Verification(
        expected=len(expected),
        missing_in_raw=sorted(expected - stored),
        missing_in_compacted=sorted(state.raw_ids - set(compacted)),
        duplicated_in_compacted=sorted(event_id for event_id, count in compacted.items() if count > 1),
        unexpected_in_compacted=sorted(set(compacted) - state.raw_ids),
        quarantined=sorted(expected & state.quarantined_ids),
    )


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
